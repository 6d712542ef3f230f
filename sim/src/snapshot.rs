//! A read-only picture of a session at a tick boundary: what clients render,
//! bots reason about, and the network layer encodes.

use glam::Vec2;

use crate::command::{PlayerId, Targeting, TowerId};
use crate::content::{EnemyKindId, TowerKindId};
use crate::event::Outcome;
use crate::grid::Cell;

/// One seat.
#[derive(Clone, Debug, PartialEq)]
pub struct PlayerView {
    /// Seat.
    pub id: PlayerId,
    /// Gold in hand.
    pub gold: u32,
    /// Declared ready.
    pub ready: bool,
    /// Enemies this player killed.
    pub kills: u32,
}

/// One enemy.
#[derive(Clone, Debug, PartialEq)]
pub struct EnemyView {
    /// Session-unique id.
    pub id: u32,
    /// Kind.
    pub kind: EnemyKindId,
    /// Position in cells.
    pub position: Vec2,
    /// Hit points left.
    pub hp: f32,
    /// Hit points at spawn.
    pub max_hp: f32,
    /// Flies.
    pub flying: bool,
    /// Under a slow.
    pub slowed: bool,
    /// Under damage over time.
    pub burning: bool,
}

/// One tower.
#[derive(Clone, Debug, PartialEq)]
pub struct TowerView {
    /// Id.
    pub id: TowerId,
    /// Owner.
    pub owner: PlayerId,
    /// Kind.
    pub kind: TowerKindId,
    /// Level, 0 as built.
    pub level: u8,
    /// Where.
    pub cell: Cell,
    /// Targeting mode.
    pub targeting: Targeting,
}

/// One projectile in flight.
#[derive(Clone, Debug, PartialEq)]
pub struct ProjectileView {
    /// Session-unique id.
    pub id: u32,
    /// Kind of the tower that fired it.
    pub tower_kind: TowerKindId,
    /// Position in cells.
    pub position: Vec2,
    /// Where it is going.
    pub aim: Vec2,
}

/// The whole visible state, every list sorted by id. Reuse one value with
/// [`crate::Session::snapshot`] to avoid allocating each time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Ticks stepped so far.
    pub tick: u64,
    /// Waves started so far.
    pub wave: u32,
    /// Shared lives left.
    pub lives: u32,
    /// Set once the session is decided.
    pub outcome: Option<Outcome>,
    /// Seats.
    pub players: Vec<PlayerView>,
    /// Enemies.
    pub enemies: Vec<EnemyView>,
    /// Towers.
    pub towers: Vec<TowerView>,
    /// Projectiles.
    pub projectiles: Vec<ProjectileView>,
}
