//! The session host: many sessions in one process, stepped on a fixed clock.
//!
//! One dedicated thread owns every session and the clock. Each tick it
//! drains the control inbox (create, join, leave, commands, end, drain) fed
//! by the async side, steps every running session in parallel on a rayon
//! pool (each session single-threaded inside, each step behind
//! `catch_unwind`), then publishes a read-only view for the HTTP API. No lock
//! is held across a session step: the published view is swapped in after
//! the step, and requests reach sessions only through the bounded inbox.
//!
//! Persistence is write-behind: a running session hands its state to the
//! persistence writer's queue, which never blocks, every snapshot interval
//! (`hosted.rs`); sessions another instance owns now are stopped; adopted
//! sessions arrive rebuilt (`saved.rs`) through the same inbox.

mod hosted;
mod pace;
mod saved;
mod saving;
mod tick;

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rampart_sim::{Command, Content, PlayerId};
use serde::{Deserialize, Serialize, Serializer};

use rampart_net::gateway::{CommandOrigin, FeedSender};
use rampart_persistence::{PersistEvent, PersistHandle};
use tokio::sync::{mpsc, oneshot};

#[cfg(test)]
use pace::DrivenClock;
use pace::{Metronome, Pace};

pub use hosted::stepping;
pub use saved::{ResumeError, SavedSeat, encode_checkpoint};
pub(crate) use saved::{Resumed, resume};
pub use saving::CommandTail;

/// A session's id: random, unique across instances, shown as 16 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = std::num::ParseIntError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(text, 16).map(SessionId)
    }
}

impl Serialize for SessionId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A content version as the API shows it: 16 hex digits, like every hash
/// and id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentVersion(pub u64);

impl fmt::Display for ContentVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl Serialize for ContentVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for its seats to fill; not ticking.
    Lobby,
    /// Ticking.
    Running,
    /// Over; its record is kept for a while.
    Ended,
}

fn default_max_players() -> u8 {
    4
}

/// What `POST /v1/sessions` asks for.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// Map key.
    pub map: String,
    /// Seats, 1 to 8.
    #[serde(default = "default_max_players")]
    pub max_players: u8,
    /// Seats filled by scripted players at once.
    #[serde(default)]
    pub bots: u8,
    /// Hidden from the public session list.
    #[serde(default)]
    pub private: bool,
    /// Seed; random when absent.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Scenario key (pre-built towers); its map must be `map`.
    #[serde(default)]
    pub scenario: Option<String>,
}

/// A session as the API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SessionInfo {
    /// Id.
    pub id: SessionId,
    /// Map key.
    pub map: Arc<str>,
    /// The content it was built from: a server that reloads content keeps
    /// running sessions on the content they started with.
    pub content_version: ContentVersion,
    /// Lifecycle state.
    pub state: SessionState,
    /// Seats.
    pub max_players: u8,
    /// Seats taken by connected people.
    pub players: u8,
    /// Spectators watching (no seats).
    pub spectators: u16,
    /// Seats played by scripted players.
    pub bots: u8,
    /// Hidden from the public list.
    pub private: bool,
    /// Waves started.
    pub wave: u32,
    /// Lives left.
    pub lives: u32,
    /// Ticks stepped.
    pub tick: u64,
    /// Enemies alive.
    pub enemies: u32,
    /// Towers standing.
    pub towers: u32,
    /// `victory` or `defeat` once decided.
    pub outcome: Option<&'static str>,
    /// Why it ended, as [`EndReason::label`](rampart_net::protocol::EndReason::label)
    /// names it: `victory`, `defeat`, `ended_by_admin`, `idle`, `crashed`
    /// or `moved`.
    pub end_reason: Option<&'static str>,
    /// Creation time, Unix milliseconds.
    pub created_unix_ms: u64,
}

/// What runs late on an instance that refuses new sessions though it has
/// room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Overload {
    /// The recent slowest ticks overrun the tick budget.
    #[error("ticks are running late")]
    TicksLate,
    /// Snapshots wait longer than a snapshot period for the network thread:
    /// clients already get fewer than their rate.
    #[error("snapshots are waiting for the network thread")]
    SnapshotsLate,
}

/// Why the host refused a request.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// At capacity.
    #[error("instance is full ({max} sessions)")]
    Full {
        /// The configured maximum.
        max: usize,
    },
    /// New sessions would make existing ones suffer.
    #[error("instance is overloaded: {0}")]
    Overloaded(Overload),
    /// Shutting down.
    #[error("server is draining")]
    Draining,
    /// Unknown (or long-ended) session.
    #[error("no such session")]
    NotFound,
    /// The request names unknown content or is out of range.
    #[error("{0}")]
    Invalid(String),
    /// Every seat is taken.
    #[error("session is full")]
    SessionFull,
    /// The seat is no longer this player's (the reconnect grace passed, or
    /// it was never theirs).
    #[error("that seat is no longer yours")]
    SeatLost,
    /// The host thread is gone.
    #[error("session host stopped")]
    Stopped,
}

/// Counts for readiness and the API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct HostStatus {
    /// Sessions waiting for players.
    pub lobby: usize,
    /// Sessions ticking.
    pub running: usize,
    /// Ended sessions still remembered.
    pub ended: usize,
    /// Seats held by connected people and bots.
    pub players_connected: usize,
    /// Capacity.
    pub max_sessions: usize,
    /// Shutting down.
    pub draining: bool,
    /// The recent slowest ticks fit the tick budget.
    pub ticks_on_time: bool,
    /// Snapshots wait at most a snapshot period for the network thread
    /// (true without a network).
    pub snapshots_on_time: bool,
    /// The 99th percentile of the last 128 ticks' durations, microseconds.
    pub tick_p99_us: u64,
    /// Host ticks since start.
    pub tick: u64,
    /// Sessions that panicked since start.
    pub crashed: u64,
}

/// The host's tunables.
#[derive(Clone, Debug)]
pub struct HostConfig {
    /// Capacity.
    pub max_sessions: usize,
    /// Tick rate.
    pub tick_hz: u32,
    /// A session with no connected person this long ends (bot-only sessions excepted).
    pub idle_timeout: Duration,
    /// A tick whose work exceeds this share of the period counts as late.
    pub overrun_budget_pct: u32,
    /// Ended sessions remembered for the API.
    pub ended_kept: usize,
    /// Snapshots per second sent to network clients (capped by `tick_hz`).
    pub snapshot_hz: u32,
    /// How long a person's seat stays theirs after their connection drops.
    pub reconnect_grace: Duration,
    /// Threads of the stepping pool; 0 for one per available core.
    pub step_threads: usize,
}

/// Where the host saves sessions, and how often: its end of the
/// persistence writer.
pub struct Saves {
    /// Where sessions' state goes.
    pub handle: PersistHandle,
    /// What the writer reports back (lost ownership).
    pub events: std::sync::mpsc::Receiver<PersistEvent>,
    /// How often.
    pub cadence: SaveCadence,
}

/// How often a running session is saved.
#[derive(Clone, Copy, Debug)]
pub struct SaveCadence {
    /// Any save: to Redis, or without Redis to the database.
    pub snapshot_interval: Duration,
    /// A durable save: a database checkpoint, with the commands since the
    /// last one appended to the session's command log.
    pub checkpoint_interval: Duration,
}

/// What a drain did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Sessions that were running when the drain began (lobbies just end).
    pub sessions: usize,
    /// Handed to the persistence writer for another instance to adopt.
    pub handed_over: usize,
    /// Whose hand-over failed.
    pub failed: usize,
}

/// Requests from the async side to the tick thread.
pub(crate) enum Control {
    Create {
        prepared: Box<hosted::Prepared>,
        reply: oneshot::Sender<Result<SessionInfo, HostError>>,
    },
    Adopt {
        id: SessionId,
        epoch: u64,
        resumed: Box<Resumed>,
        reply: oneshot::Sender<Result<SessionInfo, HostError>>,
    },
    End {
        id: SessionId,
        reply: oneshot::Sender<Result<SessionInfo, HostError>>,
    },
    Join {
        id: SessionId,
        who: Arc<str>,
        reply: oneshot::Sender<Result<PlayerId, HostError>>,
    },
    Matchmake {
        map: String,
        seats: u8,
        /// Only lobbies built from this content (the current) are offered.
        content_version: u64,
        who: Arc<str>,
        reply: oneshot::Sender<Result<(SessionId, PlayerId), HostError>>,
    },
    Rejoin {
        id: SessionId,
        player: PlayerId,
        who: Arc<str>,
        reply: oneshot::Sender<Result<(), HostError>>,
    },
    Connected {
        id: SessionId,
        player: PlayerId,
    },
    Leave {
        id: SessionId,
        player: PlayerId,
    },
    Watchers {
        id: SessionId,
        count: u16,
    },
    Describe {
        id: SessionId,
        reply: oneshot::Sender<Option<SessionInfo>>,
    },
    Submit {
        id: SessionId,
        player: PlayerId,
        command: Command,
        /// Who to answer: the network client that sent it.
        origin: CommandOrigin,
    },
    Drain {
        reply: oneshot::Sender<DrainReport>,
    },
    #[cfg(test)]
    InjectPanic {
        id: SessionId,
    },
    /// Wedges the tick thread until `release` is sent to or dropped.
    #[cfg(test)]
    Stall {
        release: std::sync::mpsc::Receiver<()>,
    },
}

/// What the tick thread publishes after each tick for readers.
#[derive(Default)]
pub(crate) struct Published {
    sessions: Vec<SessionInfo>,
    status: HostStatus,
}

/// A cheap, cloneable handle to the host for the async side.
#[derive(Clone)]
pub struct HostHandle {
    control: mpsc::Sender<Control>,
    published: Arc<RwLock<Published>>,
    draining: Arc<AtomicBool>,
    /// What new sessions are built from; replaced whole when content is
    /// reloaded, never changed in place, so a session keeps the `Arc` it
    /// was built with.
    content: Arc<RwLock<Arc<Content>>>,
    tick_hz: u32,
    seeds: Arc<AtomicU64>,
    /// One session is built at a time: building (the schedule, the flow
    /// field) takes a core for milliseconds, and a burst of creations each
    /// on its own blocking thread would take every core from the tick.
    builds: Arc<tokio::sync::Semaphore>,
}

/// Scrambles a counter into a well-spread seed.
pub(crate) fn splitmix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// How many control messages may wait for the tick thread.
const INBOX_CAPACITY: usize = 4096;

impl HostHandle {
    /// Starts the host's tick thread.
    ///
    /// # Errors
    /// If the thread or its rayon pool cannot be started.
    pub fn spawn(
        content: Arc<Content>,
        config: HostConfig,
        persistence: Option<Saves>,
        feed: Option<FeedSender>,
    ) -> std::io::Result<Self> {
        let pace = Pace::Wall(Metronome::new(config.tick_hz));
        Self::start(content, config, persistence, feed, pace)
    }

    /// The same host, ticking only when the returned clock says.
    #[cfg(test)]
    pub(crate) fn spawn_driven(
        content: Arc<Content>,
        config: HostConfig,
        persistence: Option<Saves>,
        feed: Option<FeedSender>,
    ) -> std::io::Result<(Self, Arc<DrivenClock>)> {
        let clock = Arc::new(DrivenClock::default());
        let pace = Pace::Driven(clock.clone());
        let host = Self::start(content, config, persistence, feed, pace)?;
        Ok((host, clock))
    }

    fn start(
        content: Arc<Content>,
        config: HostConfig,
        persistence: Option<Saves>,
        feed: Option<FeedSender>,
        pace: Pace,
    ) -> std::io::Result<Self> {
        let (control, inbox) = mpsc::channel(INBOX_CAPACITY);
        // Capacity is known before the first tick publishes; readiness
        // (ticks on time) is not.
        let published = Arc::new(RwLock::new(Published {
            sessions: Vec::new(),
            status: HostStatus {
                max_sessions: config.max_sessions,
                ..HostStatus::default()
            },
        }));
        let tick_hz = config.tick_hz;
        let seed_base = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        tick::spawn(config, persistence, inbox, published.clone(), feed, pace)?;
        Ok(Self {
            control,
            published,
            draining: Arc::new(AtomicBool::new(false)),
            content: Arc::new(RwLock::new(content)),
            tick_hz,
            seeds: Arc::new(AtomicU64::new(seed_base)),
            builds: Arc::new(tokio::sync::Semaphore::new(1)),
        })
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Control,
    ) -> Result<T, HostError> {
        let (reply, answer) = oneshot::channel();
        self.control
            .send(make(reply))
            .await
            .map_err(|_| HostError::Stopped)?;
        answer.await.map_err(|_| HostError::Stopped)
    }

    /// Creates a session; bot seats are filled at once. Answered once
    /// [`Self::get`] and [`Self::list`] show it.
    ///
    /// # Errors
    /// Full, overloaded, draining, or an invalid request.
    pub async fn create(&self, request: CreateSession) -> Result<SessionInfo, HostError> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(HostError::Draining);
        }
        // Refuse early what the tick thread would refuse, before building.
        let status = self.status();
        if status.max_sessions > 0 && status.lobby + status.running >= status.max_sessions {
            return Err(HostError::Full {
                max: status.max_sessions,
            });
        }
        let seed = splitmix64(
            self.seeds
                .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed),
        );
        let content = self.content();
        let tick_hz = self.tick_hz;
        // The permit goes with the build, so a request given up on (its
        // client gone) still holds it until its build is done.
        let building = self
            .builds
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HostError::Stopped)?;
        let prepared = tokio::task::spawn_blocking(move || {
            let _building = building;
            hosted::prepare(&content, tick_hz, request, seed)
        })
        .await
        .map_err(|_| HostError::Stopped)??;
        self.ask(|reply| Control::Create {
            prepared: Box::new(prepared),
            reply,
        })
        .await?
    }

    /// The content new sessions are built from.
    pub fn content(&self) -> Arc<Content> {
        // A poisoned lock still holds a whole `Arc`: replacing it is one
        // store, so no reader can see it half written.
        match self.content.read() {
            Ok(content) => content.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Builds new sessions from `content` from now on; sessions already
    /// built keep theirs.
    pub fn replace_content(&self, content: Arc<Content>) {
        match self.content.write() {
            Ok(mut current) => *current = content,
            Err(poisoned) => *poisoned.into_inner() = content,
        }
    }

    /// The simulation rate.
    pub fn tick_hz(&self) -> u32 {
        self.tick_hz
    }

    /// Hosts a session taken over from another instance, owned under
    /// `epoch` (the claim's fencing token).
    ///
    /// # Errors
    /// Full, draining, or the session is already hosted here.
    pub(crate) async fn adopt(
        &self,
        id: SessionId,
        epoch: u64,
        resumed: Resumed,
    ) -> Result<SessionInfo, HostError> {
        if self.draining.load(Ordering::Relaxed) {
            return Err(HostError::Draining);
        }
        let resumed = Box::new(resumed);
        self.ask(|reply| Control::Adopt {
            id,
            epoch,
            resumed,
            reply,
        })
        .await?
    }

    /// Ends a session now (its record is kept).
    ///
    /// # Errors
    /// If the session is unknown.
    pub async fn end(&self, id: SessionId) -> Result<SessionInfo, HostError> {
        self.ask(|reply| Control::End { id, reply }).await?
    }

    /// Reserves a seat for the person `who`: the one they already hold, or
    /// a free one. It stays theirs while connected and for the reconnect
    /// grace after their connection drops (or after this call, if they
    /// never connect).
    ///
    /// # Errors
    /// If the session is unknown, ended or full.
    pub async fn join(&self, id: SessionId, who: &str) -> Result<PlayerId, HostError> {
        let who: Arc<str> = who.into();
        self.ask(|reply| Control::Join { id, who, reply }).await?
    }

    /// Seats `who` in the oldest public lobby on `map` with `seats` seats,
    /// built from the current content, that has room (or where they
    /// already sit). Decided on the tick thread, so back-to-back joins fill
    /// one lobby.
    ///
    /// # Errors
    /// `NotFound` when no lobby has room: open one.
    pub async fn matchmake(
        &self,
        map: &str,
        seats: u8,
        who: &str,
    ) -> Result<(SessionId, PlayerId), HostError> {
        let who: Arc<str> = who.into();
        let map = map.to_owned();
        let content_version = self.content().version;
        self.ask(|reply| Control::Matchmake {
            map,
            seats,
            content_version,
            who,
            reply,
        })
        .await?
    }

    /// Confirms that `who` still holds seat `player` and restarts its
    /// grace, so a reconnect token can be honoured.
    ///
    /// # Errors
    /// Unknown session, or the seat is no longer theirs.
    pub async fn rejoin(
        &self,
        id: SessionId,
        player: PlayerId,
        who: &str,
    ) -> Result<(), HostError> {
        let who: Arc<str> = who.into();
        self.ask(|reply| Control::Rejoin {
            id,
            player,
            who,
            reply,
        })
        .await?
    }

    /// Queues a network client's command from a thread outside the async
    /// runtime without waiting: false when the inbox is full. Once queued,
    /// it is answered exactly once on the feed ([`Feed::Answer`](rampart_net::gateway::Feed::Answer) with
    /// `origin`), a refusal included.
    pub fn try_submit(
        &self,
        id: SessionId,
        player: PlayerId,
        command: Command,
        origin: CommandOrigin,
    ) -> bool {
        self.control
            .try_send(Control::Submit {
                id,
                player,
                command,
                origin,
            })
            .is_ok()
    }

    /// [`Self::connected`] or [`Self::leave`] from a thread outside the
    /// async runtime. Waits for room in the inbox: losing one would leave
    /// a seat marked wrongly.
    pub fn connection_changed_blocking(&self, id: SessionId, player: PlayerId, connected: bool) {
        let control = if connected {
            Control::Connected { id, player }
        } else {
            Control::Leave { id, player }
        };
        let _ = self.control.blocking_send(control);
    }

    /// The session now has `count` spectators, from a thread outside the
    /// async runtime. Waits for room in the inbox like
    /// [`Self::connection_changed_blocking`]: a lost count would leave a
    /// watched session silent, or an unwatched one publishing.
    pub fn watchers_changed_blocking(&self, id: SessionId, count: u16) {
        let _ = self.control.blocking_send(Control::Watchers { id, count });
    }

    /// Marks the host as shutting down at once: readiness turns false and
    /// new sessions are refused, while sessions keep ticking until
    /// [`Self::drain`].
    pub fn begin_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Stops admitting, tells every session, hands each running one to the
    /// persistence writer, and stops the tick thread.
    ///
    /// # Errors
    /// If the host is already gone.
    pub async fn drain(&self) -> Result<DrainReport, HostError> {
        self.begin_drain();
        self.ask(|reply| Control::Drain { reply }).await
    }

    #[cfg(test)]
    pub(crate) async fn inject_panic(&self, id: SessionId) {
        let _ = self.control.send(Control::InjectPanic { id }).await;
    }

    /// Wedges the tick thread, as a bug or a stuck call would, until the
    /// returned sender is used or dropped.
    #[cfg(test)]
    pub(crate) async fn stall(&self) -> std::sync::mpsc::Sender<()> {
        let (release, stalled) = std::sync::mpsc::channel();
        let _ = self.control.send(Control::Stall { release: stalled }).await;
        release
    }

    /// One session as the tick thread sees it now: unlike [`Self::get`]
    /// (the view published every few ticks), it knows what changed since
    /// the last publish, such as a seat taken or a game decided a moment
    /// ago. Waits at most a tick.
    ///
    /// # Errors
    /// If the host has stopped.
    pub async fn describe(&self, id: SessionId) -> Result<Option<SessionInfo>, HostError> {
        self.ask(|reply| Control::Describe { id, reply }).await
    }

    /// Every session the host knows, live ones and recently ended, newest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        self.published
            .read()
            .map(|published| published.sessions.clone())
            .unwrap_or_default()
    }

    /// One session.
    pub fn get(&self, id: SessionId) -> Option<SessionInfo> {
        let published = self.published.read().ok()?;
        published
            .sessions
            .iter()
            .find(|session| session.id == id)
            .cloned()
    }

    /// Counts for readiness.
    pub fn status(&self) -> HostStatus {
        let mut status = self
            .published
            .read()
            .map(|published| published.status.clone())
            .unwrap_or_default();
        status.draining |= self.draining.load(Ordering::Relaxed);
        status
    }
}

#[cfg(test)]
mod tests;

/// The network's way into the host: it runs on its own thread, outside the
/// async runtime, and must never wait on the tick thread for a command.
impl rampart_net::gateway::GameLink for HostHandle {
    fn submit(
        &self,
        seat: rampart_net::tickets::SeatRef,
        command: Command,
        origin: CommandOrigin,
    ) -> bool {
        self.try_submit(
            SessionId(seat.session),
            PlayerId(seat.player),
            command,
            origin,
        )
    }

    fn connected(&self, seat: rampart_net::tickets::SeatRef) {
        self.connection_changed_blocking(SessionId(seat.session), PlayerId(seat.player), true);
    }

    fn disconnected(&self, seat: rampart_net::tickets::SeatRef) {
        self.connection_changed_blocking(SessionId(seat.session), PlayerId(seat.player), false);
    }

    fn watchers(&self, session: u64, count: u16) {
        self.watchers_changed_blocking(SessionId(session), count);
    }
}
