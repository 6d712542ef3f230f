//! The tick: the steps of one session-tick, run in a fixed order by one
//! function.
//!
//! A session once ran these steps as ten bevy systems in a chained
//! schedule. In a host of a thousand sessions every world is cold when its
//! tick starts, and each system's run cost more than most systems' work:
//! the executor's pass, fetching its parameters (the `Game` resource ten
//! times a tick), checking each of nine queries' archetypes, applying its
//! own command queue. Here one query serves every step (the towers) and one
//! command queue is applied at the end of the tick; the rest of the state
//! is the `Game` beside the world, enemies and shots in flight as plain
//! lists (see `world/enemy.rs` and `world/projectile.rs`).
//! The order is the code's, so there is no schedule to make ambiguous.

mod deaths;
mod effects;
#[cfg(feature = "fault-injection")]
pub(crate) mod fault;
mod movement;
mod outcome;
mod projectiles;
mod targeting;
pub(crate) mod waves;

use std::cell::RefCell;

use bevy_ecs::prelude::*;
use bevy_ecs::system::{SystemParam, SystemState};

use crate::world::{Game, Projectile, Tower};

use targeting::EnemyIndex;

/// The entities a tick reads and writes, fetched once per tick (the rest
/// of the state is the session's `Game`, beside the world).
#[derive(SystemParam)]
struct TickParams<'w, 's> {
    commands: Commands<'w, 's>,
    towers: Query<'w, 's, &'static mut Tower>,
}

/// What the steps build and drain within one tick: the enemy index and
/// the lists of the tick's shots, impacts and victims, kept for
/// their capacity.
///
/// Nothing in it outlives a tick, so it belongs to the thread, not to a
/// session: every session stepped on a thread fills the same buffers,
/// which stay in that core's caches, where buffers of their own were cold
/// at each of their sessions' ticks.
#[derive(Default)]
struct Scratch {
    index: EnemyIndex,
    shots: Vec<targeting::Shot>,
    impacts: Vec<Projectile>,
    /// Slots in the session's enemy list.
    victims: Vec<u32>,
}

impl Scratch {
    /// Empties the lists, which the steps leave empty unless a tick
    /// panicked half-way through (a fault kept to its own session).
    fn clear(&mut self) {
        self.shots.clear();
        self.impacts.clear();
        self.victims.clear();
    }
}

thread_local! {
    /// This thread's [`Scratch`].
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// One session's tick: its parameters' cached state (queries' matched
/// archetypes, the command queue).
pub(crate) struct TickSteps {
    params: SystemState<TickParams<'static, 'static>>,
}

impl TickSteps {
    pub(crate) fn new(world: &mut World) -> Self {
        Self {
            params: SystemState::new(world),
        }
    }

    /// Runs one tick's steps, in order:
    /// 1. apply the players' commands of this tick, sorted by player;
    /// 2. start waves that are due and spawn their enemies;
    /// 3. move enemies along the flow field (fliers straight), and leak those at a goal;
    /// 4. burn enemies under damage over time;
    /// 5. index living enemies by area for targeting (3 to 5 in one walk
    ///    over the enemies, one enemy at a time);
    /// 6. let every ready tower pick a target and fire;
    /// 7. fly projectiles, and apply hits, splash and effects; then launch
    ///    step 6's shots;
    /// 8. remove the dead and pay their bounty;
    /// 9. decide victory or defeat;
    /// 10. advance the clock.
    ///
    /// Enemies spawned and shots fired this tick start moving next tick;
    /// leaked and dead enemies leave the board at step 8 (leaked ones are
    /// flagged `gone` until then), and the outcome counts the living
    /// through `Match::alive`.
    ///
    /// No step checks whether the game is over: `Session::step` stops
    /// running the tick once an outcome is decided, and only step 9
    /// decides it.
    pub(crate) fn run(&mut self, world: &mut World, game: &mut Game) {
        #[cfg(feature = "fault-injection")]
        fault::panic_if_injected(world);
        // As a schedule's run would: keeps change ticks from wrapping.
        world.check_change_ticks();
        let params = &mut self.params;
        let TickParams {
            commands,
            mut towers,
        } = match params.get_mut(world) {
            Ok(params) => params,
            Err(error) => unreachable!("queries and commands always validate: {error}"),
        };
        let field_version = game.board.field_version;
        crate::commands::apply_commands(commands, game, towers.reborrow());
        if game.board.field_version != field_version {
            for enemy in game.enemies.walkers_mut() {
                enemy.refresh_heading(&game.board);
            }
        }
        let standing = game.enemies.len();
        waves::advance_waves(game);
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            let Scratch {
                index,
                shots,
                impacts,
                victims,
            } = scratch;
            movement::move_enemies(game, standing, index);
            targeting::fire_towers(game, index, &mut towers, shots);
            projectiles::fly_projectiles(game, index, impacts, victims);
            targeting::launch(game, shots);
        });
        deaths::remove_dead(game);
        outcome::decide_outcome(game);
        game.clock.tick += 1;
        params.apply(world);
    }
}
