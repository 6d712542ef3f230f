//! The tick: the steps of one session-tick, run in a fixed order by one
//! function over the session's `Game`.
//!
//! A session once ran these steps as ten bevy systems in a chained
//! schedule over a bevy `World`. In a host of a thousand sessions every
//! world is cold when its tick starts, and each system's run cost more than
//! most systems' work: the executor's pass, fetching its parameters,
//! checking its queries' archetypes, applying its own command queue. Here
//! the steps are plain functions over plain lists (`world/`), so the order
//! is the code's and there is no schedule to make ambiguous.

mod deaths;
mod effects;
mod movement;
mod outcome;
mod projectiles;
mod targeting;
pub(crate) mod waves;

use std::cell::RefCell;

use crate::world::{Game, Projectile};

use targeting::EnemyIndex;

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
    shots: Vec<Projectile>,
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
/// Enemies spawned, shots fired and towers placed this tick start acting
/// next tick, and towers sold this tick stand (and fire) until its end;
/// leaked and dead enemies leave the board at step 8 (leaked ones are
/// flagged `gone` until then), and the outcome counts the living through
/// `Match::alive`.
///
/// No step checks whether the game is over: `Session::step` stops
/// running the tick once an outcome is decided, and only step 9
/// decides it.
pub(crate) fn run_tick(game: &mut Game) {
    let field_version = game.board.field_version;
    crate::commands::apply_commands(game);
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
        targeting::fire_towers(game, index, shots);
        projectiles::fly_projectiles(game, index, impacts, victims);
        targeting::launch(game, shots);
    });
    deaths::remove_dead(game);
    game.towers.settle();
    outcome::decide_outcome(game);
    game.clock.tick += 1;
}
