//! The tick: one chained schedule of systems per session.
//!
//! Chaining fixes the order (bevy would otherwise run unordered systems in an
//! arbitrary order), and the schedule refuses ambiguous systems at build time,
//! so a new system cannot silently make a session nondeterministic.

mod deaths;
mod effects;
#[cfg(feature = "fault-injection")]
pub(crate) mod fault;
mod movement;
mod outcome;
mod projectiles;
mod targeting;
pub(crate) mod waves;

use bevy_ecs::prelude::*;
use bevy_ecs::schedule::{LogLevel, ScheduleBuildSettings, ScheduleLabel, SingleThreadedExecutor};

pub(crate) use targeting::EnemyIndex;

/// Step 10: the tick is over.
fn advance_clock(mut game: ResMut<crate::world::Game>) {
    game.clock.tick += 1;
}

/// The schedule a session runs once per tick.
#[derive(ScheduleLabel, Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionTick;

/// Builds the tick schedule. The steps, in order:
/// 1. apply the players' commands of this tick, sorted by player;
/// 2. start waves that are due and spawn their enemies;
/// 3. move enemies along the flow field (fliers straight), and leak those at a goal;
/// 4. burn enemies under damage over time;
/// 5. index living enemies by area for targeting;
/// 6. let every ready tower pick a target and fire;
/// 7. fly projectiles, and apply hits, splash and effects;
/// 8. remove the dead and pay their bounty;
/// 9. decide victory or defeat;
/// 10. advance the clock.
///
/// No system checks whether the game is over: `Session::step` stops running
/// the schedule once an outcome is decided, and only step 9 decides it.
pub(crate) fn tick_schedule() -> Schedule {
    let mut schedule = Schedule::new(SessionTick);
    schedule.set_executor(SingleThreadedExecutor::new());
    schedule.set_build_settings(ScheduleBuildSettings {
        ambiguity_detection: LogLevel::Error,
        // Spawns and despawns wait for the end of the tick: enemies and
        // projectiles spawned this tick start moving next tick, leaked
        // enemies are flagged `gone` until then, and the outcome counts the
        // living through `Match::alive`. No sync point inside the tick
        // saves one executor pass per system that has commands.
        auto_insert_apply_deferred: false,
        ..Default::default()
    });
    schedule.add_systems(
        (
            crate::commands::apply_commands,
            waves::advance_waves,
            movement::move_enemies,
            effects::burn_enemies,
            targeting::index_enemies,
            targeting::fire_towers,
            projectiles::fly_projectiles,
            deaths::remove_dead,
            outcome::decide_outcome,
            advance_clock,
        )
            .chain(),
    );
    #[cfg(feature = "fault-injection")]
    schedule.add_systems(fault::panic_if_injected.before(crate::commands::apply_commands));
    schedule
}
