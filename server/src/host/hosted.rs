//! One hosted session: the simulation, its seats (people and bots), its
//! command log, and what it hands the network (the feed) and the stores.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use rampart_sim::bots::ScriptedPlayer;
use rampart_sim::log::{CommandLog, LogEntry};
use rampart_sim::{Command, CommandTicket, Event, Outcome, PlayerId, Rejection, Session, Snapshot};

use rampart_net::gateway::{CommandOrigin, Feed, FeedSender};
use rampart_net::protocol::EndReason;
use rampart_sim::bots::BotStyle;
use rampart_sim::{Content, SessionConfig};

use super::saving::{CommandTail, Saver, Saving};
use super::{CreateSession, HostError, SessionId, SessionInfo, SessionState};

/// Snapshot buffers per session: one the net loop holds until its pass
/// sends it, one a loop that fell behind may have queued behind that, one
/// to write. (With one, a net loop behind on a full core left the step
/// thread allocating snapshots afresh.)
const PUBLISHED_BUFFERS: usize = 3;

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
    pub log: CommandTail,
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
    let log = CommandTail::new(CommandLog::new(content, config));
    Ok(Prepared {
        session,
        seats,
        private: request.private,
        log,
    })
}

thread_local! {
    /// The session this thread is stepping, if any.
    static STEPPING: Cell<Option<SessionId>> = const { Cell::new(None) };
}

/// The session the calling thread is stepping, for the panic hook to name
/// in its log line.
///
/// A thread-local rather than a tracing span entered for each step: a
/// span's enter and exit take the log filter's lock and the span's
/// reference count, lines both step threads write, for every session at
/// every tick (and nothing in a step logs but a panic).
pub fn stepping() -> Option<SessionId> {
    STEPPING.get()
}

/// Marks the calling thread as stepping a session until dropped (by the
/// unwinding too, should the step panic outside `catch_unwind`).
pub(super) struct Stepping;

impl Stepping {
    pub(super) fn start(id: SessionId) -> Self {
        STEPPING.set(Some(id));
        Self
    }
}

impl Drop for Stepping {
    fn drop(&mut self) {
        STEPPING.set(None);
    }
}

/// How a step went.
pub(super) enum Stepped {
    /// Not ticking: a lobby, or over.
    Waiting,
    /// Stepped, and still going.
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
    pub log: CommandTail,
    pub created_unix_ms: u64,
    /// Host tick at which a person was last connected.
    pub last_person_tick: u64,
    /// Spectators connected, as the network counts them: they make the
    /// session publish to the network, and nothing else (no seat, no
    /// player count, no hold on the idle timeout).
    pub spectators: u16,
    pub end_reason: Option<EndReason>,
    snapshot: Snapshot,
    /// The session tick at which some bot seat next wants to think, `None`
    /// once none ever will (passive bots stop when ready). Kept so a tick
    /// without thought reads none of the bots, each a cold box in a host
    /// of a thousand sessions.
    next_thought: Option<u64>,
    /// Where snapshots and events go for network clients.
    feed: Option<FeedSender>,
    /// Network clients' commands not yet answered, by the simulation's
    /// ticket: each result goes back to its sender exactly once, matched by
    /// identity, not by order (a result lost on a full feed is lost for
    /// that sender only). Short: commands are answered the tick after.
    awaiting: Vec<(CommandTicket, CommandOrigin)>,
    /// Snapshots per second, at most the tick rate.
    snapshot_hz: u32,
    /// Snapshots handed to the network, each written over once the net
    /// loop lets go of it: no allocation on the step thread and no free on
    /// the net thread per snapshot.
    published: [Arc<Snapshot>; PUBLISHED_BUFFERS],
    /// Where and when the session's state is saved; `None` in hosts that
    /// keep nothing.
    pub(super) saving: Option<Saving>,
}

impl HostedSession {
    pub fn new(
        id: SessionId,
        prepared: Prepared,
        now: (u64, u64),
        feed: Option<FeedSender>,
        snapshot_hz: u32,
        saver: Option<Saver>,
    ) -> Self {
        let Prepared {
            session,
            seats,
            private,
            log,
        } = prepared;
        let (created_unix_ms, host_tick) = now;
        let map: Arc<str> = log.config().map.as_str().into();
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
            spectators: 0,
            end_reason: None,
            snapshot: Snapshot::default(),
            next_thought: None,
            feed,
            awaiting: Vec::new(),
            snapshot_hz,
            published: Default::default(),
            saving: saver.map(Saving::new),
        };
        hosted.next_thought = hosted.bots_next_thought(hosted.session.tick());
        hosted.start_if_full();
        hosted
    }

    fn bots_next_thought(&self, tick: u64) -> Option<u64> {
        self.seats
            .iter()
            .filter_map(|seat| match seat {
                Seat::Bot(bot) => bot.next_thought(tick),
                _ => None,
            })
            .min()
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

    /// The periodic lifecycle look at host tick `tick`: frees the seats of
    /// people away for more than `grace_ticks` (true if it freed any), and
    /// notes that someone is here, so that [`HostedSession::idle_for`]
    /// counts from the last time anyone was.
    pub fn free_expired_seats(&mut self, tick: u64, grace_ticks: u64) -> bool {
        if self.people_connected() > 0 || self.bots_only() {
            self.last_person_tick = tick;
        }
        let mut freed = false;
        for seat in &mut self.seats {
            if let Seat::Person {
                connected: false,
                since,
                ..
            } = seat
                && tick - *since > grace_ticks
            {
                *seat = Seat::Free;
                freed = true;
            }
        }
        freed
    }

    /// Host ticks since anyone (a connected person, or an all-bot table)
    /// was last seen here.
    pub fn idle_for(&self, tick: u64) -> u64 {
        tick - self.last_person_tick
    }

    /// Sessions made only of bots (demos, tests) never idle out.
    pub fn bots_only(&self) -> bool {
        self.seats.iter().all(|seat| matches!(seat, Seat::Bot(_)))
    }

    /// Queues a person's command and records it in the log; it is answered
    /// to `origin` on the feed once stepped.
    pub fn submit(&mut self, player: PlayerId, command: Command, origin: CommandOrigin) {
        self.log.push(LogEntry {
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
            return Stepped::Waiting;
        }
        let _stepping = Stepping::start(self.id);
        let stepped = catch_unwind(AssertUnwindSafe(|| {
            let tick = self.session.tick();
            if self.next_thought.is_some_and(|at| at <= tick) {
                self.session.snapshot(&mut self.snapshot);
                for seat in &mut self.seats {
                    if let Seat::Bot(bot) = seat
                        && let Some(command) = bot.think(&self.session, &self.snapshot)
                    {
                        self.log.push(LogEntry {
                            tick,
                            player: bot.player(),
                            command,
                        });
                        self.session.submit(bot.player(), command);
                    }
                }
                self.next_thought = self.bots_next_thought(tick + 1);
            }
            self.session.step();
        }));
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
    /// network. Only sessions with a connected person or spectator pay for
    /// it; a full queue drops (the next snapshot replaces a lost one).
    fn publish_to_clients(&mut self) {
        let Some(feed) = &self.feed else {
            return;
        };
        if self.people_connected() == 0 && self.spectators == 0 {
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
        let free = self
            .published
            .iter_mut()
            .position(|buffer| Arc::get_mut(buffer).is_some());
        let buffer = match free {
            Some(index) => &mut self.published[index],
            None => {
                // The net loop is far behind and holds them all.
                self.published[0] = Arc::default();
                &mut self.published[0]
            }
        };
        // Unshared now, so this never copies.
        self.session.snapshot(Arc::make_mut(buffer));
        let published = feed.try_send(Feed::Snapshot {
            session: self.id.0,
            snapshot: buffer.clone(),
            queued: Instant::now(),
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

    pub fn info(&self) -> SessionInfo {
        let summary = self.session.summary();
        SessionInfo {
            id: self.id,
            map: self.map.clone(),
            content_version: super::ContentVersion(self.session.content().version),
            state: self.state,
            max_players: self.seats.len() as u8,
            players: self.people_connected(),
            spectators: self.spectators,
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
    feed: Option<&FeedSender>,
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
