//! What a session's state is: `Game`, with its towers, enemies and shots in
//! flight.
//!
//! Towers, enemies and shots each carry their own stable id, which reaches
//! players and the state hash. Each kind has its own module, holding its
//! data together with its record in the save and its part of the state
//! hash, so a new field is declared, saved, restored and hashed in one
//! file.

mod enemy;
mod projectile;
mod tower;

pub(crate) use enemy::{Afflictions, Enemies, Enemy};
pub(crate) use projectile::{InFlight, Projectile, Projectiles};
pub(crate) use tower::{Tower, Towers};

use std::sync::Arc;

use glam::Vec2;
use rand_pcg::Pcg32;

use crate::command::{CommandTicket, PlayerId};
use crate::event::{Event, Outcome};
use crate::grid::Cell;
use crate::path::{FlowField, STRAIGHT_COST};
use crate::rules::Rules;

/// A session's whole state, handed to the steps, which destructure the
/// parts they use (what each reads and writes is in its first lines).
///
/// Plain data, not a bevy `World` of entities and resources: in a host of
/// a thousand sessions each session is cold when its tick starts, and the
/// tick is bound by the cache lines it touches. Every resource fetch (in
/// bevy 0.20 a resource is a component of an entity of its own), every
/// query's archetype check and table look-up, every spawn's and despawn's
/// bookkeeping was a chain of misses; the lists here are read straight
/// through. `docs/BENCHMARKS.md` has the measurements of each step out of
/// the world: the resources, shots, enemies, then towers.
#[derive(Debug)]
pub(crate) struct Game {
    pub clock: Clock,
    pub rules: SessionRules,
    pub board: Board,
    pub players: Players,
    pub state: Match,
    pub waves: Waves,
    pub ids: Ids,
    pub rng: SimRng,
    pub inbox: Inbox,
    pub events: Events,
    pub towers: Towers,
    pub enemies: Enemies,
    pub projectiles: Projectiles,
}

/// Centre of a cell in world units (one unit per cell).
pub(crate) fn cell_centre(x: usize, y: usize) -> Vec2 {
    Vec2::new(x as f32 + 0.5, y as f32 + 0.5)
}

/// The tick counter: the session's only notion of time.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    pub tick: u64,
}

/// Content in tick units, shared with the other sessions of the same
/// content, map and tick rate.
#[derive(Debug)]
pub(crate) struct SessionRules(pub Arc<Rules>);

/// The map as it stands now: terrain, towers, and the flow field enemies follow.
#[derive(Debug)]
pub(crate) struct Board {
    pub width: u16,
    pub height: u16,
    pub buildable: Vec<bool>,
    /// Terrain walkable and no tower on it.
    pub walkable: Vec<bool>,
    /// Whether a tower stands on each cell (nothing here asks which: a
    /// byte a cell).
    pub towers: Vec<bool>,
    pub spawns: Vec<usize>,
    pub goals: Vec<usize>,
    pub goal_points: Vec<Vec2>,
    /// The field every ground enemy follows toward the goal set.
    pub field: FlowField,
    /// Cells walking enemies stand on or head for: scratch for placement checks.
    pub occupied: Vec<usize>,
    /// Bumped whenever `field` changes; tools cache route analysis by it.
    pub field_version: u64,
}

impl Board {
    pub(crate) fn index(&self, cell: Cell) -> usize {
        usize::from(cell.y) * usize::from(self.width) + usize::from(cell.x)
    }

    pub(crate) fn centre(&self, index: usize) -> Vec2 {
        let width = usize::from(self.width);
        cell_centre(index % width, index / width)
    }

    /// The cell index under a position, clamped to the grid.
    pub(crate) fn index_at(&self, position: Vec2) -> usize {
        let x = (position.x.max(0.0) as usize).min(usize::from(self.width) - 1);
        let y = (position.y.max(0.0) as usize).min(usize::from(self.height) - 1);
        y * usize::from(self.width) + x
    }

    /// Distance from a cell's centre to the goal along the field, in cells
    /// (`f32::MAX` where no goal is reachable).
    pub(crate) fn remaining(&self, index: usize) -> f32 {
        self.field
            .distance(index)
            .map_or(f32::MAX, |cost| cost as f32 / STRAIGHT_COST as f32)
    }

    /// The goal nearest `position` in a straight line (fliers head there).
    pub(crate) fn nearest_goal(&self, position: Vec2) -> Vec2 {
        let mut best = self.goal_points[0];
        for &goal in &self.goal_points[1..] {
            if goal.distance_squared(position) < best.distance_squared(position) {
                best = goal;
            }
        }
        best
    }
}

/// One seat's economy and record.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PlayerState {
    pub gold: u32,
    pub ready: bool,
    pub kills: u32,
    pub gold_earned: u32,
    pub bounty_earned: u32,
    pub towers_built: u32,
}

/// Every seat, indexed by [`PlayerId`].
#[derive(Debug)]
pub(crate) struct Players(pub Vec<PlayerState>);

/// Shared lives, tallies, and the outcome once decided.
#[derive(Debug)]
pub(crate) struct Match {
    pub lives: u32,
    pub kills: u32,
    pub leaks: u32,
    /// Enemies on the board, kept by spawning, leaking and dying so that
    /// summaries need no query.
    pub alive: u32,
    pub outcome: Option<Outcome>,
}

/// A group still spawning.
#[derive(Clone, Debug)]
pub(crate) struct Spawner {
    pub wave_slot: usize,
    pub group: usize,
    pub remaining: u32,
    pub next_tick: u64,
    pub hp_scale: f32,
}

/// Wave progress.
#[derive(Debug)]
pub(crate) struct Waves {
    /// Waves started so far (the 1-based number of the current wave).
    pub started: u32,
    /// When the next wave starts by itself; `None` once none is left.
    pub next_start: Option<u64>,
    /// Hit point multiplier of the current endless cycle.
    pub hp_scale: f32,
    pub spawners: Vec<Spawner>,
}

/// Id counters: ids are never reused, so a stale id in a command is caught.
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub next_enemy: u32,
    pub next_tower: u32,
    pub next_projectile: u32,
}

/// The session's only randomness, seeded from the session seed.
#[derive(Debug)]
pub(crate) struct SimRng(pub Pcg32);

/// A command waiting for the next tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub ticket: CommandTicket,
    pub player: PlayerId,
    pub command: crate::command::Command,
}

/// Commands submitted since the last tick.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    pub pending: Vec<Pending>,
    pub next_ticket: u64,
}

/// Events of the last tick.
#[derive(Debug, Default)]
pub(crate) struct Events(pub Vec<Event>);
