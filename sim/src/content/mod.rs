//! Designer content: towers, enemy tribes, maps with their waves, scenarios.
//!
//! Files under `assets/` are parsed and validated by [`load_dir`]; what comes
//! out is this plain, already-checked model. Numbers stay in designer units
//! (seconds, cells, cells per second); a session converts them to ticks once
//! when it is built, so the same content serves any tick rate.

mod changes;
mod files;
mod load;
mod movingai;

pub use changes::{ContentChanges, KeyChanges};
pub use files::{BundleError, ContentFile, ContentFiles};
pub use load::{Checked, ContentError, Diagnostic, WarningRules, load_dir};
pub use movingai::{MovingAiError, load_movingai_map, parse_movingai_map};

pub use crate::rules::RulesCache;

use crate::grid::{Cell, Grid};

/// Index of a tower kind in [`Content::towers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TowerKindId(pub u16);

/// Index of an enemy kind in [`Content::enemies`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EnemyKindId(pub u16);

/// Index of a tribe in [`Content::tribes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TribeId(pub u16);

/// Everything a session needs from `assets/`, validated.
#[derive(Clone, Debug)]
pub struct Content {
    /// Tower kinds, sorted by key; a [`TowerKindId`] indexes this.
    pub towers: Vec<TowerKind>,
    /// Enemy kinds of every tribe, sorted by key; an [`EnemyKindId`] indexes this.
    pub enemies: Vec<EnemyKind>,
    /// Tribes, sorted by key.
    pub tribes: Vec<Tribe>,
    /// Playable maps with their waves, sorted by key.
    pub maps: Vec<MapDef>,
    /// Scripted starting positions, sorted by key.
    pub scenarios: Vec<Scenario>,
    /// Hash of every content file's path and bytes: the content version a
    /// recorded log, a snapshot and a client must agree on.
    pub version: u64,
    /// The rules sessions built from this content share, per map and tick
    /// rate; fills itself (start with `RulesCache::default()`).
    pub rules: RulesCache,
}

impl Content {
    /// The tower kind with this key.
    pub fn tower_id(&self, key: &str) -> Option<TowerKindId> {
        self.towers
            .iter()
            .position(|t| t.key == key)
            .map(|i| TowerKindId(i as u16))
    }

    /// The tower kind `id` names.
    pub fn tower(&self, id: TowerKindId) -> &TowerKind {
        &self.towers[usize::from(id.0)]
    }

    /// The enemy kind `id` names.
    pub fn enemy(&self, id: EnemyKindId) -> &EnemyKind {
        &self.enemies[usize::from(id.0)]
    }

    /// The map with this key.
    pub fn map(&self, key: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.key == key)
    }

    /// The scenario with this key.
    pub fn scenario(&self, key: &str) -> Option<&Scenario> {
        self.scenarios.iter().find(|s| s.key == key)
    }
}

/// Which enemies a tower can shoot at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetFilter {
    /// Walking enemies.
    pub ground: bool,
    /// Flying enemies.
    pub air: bool,
}

/// How a projectile flies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flight {
    /// Follows its target; hits it unless the target dies first, in which case
    /// it lands where the target was last seen.
    Homing,
    /// Flies to where the target stood when fired and bursts there.
    Ballistic,
}

/// Kinds of damage; enemies resist each kind separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageType {
    /// Arrows, bolts, cannon balls: reduced by armour.
    Physical,
    /// Spells: ignore armour.
    Magic,
    /// Flames: ignore armour.
    Fire,
}

/// A slowing effect.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Slow {
    /// Speed multiplier while slowed, in `(0, 1)`: 0.6 means 60% speed.
    pub factor: f32,
    /// How long one hit keeps the enemy slowed.
    pub seconds: f32,
}

/// A damage-over-time effect.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DamageOverTime {
    /// Damage per second while it lasts (resistances apply, armour does not).
    pub per_second: f32,
    /// How long one hit keeps it burning.
    pub seconds: f32,
}

/// One level of a tower kind. Level 0 is what gets built.
#[derive(Clone, Debug, PartialEq)]
pub struct TowerLevel {
    /// Gold to build (level 0) or to upgrade to this level.
    pub cost: u32,
    /// Reach, in cells, from the tower's centre.
    pub range: f32,
    /// Seconds between shots.
    pub reload: f32,
    /// Damage of one hit before armour and resistance.
    pub damage: f32,
    /// Kind of that damage.
    pub damage_type: DamageType,
    /// Cells per second.
    pub projectile_speed: f32,
    /// Enemies within this many cells of the impact also take the hit's
    /// damage and effects; 0 means single target.
    pub splash_radius: f32,
    /// Slow applied on hit.
    pub slow: Option<Slow>,
    /// Burn applied on hit.
    pub dot: Option<DamageOverTime>,
}

/// A buildable tower kind.
#[derive(Clone, Debug, PartialEq)]
pub struct TowerKind {
    /// The key designers and commands use (`"arrow"`).
    pub key: String,
    /// Name shown to players.
    pub name: String,
    /// Which enemies it shoots.
    pub targets: TargetFilter,
    /// How its projectiles fly.
    pub flight: Flight,
    /// Share of the gold spent on a tower returned when it is sold, in `[0, 1]`.
    pub sell_refund: f32,
    /// Build level first, then each upgrade; at least one.
    pub levels: Vec<TowerLevel>,
}

/// Fraction of each damage type an enemy ignores, each in `[0, 0.95]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Resistances {
    /// Against [`DamageType::Physical`].
    pub physical: f32,
    /// Against [`DamageType::Magic`].
    pub magic: f32,
    /// Against [`DamageType::Fire`].
    pub fire: f32,
}

impl Resistances {
    /// The fraction resisted of `kind`.
    pub fn against(&self, kind: DamageType) -> f32 {
        match kind {
            DamageType::Physical => self.physical,
            DamageType::Magic => self.magic,
            DamageType::Fire => self.fire,
        }
    }
}

/// An enemy kind of one tribe.
#[derive(Clone, Debug, PartialEq)]
pub struct EnemyKind {
    /// The key waves use (`"orc_grunt"`), unique across tribes.
    pub key: String,
    /// Name shown to players.
    pub name: String,
    /// The tribe it belongs to.
    pub tribe: TribeId,
    /// Hit points at wave cycle 0.
    pub hp: f32,
    /// Flat reduction of every physical hit (a hit always deals at least 1).
    pub armour: f32,
    /// Cells per second.
    pub speed: f32,
    /// Gold paid to the killer.
    pub bounty: u32,
    /// Lives lost when it reaches a goal.
    pub lives_cost: u32,
    /// Fliers ignore the grid and towers, fly straight to the nearest goal,
    /// and only towers that target air can hit them.
    pub flying: bool,
    /// Resistances by damage type.
    pub resist: Resistances,
}

/// A faction: a named family of enemy kinds.
#[derive(Clone, Debug, PartialEq)]
pub struct Tribe {
    /// Key (`"orcs"`).
    pub key: String,
    /// Name shown to players.
    pub name: String,
    /// Its enemy kinds.
    pub enemies: Vec<EnemyKindId>,
}

/// A run of identical enemies inside a wave.
#[derive(Clone, Debug, PartialEq)]
pub struct SpawnGroup {
    /// What spawns.
    pub enemy: EnemyKindId,
    /// How many.
    pub count: u32,
    /// Seconds between two enemies of the group.
    pub interval: f32,
    /// Seconds after the wave starts before the first one.
    pub delay: f32,
    /// Index into the map's spawns.
    pub spawn: u8,
}

/// One wave: groups that spawn concurrently, each on its own clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    /// Seconds from this wave's start until the next wave starts by itself.
    pub duration: f32,
    /// Its groups.
    pub groups: Vec<SpawnGroup>,
}

/// What happens after the last listed wave.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Endless {
    /// Hit point multiplier applied each time the wave list starts over
    /// (1.25 means +25% per cycle).
    pub hp_growth: f32,
}

/// A map's waves and its economy.
#[derive(Clone, Debug, PartialEq)]
pub struct WaveSet {
    /// Seconds of preparation before wave 1 starts by itself (all players
    /// ready starts it at once).
    pub prep_seconds: f32,
    /// Gold per second of a wave's remaining duration paid to every player
    /// when someone calls the next wave early.
    pub early_call_bonus_per_second: f32,
    /// The waves in order; at least one.
    pub waves: Vec<Wave>,
    /// `None`: victory once the last wave is cleared. `Some`: waves repeat
    /// forever with growing hit points.
    pub endless: Option<Endless>,
}

/// A playable map.
#[derive(Clone, Debug, PartialEq)]
pub struct MapDef {
    /// Key (`"reference"`), the file name without extension.
    pub key: String,
    /// Name shown to players.
    pub name: String,
    /// Tiles, spawns and goals.
    pub grid: Grid,
    /// Gold each player starts with.
    pub start_gold: u32,
    /// Shared lives.
    pub lives: u32,
    /// Its waves.
    pub waves: WaveSet,
}

/// A tower a scenario places before the first tick.
#[derive(Clone, Debug, PartialEq)]
pub struct ScenarioTower {
    /// Owner, `0..players`.
    pub player: u8,
    /// Kind.
    pub kind: TowerKindId,
    /// Where.
    pub cell: Cell,
    /// Level to upgrade it to (0 = as built).
    pub level: u8,
}

/// A scripted start: players, economy overrides and pre-built towers. The
/// reference benchmark session is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Scenario {
    /// Key (`"reference"`).
    pub key: String,
    /// The map it plays on.
    pub map: String,
    /// Player count, 1 to 8.
    pub players: u8,
    /// Replaces the map's starting gold.
    pub start_gold: Option<u32>,
    /// Replaces the map's lives.
    pub lives: Option<u32>,
    /// Towers placed (and upgraded) at tick 0, in this order.
    pub towers: Vec<ScenarioTower>,
}
