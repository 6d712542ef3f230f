//! Bevy plugins for games that play on rampart.
//!
//! - [`RampartClientPlugin`] plays a seat on a rampart server: joins over
//!   HTTP without blocking a frame, connects over UDP or WebSocket, keeps the
//!   session's world mirrored into the ECS, sends commands, and takes the
//!   seat back on its own after a drop.
//! - [`SimPlugin`] runs the same deterministic simulation inside the app
//!   (offline play against bots, replays, tools) and offers exactly the
//!   same world, commands, messages and [`ConnectionState`], so a game
//!   switches between online and offline by swapping one plugin.
//!
//! What a game reads and writes, with either plugin:
//!
//! | what | how |
//! | --- | --- |
//! | enemies, towers, projectiles | entities with [`Enemy`], [`Health`], [`EnemyFlags`], [`Tower`], [`GridCell`], [`Projectile`], [`Motion`], [`Position`] (interpolated every frame) |
//! | the match | resources [`Seats`], [`Wave`], [`SessionInfo`], [`Lives`], [`MatchOutcome`], [`WorldClock`], [`LocalSeat`] |
//! | commands | the [`GameCommands`] system parameter; answers as [`CommandAnswered`] messages carrying the [`CommandId`] |
//! | events and chat | [`SessionEvent`] and [`ChatLine`] messages |
//! | the connection | the [`ConnectionState`] state; [`JoinGame`], [`LeaveGame`] |
//!
//! Everything the plugins do each frame runs in [`RampartSystems::Receive`]
//! (before `Update`: the world and messages are fresh when the game's
//! systems run) and [`RampartSystems::Send`] (`PostUpdate`: what the game
//! queued leaves the same frame).

mod client;
mod commands;
pub mod join;
mod sim;
mod state;
pub mod world;

use bevy_app::prelude::*;
use bevy_ecs::prelude::*;
use bevy_state::app::{AppExtStates, StatesPlugin};
use bevy_time::TimePlugin;

pub use client::{JoinGame, LeaveGame, RampartClientPlugin};
pub use commands::{
    ChatLine, CommandAnswered, CommandFailure, CommandId, GameCommands, SessionEvent,
};
pub use join::{JoinError, JoinSettings, JoinTarget, Transport};
pub use sim::{SimPlugin, SimSession};
pub use state::{ConnectionState, EndCause};
pub use world::{
    Enemy, EnemyFlags, GridCell, Health, Lives, LocalSeat, MatchOutcome, Motion, Position,
    Projectile, Seat, Seats, SessionInfo, Tower, Wave, WorldClock,
};

/// The few names a game needs: `use rampart_bevy::prelude::*;`.
pub mod prelude {
    pub use crate::{
        ChatLine, CommandAnswered, CommandFailure, CommandId, ConnectionState, EndCause, Enemy,
        EnemyFlags, GameCommands, GridCell, Health, JoinGame, JoinSettings, JoinTarget, LeaveGame,
        Lives, LocalSeat, MatchOutcome, Motion, Position, Projectile, RampartClientPlugin,
        RampartSystems, Seats, SessionEvent, SessionInfo, SimPlugin, Tower, Transport, Wave,
        WorldClock,
    };
    pub use rampart_net::protocol::{WireEvent, WireRejection};
    pub use rampart_sim::bots::BotStyle;
    pub use rampart_sim::content::TowerKindId;
    pub use rampart_sim::grid::Cell;
    pub use rampart_sim::{
        Command, Content, Outcome, PlayerId, Rejection, SessionConfig, Targeting, TowerId,
    };
}

/// When the plugins run. Order game systems against these to read the
/// world as mirrored this frame or to have commands leave this frame.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RampartSystems {
    /// The session's news into the app: the connection (or the offline
    /// step), messages, the mirrored world, movers' positions. In
    /// `PreUpdate` (online) or the fixed loop (offline), always before
    /// `Update`.
    Receive,
    /// What the game queued, out: `PostUpdate`.
    Send,
}

/// What both plugins share: states, messages, the mirrored resources.
struct CorePlugin;

impl Plugin for CorePlugin {
    fn build(&self, app: &mut App) {
        if !app.is_plugin_added::<TimePlugin>() {
            app.add_plugins(TimePlugin);
        }
        if !app.is_plugin_added::<StatesPlugin>() {
            app.add_plugins(StatesPlugin);
        }
        app.init_state::<ConnectionState>()
            .add_message::<CommandAnswered>()
            .add_message::<SessionEvent>()
            .add_message::<ChatLine>()
            .init_resource::<commands::Outbox>()
            .init_resource::<world::MirrorIndex>()
            .init_resource::<Seats>()
            .init_resource::<Wave>()
            .init_resource::<Lives>()
            .init_resource::<MatchOutcome>()
            .init_resource::<WorldClock>()
            .init_resource::<LocalSeat>();
    }
}

impl CorePlugin {
    /// Adds the shared part once, whichever plugin comes first.
    fn add_to(app: &mut App) {
        if !app.is_plugin_added::<CorePlugin>() {
            app.add_plugins(CorePlugin);
        }
    }
}
