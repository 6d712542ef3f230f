//! One hosted session: the simulation, its seats (people and bots), its
//! command log, and what it hands the network (the feed) and the stores.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rampart_persistence::{
    FinishJob, MatchOutcome, PersistHandle, PersistJob, SeatResult, SendError, SessionRow,
};
use rampart_sim::bots::ScriptedPlayer;
use rampart_sim::log::{CommandLog, LogEntry};
use rampart_sim::{Command, CommandTicket, Event, Outcome, PlayerId, Rejection, Session, Snapshot};

use rampart_net::protocol::EndReason;
use rampart_net::server::{CommandOrigin, Feed};
use rampart_sim::bots::BotStyle;
use rampart_sim::{Content, SessionConfig};
use std::sync::mpsc::SyncSender;

use super::saved;
use super::{CreateSession, HostError, SessionId, SessionInfo, SessionState};

/// Who sits in a seat.
pub(crate) enum Seat {
    Free,
    Bot(Box<ScriptedPlayer>),
    /// A person's seat. It stays theirs while connected and for the
    /// reconnect grace after `since` (the host tick it was reserved or
    /// its connection dropped).
    Person {
        who: Arc<str>,
        connected: bool,
        since: u64,
    },
}

/// A session built and seated, waiting to be admitted by the tick thread.
pub(crate) struct Prepared {
    pub session: Session,
    pub seats: Vec<Seat>,
    pub private: bool,
    pub log: CommandLog,
}

/// Builds a session for `request`. This is the costly part of creating a
/// session (world, schedule, scenario towers, flow field), so it runs on a
/// blocking thread, never on the tick thread.
pub(crate) fn prepare(
    content: &Arc<Content>,
    tick_hz: u32,
    request: CreateSession,
    seed: u64,
) -> Result<Prepared, HostError> {
    if request.bots > request.max_players {
        return Err(HostError::Invalid(format!(
            "bots ({}) cannot exceed max_players ({})",
            request.bots, request.max_players
        )));
    }
    let config = SessionConfig {
        map: request.map,
        scenario: request.scenario,
        players: request.max_players,
        seed: request.seed.unwrap_or(seed),
        tick_hz,
    };
    let session = Session::new(content.clone(), &config)
        .map_err(|error| HostError::Invalid(error.to_string()))?;
    let style = if config.scenario.is_some() {
        BotStyle::Passive
    } else {
        BotStyle::Builder
    };
    let seats = (0..request.max_players)
        .map(|seat| {
            if seat < request.bots {
                Seat::Bot(Box::new(ScriptedPlayer::new(
                    PlayerId(seat),
                    style,
                    config.seed,
                )))
            } else {
                Seat::Free
            }
        })
        .collect();
    let log = CommandLog::new(content, config);
    Ok(Prepared {
        session,
        seats,
        private: request.private,
        log,
    })
}

/// How often commands accepted between two saves go to the hot store, so
/// the stored command stream trails the game by about this much.
const COMMAND_FLUSH: Duration = Duration::from_millis(100);

/// The host's link to the persistence writer, shared by every session.
#[derive(Clone)]
pub(crate) struct Persisting {
    pub handle: PersistHandle,
    /// Ticks between two saves of a running session.
    pub save_every: u64,
    /// Ticks between two hand-overs of the commands accepted since.
    pub flush_every: u64,
}

impl Persisting {
    pub fn new(handle: PersistHandle, snapshot_interval: Duration, tick_hz: u32) -> Self {
        let ticks =
            |every: Duration| (every.as_secs_f64() * f64::from(tick_hz)).round().max(1.0) as u64;
        Self {
            handle,
            save_every: ticks(snapshot_interval),
            flush_every: ticks(COMMAND_FLUSH),
        }
    }
}

/// How a step went.
pub(super) enum Stepped {
    /// Still going (or not ticking).
    Ongoing,
    /// The game was decided this tick.
    Decided(EndReason),
    /// The step panicked; the session must end.
    Crashed,
}

pub(super) struct HostedSession {
    pub id: SessionId,
    pub map: Arc<str>,
    pub session: Session,
    pub state: SessionState,
    pub seats: Vec<Seat>,
    pub private: bool,
    pub log: CommandLog,
    pub created_unix_ms: u64,
    /// Host tick at which a person was last connected.
    pub last_person_tick: u64,
    pub end_reason: Option<EndReason>,
    /// Entered while the session steps, so anything logged then (a panic
    /// above all) carries the session's id.
    pub span: tracing::Span,
    snapshot: Snapshot,
    /// Where snapshots and events go for network clients.
    feed: Option<SyncSender<Feed>>,
    /// Network clients' commands not yet answered, by the simulation's
    /// ticket: each result goes back to its sender exactly once, matched by
    /// identity, not by order (a result lost on a full feed is lost for
    /// that sender only). Short: commands are answered the tick after.
    awaiting: Vec<(CommandTicket, CommandOrigin)>,
    /// Snapshots per second, at most the tick rate.
    snapshot_hz: u32,
    /// List lengths of the last snapshot published.
    published_sizes: [usize; 4],
    /// Where the session's state is saved; `None` in hosts that keep nothing.
    persist: Option<Persisting>,
    /// The owner epoch every write carries: 0 until the session is
    /// registered (lobbies are not persisted), 1 for a session started
    /// here, the claim's epoch for an adopted one.
    pub epoch: u64,
    /// Log entries already handed to the writer.
    persisted: usize,
    /// Session tick at which the next save is due.
    next_save: u64,
}

impl HostedSession {
    pub fn new(
        id: SessionId,
        prepared: Prepared,
        now: (u64, u64),
        feed: Option<SyncSender<Feed>>,
        snapshot_hz: u32,
        persist: Option<Persisting>,
    ) -> Self {
        let Prepared {
            session,
            seats,
            private,
            log,
        } = prepared;
        let (created_unix_ms, host_tick) = now;
        let map: Arc<str> = log.config.map.as_str().into();
        let mut hosted = Self {
            id,
            map,
            session,
            state: SessionState::Lobby,
            seats,
            private,
            log,
            created_unix_ms,
            last_person_tick: host_tick,
            end_reason: None,
            span: tracing::info_span!("session", id = %id),
            snapshot: Snapshot::default(),
            feed,
            awaiting: Vec::new(),
            snapshot_hz,
            published_sizes: [0; 4],
            persist,
            epoch: 0,
            persisted: 0,
            next_save: 0,
        };
        hosted.persisted = hosted.log.entries.len();
        hosted.start_if_full();
        hosted
    }

    /// Every seat filled: the game begins.
    pub fn start_if_full(&mut self) {
        if self.state == SessionState::Lobby
            && self.seats.iter().all(|seat| !matches!(seat, Seat::Free))
        {
            self.state = SessionState::Running;
        }
    }

    pub fn bots(&self) -> u8 {
        self.seats
            .iter()
            .filter(|seat| matches!(seat, Seat::Bot(_)))
            .count() as u8
    }

    pub fn people_connected(&self) -> u8 {
        self.seats
            .iter()
            .filter(|seat| {
                matches!(
                    seat,
                    Seat::Person {
                        connected: true,
                        ..
                    }
                )
            })
            .count() as u8
    }

    /// Sessions made only of bots (demos, tests) never idle out.
    pub fn bots_only(&self) -> bool {
        self.seats.iter().all(|seat| matches!(seat, Seat::Bot(_)))
    }

    /// Queues a person's command and records it in the log; it is answered
    /// to `origin` on the feed once stepped.
    pub fn submit(&mut self, player: PlayerId, command: Command, origin: CommandOrigin) {
        self.log.entries.push(LogEntry {
            tick: self.session.tick(),
            player,
            command,
        });
        let ticket = self.session.submit(player, command);
        self.awaiting.push((ticket, origin));
    }

    /// Lets the bots think, steps the simulation, and reports the results.
    /// A panic anywhere in it is caught: the session is then unusable and
    /// must end, but the host and every other session go on.
    pub fn step(&mut self) -> Stepped {
        if self.state != SessionState::Running {
            return Stepped::Ongoing;
        }
        // Moved out for the step (no reference count traffic), put back below.
        let span = std::mem::replace(&mut self.span, tracing::Span::none());
        let entered = span.enter();
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            let tick = self.session.tick();
            let thinking = self
                .seats
                .iter()
                .any(|seat| matches!(seat, Seat::Bot(bot) if bot.wants_to_think(tick)));
            if thinking {
                self.session.snapshot(&mut self.snapshot);
                for seat in &mut self.seats {
                    if let Seat::Bot(bot) = seat
                        && let Some(command) = bot.think(&self.session, &self.snapshot)
                    {
                        self.log.entries.push(LogEntry {
                            tick,
                            player: bot.player(),
                            command,
                        });
                        self.session.submit(bot.player(), command);
                    }
                }
            }
            self.session.step();
        }));
        drop(entered);
        self.span = span;
        if stepped.is_err() {
            return Stepped::Crashed;
        }
        let events = self.session.events();
        for event in events {
            if let Event::CommandResult {
                ticket,
                player,
                result,
            } = event
            {
                let label = result
                    .as_ref()
                    .map_or_else(|rejection| rejection.reason(), |()| "accepted");
                metrics::counter!("rampart_commands_total", "result" => label).increment(1);
                answer(
                    &mut self.awaiting,
                    self.feed.as_ref(),
                    self.id,
                    (*ticket, *player),
                    result,
                );
            }
        }
        self.publish_to_clients();
        self.persist_step();
        match self.session.outcome() {
            Some(Outcome::Victory) => Stepped::Decided(EndReason::Victory),
            Some(Outcome::Defeat) => Stepped::Decided(EndReason::Defeat),
            None => Stepped::Ongoing,
        }
    }

    /// Hands the tick's events, and a snapshot when one is due, to the
    /// network. Only sessions with a connected person pay for it; a full
    /// queue drops (the next snapshot replaces a lost one).
    fn publish_to_clients(&mut self) {
        let Some(feed) = &self.feed else {
            return;
        };
        if self.people_connected() == 0 {
            return;
        }
        let session = self.id.0;
        let tick = self.session.tick();
        let events = self.session.events();
        if !events.is_empty() {
            let published = feed.try_send(Feed::Events {
                session,
                tick: tick - 1,
                events: events.into(),
            });
            if published.is_err() {
                metrics::counter!("rampart_net_dropped_total", "reason" => "feed_full")
                    .increment(1);
            }
        }
        let hz = u64::from(self.snapshot_hz);
        let rate = u64::from(self.session.tick_hz());
        // The deciding tick always goes out: clients must see the end.
        if tick * hz / rate != (tick - 1) * hz / rate || self.session.outcome().is_some() {
            self.send_snapshot();
        }
    }

    /// Sends the current state to the network now (a person just joined
    /// a lobby, or a snapshot is due).
    pub fn send_snapshot(&mut self) {
        let Some(feed) = &self.feed else {
            return;
        };
        // Sized like the last one, so filling it does not reallocate.
        let mut snapshot = Snapshot {
            players: Vec::with_capacity(self.published_sizes[0]),
            enemies: Vec::with_capacity(self.published_sizes[1]),
            towers: Vec::with_capacity(self.published_sizes[2]),
            projectiles: Vec::with_capacity(self.published_sizes[3]),
            ..Snapshot::default()
        };
        self.session.snapshot(&mut snapshot);
        self.published_sizes = [
            snapshot.players.len(),
            snapshot.enemies.len(),
            snapshot.towers.len(),
            snapshot.projectiles.len(),
        ];
        let published = feed.try_send(Feed::Snapshot {
            session: self.id.0,
            snapshot: Arc::new(snapshot),
        });
        if published.is_err() {
            metrics::counter!("rampart_net_dropped_total", "reason" => "feed_full").increment(1);
        }
    }

    /// Tells the network about this session or its end.
    pub fn announce(&self, feed: Feed) {
        if let Some(sender) = &self.feed {
            let _ = sender.try_send(feed);
        }
    }

    /// Registers the session with the stores once it runs, then saves it
    /// every `save_every` ticks and durably at each wave's start and end
    /// (natural checkpoints), and hands over the commands accepted in between every
    /// `flush_every` ticks. A full queue only delays: the commands stay
    /// pending and go with the next job.
    fn persist_step(&mut self) {
        let Some(flush_every) = self.persist.as_ref().map(|persist| persist.flush_every) else {
            return;
        };
        if self.epoch == 0 {
            self.register();
            return;
        }
        if self.session.outcome().is_some() {
            // The end is persisted by `finish`.
            return;
        }
        let tick = self.session.tick();
        let wave_boundary =
            self.session.events().iter().any(|event| {
                matches!(event, Event::WaveStarted { .. } | Event::WaveCleared { .. })
            });
        if wave_boundary || tick >= self.next_save {
            self.save(wave_boundary);
        } else if tick.is_multiple_of(flush_every) && self.persisted < self.log.entries.len() {
            let job = PersistJob::Commands {
                session: self.id.0,
                epoch: self.epoch,
                commands: self.pending_commands(),
            };
            if self
                .persist
                .as_ref()
                .is_some_and(|persist| persist.handle.try_send(job).is_ok())
            {
                self.persisted = self.log.entries.len();
            }
        }
    }

    /// The session starts running here: it becomes the first owner
    /// (epoch 1 by definition of a fresh row) and saves at once.
    fn register(&mut self) {
        let Some(persist) = self.persist.clone() else {
            return;
        };
        let config = &self.log.config;
        let row = SessionRow {
            id: self.id.0,
            map: config.map.clone(),
            scenario: config.scenario.clone(),
            seed: config.seed,
            players: config.players,
            tick_hz: u16::try_from(config.tick_hz).unwrap_or(u16::MAX),
            content_version: self.log.content_version,
            state: rampart_persistence::RowState::Running,
        };
        if persist
            .handle
            .try_send(PersistJob::Start(Box::new(row)))
            .is_ok()
        {
            self.epoch = 1;
            self.save(true);
            // Sessions created together would save on the same tick forever
            // after: spread them over the interval by id.
            self.next_save = self.session.tick() + 1 + self.id.0 % persist.save_every;
        }
    }

    fn pending_commands(&self) -> Vec<rampart_persistence::CommandEntry> {
        let content = self.session.content();
        self.log.entries[self.persisted..]
            .iter()
            .map(|entry| saved::command_entry(entry, content))
            .collect()
    }

    fn envelope(&self) -> Arc<[u8]> {
        saved::save(
            &self.session,
            &self.seats,
            self.private,
            self.created_unix_ms,
            &self.log,
        )
        .into()
    }

    /// Hands the session's state and the commands since the last job to the
    /// writer; `durable` asks for a database checkpoint now. False when the
    /// queue refused it (retried soon, commands kept).
    pub fn save(&mut self, durable: bool) -> bool {
        let Some(persist) = self.persist.clone() else {
            return true;
        };
        let tick = self.session.tick();
        let job = PersistJob::Save {
            session: self.id.0,
            epoch: self.epoch,
            tick,
            state_hash: self.session.state_hash(),
            bytes: self.envelope(),
            commands: self.pending_commands(),
            durable,
        };
        match persist.handle.try_send(job) {
            Ok(()) => {
                self.persisted = self.log.entries.len();
                self.next_save = tick + persist.save_every;
                true
            }
            Err(SendError::Full(_)) => {
                self.next_save = tick + persist.flush_every;
                false
            }
            Err(SendError::Closed(_)) => false,
        }
    }

    /// This instance lets go of the session (drain): a durable save, then
    /// the lease is released so another instance adopts it at once. False
    /// when the writer would not take it.
    pub fn hand_over(&mut self) -> bool {
        let Some(persist) = self.persist.clone() else {
            return false;
        };
        if self.epoch == 0 {
            self.register();
            if self.epoch == 0 {
                return false;
            }
        } else if !self.save(true) {
            return false;
        }
        persist
            .handle
            .try_send(PersistJob::Release {
                session: self.id.0,
                epoch: self.epoch,
            })
            .is_ok()
    }

    /// The session ended here: its final state, results and history go to
    /// the database (a session that never ran has nothing to record).
    pub fn finish(&mut self, reason: EndReason) {
        let Some(persist) = self.persist.clone() else {
            return;
        };
        if self.epoch == 0 {
            return;
        }
        // A session that panicked may panic again when saved: it then ends
        // without a final checkpoint (its last one stays).
        let (bytes, state_hash) = catch_unwind(AssertUnwindSafe(|| {
            (self.envelope(), self.session.state_hash())
        }))
        .unwrap_or_else(|_| (Arc::from([]), 0));
        let summary = self.session.summary();
        let victory = summary.outcome == Some(Outcome::Victory);
        let seats = self
            .session
            .results()
            .into_iter()
            .map(|result| SeatResult {
                seat: result.player.0,
                player_id: match self.seats.get(usize::from(result.player.0)) {
                    Some(Seat::Person { who, .. }) => Some(who.to_string()),
                    _ => None,
                },
                score: result.score,
                kills: result.kills,
                // Leaks cost the team, not a seat.
                leaks: summary.leaks,
                gold_earned: result.gold_earned,
                victory,
            })
            .collect();
        let finish = FinishJob {
            session: self.id.0,
            map: self.map.to_string(),
            epoch: self.epoch,
            tick: summary.tick,
            state_hash,
            bytes,
            end_reason: reason.label().to_owned(),
            seats,
            outcome: MatchOutcome {
                outcome: summary
                    .outcome
                    .map_or(reason.label(), Outcome::name)
                    .to_owned(),
                ticks: summary.tick,
                players: self.session.players(),
            },
        };
        if persist
            .handle
            .try_send(PersistJob::Finish(Box::new(finish)))
            .is_err()
        {
            tracing::error!(session = %self.id, "persistence queue refused the session's end: its results are not recorded");
        }
    }

    pub fn info(&self) -> SessionInfo {
        let summary = self.session.summary();
        SessionInfo {
            id: self.id,
            map: self.map.clone(),
            state: self.state,
            max_players: self.seats.len() as u8,
            players: self.people_connected(),
            bots: self.bots(),
            private: self.private,
            wave: summary.wave,
            lives: summary.lives,
            tick: summary.tick,
            enemies: summary.enemies,
            towers: summary.towers,
            outcome: summary.outcome.map(|outcome| outcome.name()),
            end_reason: self.end_reason.map(EndReason::label),
            created_unix_ms: self.created_unix_ms,
        }
    }
}

/// Sends a network client's command result back to it, whether or not
/// anyone else is connected (a free function so the caller may hold the
/// session's events meanwhile).
fn answer(
    awaiting: &mut Vec<(CommandTicket, CommandOrigin)>,
    feed: Option<&SyncSender<Feed>>,
    session: SessionId,
    (ticket, player): (CommandTicket, PlayerId),
    result: &Result<(), Rejection>,
) {
    let Some(index) = awaiting.iter().position(|(waiting, _)| *waiting == ticket) else {
        return;
    };
    let (_, origin) = awaiting.swap_remove(index);
    let Some(feed) = feed else {
        return;
    };
    let answer = Feed::Answer {
        session: session.0,
        player: player.0,
        origin,
        result: *result,
    };
    if feed.try_send(answer).is_err() {
        metrics::counter!("rampart_net_dropped_total", "reason" => "feed_full").increment(1);
    }
}
