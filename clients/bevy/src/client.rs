//! [`RampartClientPlugin`]: a Bevy app plays a seat on a rampart server.
//!
//! Each frame, in [`RampartSystems::Receive`] (`PreUpdate`), the link
//! finishes a join running on its own thread, runs the connection, turns
//! what arrived into messages and mirrors the newest world; in
//! [`RampartSystems::Send`] (`PostUpdate`) it sends what the game queued
//! during `Update`. A drop, or the server moving or draining the session,
//! starts a rejoin with the reconnect token that keeps trying until the
//! reconnect window closes.

use std::collections::HashMap;
use std::thread::JoinHandle;
use std::time::Duration;

use bevy_app::prelude::*;
use bevy_ecs::prelude::*;
use bevy_state::prelude::*;
use bevy_time::{Real, Time};
use rampart_net::client::{Client, ClientError, JoinResponse};
use rampart_net::protocol::{ByeReason, EndReason, ServerMessage, WireEvent};
use rampart_sim::{Command, PlayerId};

use crate::commands::{ChatLine, CommandAnswered, CommandFailure, CommandId, Outbox, SessionEvent};
use crate::join::{JoinError, JoinSettings, JoinTarget, join_and_connect};
use crate::state::{ConnectionState, EndCause};
use crate::world::{LocalSeat, Mirror, SessionInfo, place_movers};
use crate::{CorePlugin, RampartSystems};

/// How far past the newest snapshot movers are extrapolated along their
/// trajectories when snapshots stop coming (a stall, a drop).
const MAX_EXTRAPOLATION: Duration = Duration::from_millis(250);
/// The pause between rejoin attempts while reconnecting.
const REJOIN_PAUSE: Duration = Duration::from_secs(1);

/// Plays a seat on a rampart server: joins over HTTP, connects over UDP or
/// WebSocket, mirrors the world (see [`crate::world`]), sends
/// [`crate::GameCommands`], and rejoins on its own after a drop.
pub struct RampartClientPlugin {
    /// The server and how to join it.
    pub settings: JoinSettings,
    /// Joined at startup when set; else the app joins when it sends
    /// [`JoinGame`].
    pub join: Option<JoinTarget>,
    /// How long after a drop the link keeps trying to take its seat back.
    /// Keep it within the server's `reconnect_grace_seconds` (60 by
    /// default), after which the seat is given up.
    pub reconnect_window: Duration,
}

impl RampartClientPlugin {
    /// Joins `target` on the server at `server` (`http://host:port`) at
    /// startup, over UDP, anonymously.
    pub fn new(server: impl Into<String>, target: JoinTarget) -> Self {
        Self {
            settings: JoinSettings::new(server),
            join: Some(target),
            reconnect_window: Duration::from_secs(55),
        }
    }
}

/// Asks the client plugin to join a game (when idle or after an end).
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct JoinGame(pub JoinTarget);

/// Asks the client plugin to leave: the connection closes at once; the seat
/// and its towers stay in the game, reclaimable with the reconnect token
/// within the server's grace.
#[derive(Message, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaveGame;

impl Plugin for RampartClientPlugin {
    fn build(&self, app: &mut App) {
        CorePlugin::add_to(app);
        app.add_message::<JoinGame>()
            .add_message::<LeaveGame>()
            .insert_resource(Link::new(self.settings.clone(), self.reconnect_window))
            .add_systems(
                PreUpdate,
                (start_joins, drive_link, place_movers)
                    .chain()
                    .in_set(RampartSystems::Receive),
            )
            .add_systems(PostUpdate, send_queued.in_set(RampartSystems::Send));
        if let Some(target) = &self.join {
            app.world_mut().write_message(JoinGame(target.clone()));
        }
    }
}

/// A join running on its own thread: seated and connected, or why not.
type PendingJoin = JoinHandle<Result<(JoinResponse, Client), JoinError>>;

/// The connection and everything known about the seat.
#[derive(Resource)]
pub(crate) struct Link {
    settings: JoinSettings,
    reconnect_window: Duration,
    pending: Option<PendingJoin>,
    client: Option<Client>,
    /// The last join's answer: the session and the reconnect token.
    seat: Option<JoinResponse>,
    /// Commands sent on the current connection, by `seq`.
    in_flight: HashMap<u32, (CommandId, Command)>,
    /// The session the mirrored world belongs to.
    session: Option<u64>,
    tick_hz: u32,
    /// Tick of the newest mirrored world, and when (real time) it arrived.
    newest: Option<(u64, Duration)>,
    /// While reconnecting: when the drop happened and when to try next.
    dropped_at: Duration,
    retry_at: Duration,
}

impl Link {
    fn new(settings: JoinSettings, reconnect_window: Duration) -> Self {
        Self {
            settings,
            reconnect_window,
            pending: None,
            client: None,
            seat: None,
            in_flight: HashMap::new(),
            session: None,
            tick_hz: 1,
            newest: None,
            dropped_at: Duration::ZERO,
            retry_at: Duration::ZERO,
        }
    }

    fn spawn_join(&mut self, target: JoinTarget) {
        let settings = self.settings.clone();
        let spawned = std::thread::Builder::new()
            .name("rampart-join".into())
            .spawn(move || join_and_connect(&settings, &target));
        match spawned {
            Ok(handle) => self.pending = Some(handle),
            Err(error) => tracing::error!(%error, "cannot start a thread to join on"),
        }
    }

    /// Drops the connection, answering every command still waiting.
    fn drop_client(&mut self, answered: &mut MessageWriter<CommandAnswered>) {
        self.client = None;
        for (_, (id, command)) in self.in_flight.drain() {
            answered.write(CommandAnswered {
                id,
                command,
                result: Err(CommandFailure::Unanswered),
            });
        }
    }
}

/// Starts the joins the game asked for.
fn start_joins(
    mut requests: MessageReader<JoinGame>,
    mut link: ResMut<Link>,
    state: Res<State<ConnectionState>>,
    mut next: ResMut<NextState<ConnectionState>>,
) {
    for JoinGame(target) in requests.read() {
        let idle = matches!(
            state.get(),
            ConnectionState::Idle | ConnectionState::Ended(_)
        );
        if !idle || link.pending.is_some() {
            tracing::warn!(
                ?target,
                "a join was asked for while already in a game; ignored"
            );
            continue;
        }
        link.seat = None;
        link.spawn_join(target.clone());
        next.set(ConnectionState::Joining);
    }
}

/// What the connection's end means for the link.
enum Dropped {
    /// Take the seat back with the reconnect token.
    Rejoin,
    /// Over.
    End(EndCause),
}

fn classify(error: &ClientError) -> Dropped {
    match error {
        ClientError::Bye(ByeReason::SessionEnded(EndReason::Moved))
        | ClientError::Bye(ByeReason::ServerShutdown | ByeReason::TimedOut)
        | ClientError::Io(_)
        | ClientError::Netcode(_)
        | ClientError::WebSocket(_)
        | ClientError::Disconnected(_) => Dropped::Rejoin,
        ClientError::Bye(ByeReason::SessionEnded(reason)) => {
            Dropped::End(EndCause::SessionEnded(*reason))
        }
        ClientError::Bye(reason) => Dropped::End(EndCause::Refused(*reason)),
        ClientError::Token(message) => {
            Dropped::End(EndCause::JoinFailed(JoinError::Connect(message.clone())))
        }
    }
}

/// Runs the link one frame: joins finishing, the connection, what arrived,
/// the world, and rejoining after a drop.
#[allow(clippy::too_many_arguments)]
fn drive_link(
    mut link: ResMut<Link>,
    time: Res<Time<Real>>,
    state: Res<State<ConnectionState>>,
    mut next: ResMut<NextState<ConnectionState>>,
    mut leaves: MessageReader<LeaveGame>,
    mut mirror: Mirror,
    mut local: ResMut<LocalSeat>,
    mut info: Option<ResMut<SessionInfo>>,
    mut commands: Commands,
    mut answered: MessageWriter<CommandAnswered>,
    mut events: MessageWriter<SessionEvent>,
    mut chat: MessageWriter<ChatLine>,
) {
    let now = time.elapsed();
    let link = &mut *link;
    let reconnecting = *state.get() == ConnectionState::Reconnecting;
    if leaves.read().count() > 0 && !matches!(state.get(), ConnectionState::Ended(_)) {
        if let Some(client) = link.client.as_mut() {
            client.disconnect();
        }
        link.drop_client(&mut answered);
        // A join still running is left to finish on its own; its result
        // is not taken.
        link.pending = None;
        next.set(ConnectionState::Ended(EndCause::Left));
        return;
    }

    if link.pending.as_ref().is_some_and(JoinHandle::is_finished)
        && let Some(handle) = link.pending.take()
    {
        let outcome = handle
            .join()
            .unwrap_or_else(|_| Err(JoinError::Connect("the join thread panicked".to_owned())));
        match outcome {
            Ok((answer, client)) => {
                link.client = Some(client);
                link.seat = Some(answer);
                if !reconnecting {
                    next.set(ConnectionState::Connecting);
                }
            }
            Err(error) if reconnecting && error.is_transient() => {
                tracing::info!(%error, "rejoin failed; trying again");
                link.retry_at = now + REJOIN_PAUSE;
            }
            Err(error) => {
                tracing::warn!(%error, "join failed");
                next.set(ConnectionState::Ended(EndCause::JoinFailed(error)));
                return;
            }
        }
    }

    if reconnecting && link.client.is_none() && link.pending.is_none() {
        if now.saturating_sub(link.dropped_at) > link.reconnect_window {
            next.set(ConnectionState::Ended(EndCause::JoinFailed(
                JoinError::Unavailable {
                    waited: link.reconnect_window,
                    message: "could not take the seat back within the reconnect window".into(),
                },
            )));
            return;
        }
        if now >= link.retry_at
            && let Some(token) = link.seat.as_ref().map(|seat| seat.reconnect_token.clone())
        {
            link.spawn_join(JoinTarget::Reconnect(token));
        }
    }

    let Some(client) = link.client.as_mut() else {
        return;
    };
    let result = client.update(time.delta());
    while let Some(message) = client.poll() {
        match message {
            ServerMessage::Welcome(welcome) => {
                if link.session != Some(welcome.session) {
                    mirror.clear();
                    link.newest = None;
                    link.session = Some(welcome.session);
                }
                link.tick_hz = u32::from(welcome.tick_hz.max(1));
                local.set_if_neq(LocalSeat(welcome.player.map(PlayerId)));
                let welcomed = SessionInfo {
                    session: welcome.session,
                    map: welcome.map,
                    players: welcome.players,
                    tick_hz: link.tick_hz,
                };
                match info.as_mut() {
                    Some(info) => {
                        info.set_if_neq(welcomed);
                    }
                    None => commands.insert_resource(welcomed),
                }
                next.set(ConnectionState::Playing);
            }
            ServerMessage::CommandResult { seq, result } => {
                if let Some((id, command)) = link.in_flight.remove(&seq) {
                    answered.write(CommandAnswered {
                        id,
                        command,
                        result: result.map_err(CommandFailure::Refused),
                    });
                }
            }
            ServerMessage::Event { tick, event } => {
                if event == WireEvent::Draining {
                    tracing::info!("the server is draining; the session moves on");
                }
                events.write(SessionEvent { tick, event });
            }
            ServerMessage::Chat { player, text } => {
                chat.write(ChatLine {
                    player: PlayerId(player),
                    text,
                });
            }
            // The goodbye comes back as `update`'s error.
            ServerMessage::Bye { .. } => {}
        }
    }
    if client.welcome().is_some() && client.stats().snapshots > 0 {
        let world = client.world();
        if link.newest.is_none_or(|(tick, _)| tick != world.tick) {
            mirror.apply(world, link.tick_hz);
            link.newest = Some((world.tick, now));
        }
    }
    if let Some((tick, arrived)) = link.newest {
        let ahead = now.saturating_sub(arrived).min(MAX_EXTRAPOLATION);
        mirror.set_render_tick(tick as f64 + ahead.as_secs_f64() * f64::from(link.tick_hz));
    }
    if let Err(error) = result {
        let can_rejoin = link.seat.is_some();
        link.drop_client(&mut answered);
        match classify(&error) {
            Dropped::Rejoin if can_rejoin => {
                tracing::info!(%error, "connection lost; taking the seat back");
                if !reconnecting {
                    link.dropped_at = now;
                }
                link.retry_at = now;
                next.set(ConnectionState::Reconnecting);
            }
            Dropped::Rejoin => next.set(ConnectionState::Ended(EndCause::JoinFailed(
                JoinError::Connect(error.to_string()),
            ))),
            Dropped::End(cause) => next.set(ConnectionState::Ended(cause)),
        }
    }
}

/// Sends what the game queued this frame once the seat is live; answers it
/// [`CommandFailure::NoSeat`] when there is no game to send it to.
fn send_queued(
    mut link: ResMut<Link>,
    mut outbox: ResMut<Outbox>,
    state: Res<State<ConnectionState>>,
    mut answered: MessageWriter<CommandAnswered>,
) {
    let link = &mut *link;
    match state.get() {
        ConnectionState::Playing => {}
        ConnectionState::Idle | ConnectionState::Ended(_) => {
            for (id, command) in outbox.commands.drain(..) {
                answered.write(CommandAnswered {
                    id,
                    command,
                    result: Err(CommandFailure::NoSeat),
                });
            }
            outbox.chat.clear();
            return;
        }
        // Kept until the seat is live.
        _ => return,
    }
    let Some(client) = link.client.as_mut() else {
        return;
    };
    for (id, command) in outbox.commands.drain(..) {
        match client.send_command(command) {
            Ok(seq) => {
                link.in_flight.insert(seq, (id, command));
            }
            Err(error) => {
                tracing::debug!(%error, "a command could not be sent");
                answered.write(CommandAnswered {
                    id,
                    command,
                    result: Err(CommandFailure::Unanswered),
                });
            }
        }
    }
    for text in outbox.chat.drain(..) {
        if let Err(error) = client.chat(&text) {
            tracing::debug!(%error, "a chat line could not be sent");
        }
    }
}
