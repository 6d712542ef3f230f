//! The game world mirrored into the app's ECS: one entity per enemy, tower
//! and projectile with plain components, the match's numbers as resources.
//!
//! Both plugins feed it the same [`NetWorld`] (the network's, or the
//! offline simulation's through the same tracker the server uses), so a game
//! reads one world whichever plugin runs. Mirroring writes a component or
//! resource only when its value changed, so Bevy's change detection
//! (`Changed<Tower>`, `resource_changed::<Lives>`) means what it says.

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use glam::Vec2;
use rampart_net::snapshot::{self as wire, NetWorld};
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::{Outcome, PlayerId, Targeting, TowerId};

/// An enemy on the board.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enemy {
    /// Session-unique id.
    pub id: u32,
    /// Index of its kind in the content's enemies.
    pub kind: u16,
}

/// An enemy's hit points, rounded up (a living enemy never shows 0).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Health {
    /// Left.
    pub hp: u32,
    /// At spawn.
    pub max: u32,
}

/// What is happening to an enemy.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EnemyFlags {
    /// It flies (straight to the goal, over walls).
    pub flying: bool,
    /// It is under a slow.
    pub slowed: bool,
    /// It is taking damage over time.
    pub burning: bool,
}

/// A tower on the board.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tower {
    /// Session-unique id, the one commands name.
    pub id: TowerId,
    /// Its kind.
    pub kind: TowerKindId,
    /// The seat that built it.
    pub owner: PlayerId,
    /// Level, 0 as built.
    pub level: u8,
    /// How it picks targets.
    pub targeting: Targeting,
}

/// The grid cell a tower stands on.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridCell(pub Cell);

/// A projectile in flight.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Projectile {
    /// Session-unique id.
    pub id: u32,
    /// Kind of the tower that fired it, which decides how it looks.
    pub tower_kind: TowerKindId,
}

/// How a mover (enemy or projectile) moves: its authoritative trajectory,
/// which the server replaces only when the mover leaves it.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Motion(pub wire::Trajectory);

/// Where a mover is at render time, in cells (cell `(x, y)` spans `x..x+1`),
/// interpolated from its [`Motion`] every frame: exact on whole ticks,
/// smooth between them.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct Position(pub Vec2);

/// One seat's numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Seat {
    /// Gold in hand.
    pub gold: u32,
    /// Enemies this seat killed.
    pub kills: u32,
    /// Declared ready for the first wave.
    pub ready: bool,
}

/// Every seat, by index ([`PlayerId`]`.0`).
#[derive(Resource, Clone, Debug, Default, PartialEq, Eq)]
pub struct Seats(pub Vec<Seat>);

impl Seats {
    /// The seat `player`, if the session has it.
    pub fn get(&self, player: PlayerId) -> Option<&Seat> {
        self.0.get(usize::from(player.0))
    }
}

/// Waves started so far (0 before the first).
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wave(pub u32);

/// Shared lives left.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lives(pub u32);

/// How the match ended, once it has.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MatchOutcome(pub Option<Outcome>);

/// The simulation tick of the mirrored world, and the tick (fractional) the
/// movers are drawn at this frame.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq)]
pub struct WorldClock {
    /// The tick the newest world is from.
    pub tick: u64,
    /// Ticks per second of the session.
    pub tick_hz: u32,
    /// The tick [`Position`]s are at: `tick` plus the time since, capped.
    pub render_tick: f64,
}

/// The seat this app plays, once the server (or the offline session) has
/// given one.
#[derive(Resource, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LocalSeat(pub Option<PlayerId>);

impl LocalSeat {
    /// True when `player` is this app's seat.
    pub fn is(&self, player: PlayerId) -> bool {
        self.0 == Some(player)
    }
}

/// The session being played, as the server's welcome (or the offline
/// session) describes it.
#[derive(Resource, Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Session id (the API writes it as 16 hex digits); 0 offline.
    pub session: u64,
    /// Map key.
    pub map: String,
    /// Seats.
    pub players: u8,
    /// Ticks per second.
    pub tick_hz: u32,
}

/// Which entity mirrors which id.
#[derive(Resource, Default)]
pub(crate) struct MirrorIndex {
    enemies: HashMap<u32, Entity>,
    towers: HashMap<u32, Entity>,
    projectiles: HashMap<u32, Entity>,
}

/// Everything mirroring writes.
#[derive(SystemParam)]
pub(crate) struct Mirror<'w, 's> {
    commands: Commands<'w, 's>,
    index: ResMut<'w, MirrorIndex>,
    seats: ResMut<'w, Seats>,
    wave: ResMut<'w, Wave>,
    lives: ResMut<'w, Lives>,
    outcome: ResMut<'w, MatchOutcome>,
    clock: ResMut<'w, WorldClock>,
    enemies: Query<
        'w,
        's,
        (
            &'static mut Enemy,
            &'static mut Health,
            &'static mut EnemyFlags,
            &'static mut Motion,
        ),
        Without<Projectile>,
    >,
    towers: Query<'w, 's, (&'static mut Tower, &'static mut GridCell)>,
    projectiles: Query<'w, 's, (&'static mut Projectile, &'static mut Motion), Without<Enemy>>,
}

impl Mirror<'_, '_> {
    /// Brings the ECS to `world`: spawns what appeared, despawns what left,
    /// writes only the values that changed.
    pub(crate) fn apply(&mut self, world: &NetWorld, tick_hz: u32) {
        let clock = WorldClock {
            tick: world.tick,
            tick_hz,
            render_tick: self.clock.render_tick.max(world.tick as f64),
        };
        self.clock.set_if_neq(clock);
        let seats: Vec<Seat> = world
            .players
            .iter()
            .map(|player| Seat {
                gold: player.gold,
                kills: player.kills,
                ready: player.ready,
            })
            .collect();
        if self.seats.0 != seats {
            self.seats.0 = seats;
        }
        self.wave.set_if_neq(Wave(world.wave));
        self.lives.set_if_neq(Lives(world.lives));
        self.outcome.set_if_neq(MatchOutcome(world.decided()));
        self.mirror_enemies(world);
        self.mirror_towers(world);
        self.mirror_projectiles(world);
    }

    /// Sets the tick movers are drawn at this frame.
    pub(crate) fn set_render_tick(&mut self, tick: f64) {
        if self.clock.render_tick != tick {
            self.clock.render_tick = tick;
        }
    }

    /// Despawns every mirrored entity and resets the resources: another
    /// session begins.
    pub(crate) fn clear(&mut self) {
        let index = &mut *self.index;
        for (_, entity) in index
            .enemies
            .drain()
            .chain(index.towers.drain())
            .chain(index.projectiles.drain())
        {
            self.commands.entity(entity).despawn();
        }
        self.seats.set_if_neq(Seats::default());
        self.wave.set_if_neq(Wave::default());
        self.lives.set_if_neq(Lives::default());
        self.outcome.set_if_neq(MatchOutcome::default());
        self.clock.set_if_neq(WorldClock::default());
    }

    fn mirror_enemies(&mut self, world: &NetWorld) {
        forget_missing(
            &mut self.index.enemies,
            &world.enemies,
            |enemy| enemy.id,
            &mut self.commands,
        );
        for enemy in &world.enemies {
            let values = (
                Enemy {
                    id: enemy.id,
                    kind: enemy.kind,
                },
                Health {
                    hp: enemy.hp,
                    max: enemy.max_hp,
                },
                EnemyFlags {
                    flying: enemy.flags & wire::FLYING != 0,
                    slowed: enemy.flags & wire::SLOWED != 0,
                    burning: enemy.flags & wire::BURNING != 0,
                },
                Motion(enemy.path),
            );
            let known = self.index.enemies.get(&enemy.id).copied();
            match known.and_then(|entity| self.enemies.get_mut(entity).ok()) {
                Some((mut id, mut health, mut flags, mut motion)) => {
                    id.set_if_neq(values.0);
                    health.set_if_neq(values.1);
                    flags.set_if_neq(values.2);
                    motion.set_if_neq(values.3);
                }
                None => {
                    let position = Position(enemy.path.position(world.tick as f32));
                    let entity = self.commands.spawn((values, position)).id();
                    self.index.enemies.insert(enemy.id, entity);
                }
            }
        }
    }

    fn mirror_towers(&mut self, world: &NetWorld) {
        forget_missing(
            &mut self.index.towers,
            &world.towers,
            |tower| tower.id,
            &mut self.commands,
        );
        for tower in &world.towers {
            let values = (
                Tower {
                    id: TowerId(tower.id),
                    kind: TowerKindId(tower.kind),
                    owner: PlayerId(tower.owner),
                    level: tower.level,
                    targeting: tower.targeting_mode().unwrap_or_default(),
                },
                GridCell(Cell::new(tower.x, tower.y)),
            );
            let known = self.index.towers.get(&tower.id).copied();
            match known.and_then(|entity| self.towers.get_mut(entity).ok()) {
                Some((mut mirrored, mut cell)) => {
                    mirrored.set_if_neq(values.0);
                    cell.set_if_neq(values.1);
                }
                None => {
                    let entity = self.commands.spawn(values).id();
                    self.index.towers.insert(tower.id, entity);
                }
            }
        }
    }

    fn mirror_projectiles(&mut self, world: &NetWorld) {
        forget_missing(
            &mut self.index.projectiles,
            &world.projectiles,
            |projectile| projectile.id,
            &mut self.commands,
        );
        for projectile in &world.projectiles {
            let values = (
                Projectile {
                    id: projectile.id,
                    tower_kind: TowerKindId(projectile.tower_kind),
                },
                Motion(projectile.path),
            );
            let known = self.index.projectiles.get(&projectile.id).copied();
            match known.and_then(|entity| self.projectiles.get_mut(entity).ok()) {
                Some((mut mirrored, mut motion)) => {
                    mirrored.set_if_neq(values.0);
                    motion.set_if_neq(values.1);
                }
                None => {
                    let position = Position(projectile.path.position(world.tick as f32));
                    let entity = self.commands.spawn((values, position)).id();
                    self.index.projectiles.insert(projectile.id, entity);
                }
            }
        }
    }
}

/// Despawns the entities whose ids are no longer in `list` (sorted by id, as
/// every [`NetWorld`] list is).
fn forget_missing<T>(
    index: &mut HashMap<u32, Entity>,
    list: &[T],
    id: impl Fn(&T) -> u32,
    commands: &mut Commands,
) {
    index.retain(|known, entity| {
        let present = list.binary_search_by_key(known, &id).is_ok();
        if !present {
            commands.entity(*entity).despawn();
        }
        present
    });
}

/// Moves every mover to the clock's render tick.
pub(crate) fn place_movers(clock: Res<WorldClock>, mut movers: Query<(&Motion, &mut Position)>) {
    let tick = clock.render_tick as f32;
    for (motion, mut position) in &mut movers {
        position.set_if_neq(Position(motion.0.position(tick)));
    }
}
