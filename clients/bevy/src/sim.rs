//! [`SimPlugin`]: the deterministic simulation inside the app, for offline
//! single player (the other seats played by the scripted bots), replays of
//! a command log, and tools. It steps the session once per `FixedUpdate` at
//! the session's tick rate and offers exactly what [`crate::RampartClientPlugin`]
//! offers: the mirrored world, [`crate::GameCommands`] with their answers,
//! session events, chat and [`ConnectionState`], so a game switches between
//! online and offline by swapping one plugin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bevy_app::prelude::*;
use bevy_ecs::prelude::*;
use bevy_state::prelude::*;
use bevy_time::{Fixed, Time};
use rampart_net::protocol::{EndReason, WireEvent, WireRejection};
use rampart_net::snapshot::WorldTracker;
use rampart_sim::bots::{BotStyle, ScriptedPlayer};
use rampart_sim::log::{CommandLog, LogEntry, LogError};
use rampart_sim::{
    Command, CommandTicket, Content, Event, Outcome, PlayerId, Session, SessionConfig,
    SessionError, Snapshot,
};

use crate::commands::{ChatLine, CommandAnswered, CommandFailure, CommandId, Outbox, SessionEvent};
use crate::state::{ConnectionState, EndCause};
use crate::world::{LocalSeat, Mirror, SessionInfo, place_movers};
use crate::{CorePlugin, RampartSystems};

/// Runs a session in the app. Build it with [`SimPlugin::play`] or
/// [`SimPlugin::replay`], which check the content and the settings, so
/// adding the plugin cannot fail.
pub struct SimPlugin {
    /// Taken by `build` (a plugin is built once).
    session: Mutex<Option<SimSession>>,
    tick_hz: u32,
}

impl SimPlugin {
    /// A game where this app plays `seat` and scripted bots of `bots`'
    /// style play every other seat of `config`.
    ///
    /// # Errors
    /// When the session cannot be built from `config` (unknown map or
    /// scenario, seats or tick rate out of range), or `seat` is not one of
    /// its seats.
    pub fn play(
        content: Arc<Content>,
        config: &SessionConfig,
        seat: PlayerId,
        bots: BotStyle,
    ) -> Result<Self, SessionError> {
        if seat.0 >= config.players {
            return Err(SessionError::Players {
                players: config.players,
                needed: seat.0 + 1,
            });
        }
        let session = Session::new(content, config)?;
        let bots = (0..config.players)
            .filter(|&other| other != seat.0)
            .map(|other| ScriptedPlayer::new(PlayerId(other), bots, config.seed))
            .collect();
        Ok(Self::new(SimSession::new(session, Some(seat), bots, None)))
    }

    /// Plays `log` back: its commands at their ticks, until its end (or the
    /// game's). The app holds no seat: its own commands are answered
    /// [`CommandFailure::NoSeat`].
    ///
    /// # Errors
    /// When `content` is not the content the log was recorded with, or its
    /// header names a session that cannot be built.
    pub fn replay(content: Arc<Content>, log: CommandLog) -> Result<Self, LogError> {
        if content.version != log.content_version {
            return Err(LogError::ContentMismatch {
                recorded: log.content_version,
                loaded: content.version,
            });
        }
        let session = Session::new(content, &log.config)?;
        Ok(Self::new(SimSession::new(
            session,
            None,
            Vec::new(),
            Some(log),
        )))
    }

    fn new(session: SimSession) -> Self {
        Self {
            tick_hz: session.session.tick_hz(),
            session: Mutex::new(Some(session)),
        }
    }
}

impl Plugin for SimPlugin {
    fn build(&self, app: &mut App) {
        CorePlugin::add_to(app);
        app.insert_resource(Time::<Fixed>::from_hz(f64::from(self.tick_hz)))
            .add_systems(OnEnter(ConnectionState::Idle), start_playing)
            .add_systems(FixedUpdate, step.in_set(RampartSystems::Receive))
            .add_systems(
                RunFixedMainLoop,
                (advance_render_tick, place_movers)
                    .chain()
                    .in_set(RunFixedMainLoopSystems::AfterFixedMainLoop)
                    .in_set(RampartSystems::Receive),
            )
            .add_systems(PostUpdate, answer_without_seat.in_set(RampartSystems::Send));
        let taken = self
            .session
            .lock()
            .map(|mut session| session.take())
            .unwrap_or_default();
        match taken {
            Some(session) => {
                let config = session.session.config();
                let info = SessionInfo {
                    session: 0,
                    map: config.map.clone(),
                    players: config.players,
                    tick_hz: config.tick_hz,
                };
                app.insert_resource(LocalSeat(session.seat))
                    .insert_resource(info)
                    .insert_resource(session);
            }
            None => tracing::error!("SimPlugin was built twice; the second app has no session"),
        }
    }
}

/// The running session and what steps it.
#[derive(Resource)]
pub struct SimSession {
    session: Session,
    seat: Option<PlayerId>,
    bots: Vec<ScriptedPlayer>,
    replay: Option<Replay>,
    tracker: WorldTracker,
    snapshot: Snapshot,
    /// Commands submitted and not yet answered, by the session's ticket.
    tickets: HashMap<CommandTicket, (CommandId, Command)>,
}

/// A log being played back.
struct Replay {
    entries: Vec<LogEntry>,
    next: usize,
    /// Stop here (the log's end, or its last command's tick).
    until: u64,
}

impl SimSession {
    fn new(
        session: Session,
        seat: Option<PlayerId>,
        bots: Vec<ScriptedPlayer>,
        log: Option<CommandLog>,
    ) -> Self {
        let replay = log.map(|log| Replay {
            until: log.end.map_or_else(
                || log.entries.last().map_or(0, |entry| entry.tick + 1),
                |end| end.ticks,
            ),
            entries: log.entries,
            next: 0,
        });
        Self {
            session,
            seat,
            bots,
            replay,
            tracker: WorldTracker::new(),
            snapshot: Snapshot::default(),
            tickets: HashMap::new(),
        }
    }

    /// The session, for tools (its board, results, summary).
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session's state hash (what `rampart replay` prints).
    pub fn state_hash(&mut self) -> u64 {
        self.session.state_hash()
    }

    /// True once the game is decided or a replay has played its log.
    pub fn finished(&self) -> bool {
        self.session.outcome().is_some()
            || self
                .replay
                .as_ref()
                .is_some_and(|replay| self.session.tick() >= replay.until)
    }
}

/// The offline game is live from the first frame.
fn start_playing(mut next: ResMut<NextState<ConnectionState>>) {
    next.set(ConnectionState::Playing);
}

/// One tick: the game's commands, the bots', the log's; the step; its
/// events and answers as messages; the world mirrored.
#[allow(clippy::too_many_arguments)]
fn step(
    mut sim: ResMut<SimSession>,
    mut outbox: ResMut<Outbox>,
    mut mirror: Mirror,
    mut next: ResMut<NextState<ConnectionState>>,
    mut answered: MessageWriter<CommandAnswered>,
    mut events: MessageWriter<SessionEvent>,
    mut chat: MessageWriter<ChatLine>,
) {
    let sim = &mut *sim;
    if sim.finished() {
        return;
    }
    if let Some(seat) = sim.seat {
        for (id, command) in outbox.commands.drain(..) {
            let ticket = sim.session.submit(seat, command);
            sim.tickets.insert(ticket, (id, command));
        }
        for text in outbox.chat.drain(..) {
            chat.write(ChatLine { player: seat, text });
        }
    }
    let tick = sim.session.tick();
    if sim.bots.iter().any(|bot| bot.wants_to_think(tick)) {
        sim.session.snapshot(&mut sim.snapshot);
        for bot in &mut sim.bots {
            if let Some(command) = bot.think(&sim.session, &sim.snapshot) {
                sim.session.submit(bot.player(), command);
            }
        }
    }
    if let Some(replay) = &mut sim.replay {
        while let Some(entry) = replay
            .entries
            .get(replay.next)
            .filter(|entry| entry.tick == tick)
        {
            sim.session.submit(entry.player, entry.command);
            replay.next += 1;
        }
    }
    sim.session.step();
    for event in sim.session.events() {
        if let Event::CommandResult { ticket, result, .. } = event {
            if let Some((id, command)) = sim.tickets.remove(ticket) {
                answered.write(CommandAnswered {
                    id,
                    command,
                    result: result.map_err(|rejection| {
                        CommandFailure::Refused(WireRejection::Game(rejection))
                    }),
                });
            }
        } else if let Some(event) = WireEvent::from_event(event) {
            events.write(SessionEvent { tick, event });
        }
    }
    sim.session.snapshot(&mut sim.snapshot);
    let world = sim.tracker.observe(&sim.snapshot);
    mirror.apply(world, sim.session.tick_hz());
    match sim.session.outcome() {
        Some(Outcome::Victory) => next.set(ConnectionState::Ended(EndCause::SessionEnded(
            EndReason::Victory,
        ))),
        Some(Outcome::Defeat) => next.set(ConnectionState::Ended(EndCause::SessionEnded(
            EndReason::Defeat,
        ))),
        None => {}
    }
}

/// Movers are drawn where they will be between this tick and the next.
fn advance_render_tick(sim: Res<SimSession>, time: Res<Time<Fixed>>, mut mirror: Mirror) {
    let fraction = if sim.finished() {
        0.0
    } else {
        time.overstep_fraction_f64()
    };
    mirror.set_render_tick(sim.session.tick() as f64 + fraction);
}

/// Commands from an app with no seat (a replay), or after the game ended,
/// are answered at once.
fn answer_without_seat(
    sim: Res<SimSession>,
    mut outbox: ResMut<Outbox>,
    mut answered: MessageWriter<CommandAnswered>,
) {
    if sim.seat.is_some() && sim.session.outcome().is_none() {
        return;
    }
    for (id, command) in outbox.commands.drain(..) {
        answered.write(CommandAnswered {
            id,
            command,
            result: Err(if sim.seat.is_some() {
                CommandFailure::Refused(WireRejection::Game(rampart_sim::Rejection::GameOver))
            } else {
                CommandFailure::NoSeat
            }),
        });
    }
    outbox.chat.clear();
}
