//! Saving a running session and restoring it elsewhere, for crash recovery
//! and server takeover: a restored session steps bit-identically to the one
//! that was saved, so players see nothing but a pause.
//!
//! Only state is saved. What is derived from content and the board (tick
//! rules, the flow field, the spatial index) is rebuilt on restore; the flow
//! field is a pure function of the towers' cells, so it comes out the same.
//!
//! Format, version 1: the magic `RMPS`, the version as a little-endian
//! `u16`, then the payload. Integers are LEB128 varints except the content
//! version, the seed and the generator state (little-endian `u64`s: they are
//! random-looking); floats are their 4-byte IEEE bits; strings are a varint
//! length and UTF-8; flags are one byte. In order:
//!
//! 1. content version; config: map, scenario (flag, key), players (byte),
//!    seed, tick rate;
//! 2. clock tick, generator state, next command ticket, next enemy, tower
//!    and projectile ids, field version;
//! 3. match: lives, kills, leaks, outcome (0 none, 1 victory, 2 defeat);
//! 4. per seat: gold, ready, kills, gold earned, bounty earned, towers built;
//! 5. waves: started, next start (0 none, else tick + 1), hit point scale,
//!    then the spawners (wave slot, group, remaining, next tick, scale);
//! 6. towers, enemies and projectiles: a count, then each in id order, its
//!    id as the gap to the previous id minus one. A tower: owner, kind,
//!    level, cell, targeting, reload countdown, gold invested. An enemy:
//!    kind, a flag byte (below), max hp, hp if hurt, position, heading,
//!    distance remaining, slow (factor, until) and burn (per tick, until,
//!    owner) if ever applied, last hitter if not seat 0. A projectile: owner,
//!    tower kind, level, position, aim, target enemy id (0 for none).
//!
//! Enemies are most of a save, so their rarely used fields are left out
//! while at their spawn values. A reference session in its steady state
//! (about 100 enemies, 50 towers) saves to roughly 4 KiB.

mod bytes;

use std::sync::Arc;

use bevy_ecs::prelude::*;
use glam::Vec2;
use rand_pcg::Pcg32;

use self::bytes::{Reader, Writer};
use super::{
    RNG_STREAM, Session, SessionConfig, SessionError, base_world, check_config, compute_field,
};
use crate::command::{PlayerId, Targeting};
use crate::content::{Content, EnemyKindId, TowerKindId};
use crate::event::Outcome;
use crate::grid::Cell;
use crate::rules::Rules;
use crate::world::{
    Board, Clock, Enemy, Ids, Inbox, Match, PlayerState, Players, Position, Projectile, SimRng,
    Spawner, Tower, TowerOrder, Waves,
};

/// First bytes of every save.
const MAGIC: [u8; 4] = *b"RMPS";

/// Bumped whenever the layout changes; older saves are refused, not misread.
const FORMAT_VERSION: u16 = 1;

/// Enemy flag bits.
const FLYING: u8 = 1 << 0;
const GONE: u8 = 1 << 1;
const HURT: u8 = 1 << 2;
const SLOWED: u8 = 1 << 3;
const BURNED: u8 = 1 << 4;
const HIT: u8 = 1 << 5;
const ENEMY_FLAGS: u8 = FLYING | GONE | HURT | SLOWED | BURNED | HIT;

/// Why bytes could not be restored into a session.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RestoreError {
    /// The bytes are not a session save.
    #[error("not a session save (bad magic bytes)")]
    BadMagic,
    /// A save format this build does not read.
    #[error("save format version {0} is not supported (this build reads {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    /// The save ends early.
    #[error("save is truncated")]
    Truncated,
    /// The save is inconsistent with itself or with the content.
    #[error("save is malformed: {0}")]
    Malformed(&'static str),
    /// The save was made with other content: its rules would not replay.
    #[error(
        "save was made with content version {saved:016x}, but the loaded content is {loaded:016x}"
    )]
    ContentMismatch {
        /// From the save.
        saved: u64,
        /// From the loaded content.
        loaded: u64,
    },
    /// The saved config no longer builds a session with this content.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl Session {
    /// Writes everything needed to resume this session exactly (appends to `out`).
    ///
    /// Commands submitted and not yet applied are not saved: they belong to
    /// the next step, and their owner keeps them (the host's command log
    /// records every command with the tick it applies at) and submits them
    /// again after a restore. Neither are the last step's events, which its
    /// owner has already read.
    pub fn save(&self, out: &mut Vec<u8>) {
        let world = &self.world;
        let mut w = Writer(out);
        w.0.extend_from_slice(&MAGIC);
        w.u16_fixed(FORMAT_VERSION);
        w.u64_fixed(self.content().version);
        let config = &self.config;
        w.str(&config.map);
        match &config.scenario {
            None => w.u8(0),
            Some(key) => {
                w.u8(1);
                w.str(key);
            }
        }
        w.u8(config.players);
        w.u64_fixed(config.seed);
        w.var(u64::from(config.tick_hz));

        w.var(world.resource::<Clock>().tick);
        w.u64_fixed(world.resource::<SimRng>().0.state());
        w.var(world.resource::<Inbox>().next_ticket);
        let ids = world.resource::<Ids>();
        for id in [ids.next_enemy, ids.next_tower, ids.next_projectile] {
            w.var(u64::from(id));
        }
        w.var(world.resource::<Board>().field_version);

        let state = world.resource::<Match>();
        for value in [state.lives, state.kills, state.leaks] {
            w.var(u64::from(value));
        }
        w.u8(match state.outcome {
            None => 0,
            Some(Outcome::Victory) => 1,
            Some(Outcome::Defeat) => 2,
        });
        for player in &world.resource::<Players>().0 {
            w.var(u64::from(player.gold));
            w.u8(u8::from(player.ready));
            for value in [
                player.kills,
                player.gold_earned,
                player.bounty_earned,
                player.towers_built,
            ] {
                w.var(u64::from(value));
            }
        }
        let waves = world.resource::<Waves>();
        w.var(u64::from(waves.started));
        w.var(waves.next_start.map_or(0, |tick| tick + 1));
        w.f32(waves.hp_scale);
        w.var_usize(waves.spawners.len());
        for spawner in &waves.spawners {
            w.var_usize(spawner.wave_slot);
            w.var_usize(spawner.group);
            w.var(u64::from(spawner.remaining));
            w.var(spawner.next_tick);
            w.f32(spawner.hp_scale);
        }

        save_towers(world, &mut w);
        save_enemies(world, &mut w, state.alive);
        save_projectiles(world, &mut w);
    }

    /// Rebuilds a session from [`Session::save`]'s bytes, ready to step on
    /// exactly as the saved one would have.
    ///
    /// # Errors
    /// When the bytes are not a save of this format version, were saved
    /// with other content, or are cut short or inconsistent. Arbitrary bytes
    /// give an error, never a panic.
    pub fn restore(content: Arc<Content>, bytes: &[u8]) -> Result<Session, RestoreError> {
        let mut r = Reader::new(bytes);
        let magic = r.take(MAGIC.len()).map_err(|_| {
            if MAGIC.starts_with(bytes) {
                RestoreError::Truncated
            } else {
                RestoreError::BadMagic
            }
        })?;
        if magic != MAGIC {
            return Err(RestoreError::BadMagic);
        }
        let version = r.u16_fixed()?;
        if version != FORMAT_VERSION {
            return Err(RestoreError::UnsupportedVersion(version));
        }
        let saved = r.u64_fixed()?;
        if saved != content.version {
            return Err(RestoreError::ContentMismatch {
                saved,
                loaded: content.version,
            });
        }
        let map = r.str()?;
        let scenario = if r.bool()? { Some(r.str()?) } else { None };
        let config = SessionConfig {
            map,
            scenario,
            players: r.u8()?,
            seed: r.u64_fixed()?,
            tick_hz: r.var_u32()?,
        };
        let (map_index, _) = check_config(&content, &config)?;
        let rules = Rules::new(content.clone(), map_index, config.tick_hz);
        let state = State::read(&mut r, &rules, config.players)?;
        if !r.is_empty() {
            return Err(RestoreError::Malformed("bytes after the end of the save"));
        }
        let mut world = base_world(rules, &config);
        state.build(&mut world);
        if compute_field(&mut world).is_some() {
            return Err(RestoreError::Malformed(
                "the towers cut a spawn off from every goal",
            ));
        }
        Ok(Session::assemble(world, config))
    }
}

fn save_towers(world: &World, w: &mut Writer) {
    let mut towers: Vec<&Tower> = world
        .try_query::<&Tower>()
        .map(|mut query| query.iter(world).collect())
        .unwrap_or_default();
    towers.sort_unstable_by_key(|tower| tower.id);
    w.var_usize(towers.len());
    let mut previous = 0;
    for tower in towers {
        w.var(u64::from(tower.id - previous - 1));
        previous = tower.id;
        w.u8(tower.owner.0);
        w.var(u64::from(tower.kind.0));
        w.u8(tower.level);
        w.var(u64::from(tower.cell.x));
        w.var(u64::from(tower.cell.y));
        w.u8(tower.targeting as u8);
        w.var(u64::from(tower.cooldown));
        w.var(u64::from(tower.invested));
    }
}

fn save_enemies(world: &World, w: &mut Writer, alive: u32) {
    let mut enemies: Vec<(&Enemy, Vec2)> = world
        .try_query::<(&Enemy, &Position)>()
        .map(|mut query| {
            query
                .iter(world)
                .map(|(enemy, position)| (enemy, position.0))
                .collect()
        })
        .unwrap_or_default();
    // Between steps the dead and the leaked are gone: the count is the
    // enemies saved, so it is not saved itself.
    debug_assert_eq!(enemies.len(), alive as usize, "save between steps");
    enemies.sort_unstable_by_key(|(enemy, _)| enemy.id);
    w.var_usize(enemies.len());
    let mut previous = 0;
    for (enemy, position) in enemies {
        w.var(u64::from(enemy.id - previous - 1));
        previous = enemy.id;
        w.var(u64::from(enemy.kind.0));
        let hurt = enemy.hp.to_bits() != enemy.max_hp.to_bits();
        let slowed = enemy.slow_factor.to_bits() != 1.0f32.to_bits() || enemy.slow_until != 0;
        let burned = enemy.dot_per_tick.to_bits() != 0.0f32.to_bits()
            || enemy.dot_until != 0
            || enemy.dot_owner != PlayerId(0);
        let hit = enemy.last_hit_by != PlayerId(0);
        let flags = [
            (enemy.flying, FLYING),
            (enemy.gone, GONE),
            (hurt, HURT),
            (slowed, SLOWED),
            (burned, BURNED),
            (hit, HIT),
        ]
        .into_iter()
        .filter(|&(set, _)| set)
        .fold(0, |flags, (_, bit)| flags | bit);
        w.u8(flags);
        w.f32(enemy.max_hp);
        if hurt {
            w.f32(enemy.hp);
        }
        w.f32(position.x);
        w.f32(position.y);
        w.var(u64::from(enemy.heading));
        w.f32(enemy.remaining);
        if slowed {
            w.f32(enemy.slow_factor);
            w.var(enemy.slow_until);
        }
        if burned {
            w.f32(enemy.dot_per_tick);
            w.var(enemy.dot_until);
            w.u8(enemy.dot_owner.0);
        }
        if hit {
            w.u8(enemy.last_hit_by.0);
        }
    }
}

fn save_projectiles(world: &World, w: &mut Writer) {
    let mut projectiles: Vec<(&Projectile, Vec2)> = world
        .try_query::<(&Projectile, &Position)>()
        .map(|mut query| {
            query
                .iter(world)
                .map(|(projectile, position)| (projectile, position.0))
                .collect()
        })
        .unwrap_or_default();
    projectiles.sort_unstable_by_key(|(projectile, _)| projectile.id);
    w.var_usize(projectiles.len());
    let mut previous = 0;
    for (projectile, position) in projectiles {
        w.var(u64::from(projectile.id - previous - 1));
        previous = projectile.id;
        w.u8(projectile.owner.0);
        w.var(u64::from(projectile.tower_kind.0));
        w.u8(projectile.level);
        for value in [position.x, position.y, projectile.aim.x, projectile.aim.y] {
            w.f32(value);
        }
        // A target that died after this shot was fired no longer exists; the
        // shot forgets it on its next flight step either way, so it saves as
        // none.
        let target = projectile
            .target
            .and_then(|target| world.get::<Enemy>(target))
            .map_or(0, |enemy| enemy.id);
        w.var(u64::from(target));
    }
}

/// A save's state, read and checked against the rules before any of it
/// enters a world.
struct State {
    tick: u64,
    rng: u64,
    next_ticket: u64,
    ids: Ids,
    field_version: u64,
    state: Match,
    players: Vec<PlayerState>,
    waves: Waves,
    towers: Vec<Tower>,
    enemies: Vec<(Enemy, Vec2)>,
    /// Projectiles with their target's enemy id (0 for none).
    projectiles: Vec<(Projectile, Vec2, u32)>,
}

/// Fewest bytes each record can take, to bound list lengths by the input.
const MIN_SPAWNER: usize = 8;
const MIN_TOWER: usize = 9;
const MIN_ENEMY: usize = 20;
const MIN_PROJECTILE: usize = 21;

impl State {
    fn read(r: &mut Reader, rules: &Rules, players: u8) -> Result<Self, RestoreError> {
        let tick = r.var()?;
        let rng = r.u64_fixed()?;
        let next_ticket = r.var()?;
        let ids = Ids {
            next_enemy: r.var_u32()?,
            next_tower: r.var_u32()?,
            next_projectile: r.var_u32()?,
        };
        let field_version = r.var()?;
        let lives = r.var_u32()?;
        let kills = r.var_u32()?;
        let leaks = r.var_u32()?;
        let outcome = match r.u8()? {
            0 => None,
            1 => Some(Outcome::Victory),
            2 => Some(Outcome::Defeat),
            _ => return Err(RestoreError::Malformed("unknown outcome")),
        };
        let seats = usize::from(players);
        let mut player_states = Vec::with_capacity(seats);
        for _ in 0..seats {
            let gold = r.var_u32()?;
            let ready = r.bool()?;
            player_states.push(PlayerState {
                gold,
                ready,
                kills: r.var_u32()?,
                gold_earned: r.var_u32()?,
                bounty_earned: r.var_u32()?,
                towers_built: r.var_u32()?,
            });
        }
        let byte_seat = |r: &mut Reader| -> Result<PlayerId, RestoreError> {
            let player = r.u8()?;
            if usize::from(player) < seats {
                Ok(PlayerId(player))
            } else {
                Err(RestoreError::Malformed("seat out of range"))
            }
        };

        let started = r.var_u32()?;
        let next_start = r.var()?.checked_sub(1);
        let hp_scale = r.f32()?;
        let count = r.count(MIN_SPAWNER)?;
        let mut spawners = Vec::with_capacity(count);
        for _ in 0..count {
            let wave_slot = r.index(rules.waves.len(), "unknown wave")?;
            let group = r.index(rules.waves[wave_slot].groups.len(), "unknown spawn group")?;
            spawners.push(Spawner {
                wave_slot,
                group,
                remaining: r.var_u32()?,
                next_tick: r.var()?,
                hp_scale: r.f32()?,
            });
        }

        let grid = &rules.map().grid;
        let count = r.count(MIN_TOWER)?;
        let mut towers: Vec<Tower> = Vec::with_capacity(count);
        let mut taken = vec![false; grid.len()];
        let mut previous = 0;
        for _ in 0..count {
            let id = next_id(r, &mut previous, ids.next_tower)?;
            let owner = byte_seat(r)?;
            let kind = r.index(rules.towers.len(), "unknown tower kind")?;
            let level = r.u8()?;
            if usize::from(level) >= rules.towers[kind].levels.len() {
                return Err(RestoreError::Malformed("tower level out of range"));
            }
            let cell = Cell::new(r.var_u16()?, r.var_u16()?);
            if cell.x >= grid.width() || cell.y >= grid.height() {
                return Err(RestoreError::Malformed("tower off the map"));
            }
            let index = grid.index(cell);
            if grid.tile(cell) != crate::grid::Tile::Buildable || taken[index] {
                return Err(RestoreError::Malformed(
                    "tower on an unbuildable or taken cell",
                ));
            }
            taken[index] = true;
            let targeting = Targeting::ALL[r.index(Targeting::ALL.len(), "unknown targeting")?];
            towers.push(Tower {
                id,
                owner,
                kind: TowerKindId(kind as u16),
                level,
                cell,
                targeting,
                cooldown: r.var_u32()?,
                invested: r.var_u32()?,
            });
        }

        let count = r.count(MIN_ENEMY)?;
        let mut enemies = Vec::with_capacity(count);
        let mut previous = 0;
        for _ in 0..count {
            let id = next_id(r, &mut previous, ids.next_enemy)?;
            let kind = r.index(rules.enemies.len(), "unknown enemy kind")?;
            let flags = r.u8()?;
            if flags & !ENEMY_FLAGS != 0 {
                return Err(RestoreError::Malformed("unknown enemy flags"));
            }
            let max_hp = r.f32()?;
            let hp = if flags & HURT != 0 { r.f32()? } else { max_hp };
            let position = Vec2::new(r.f32()?, r.f32()?);
            let heading = r.index(grid.len(), "enemy heading off the map")? as u32;
            let remaining = r.f32()?;
            let (slow_factor, slow_until) = if flags & SLOWED != 0 {
                (r.f32()?, r.var()?)
            } else {
                (1.0, 0)
            };
            let (dot_per_tick, dot_until, dot_owner) = if flags & BURNED != 0 {
                (r.f32()?, r.var()?, byte_seat(r)?)
            } else {
                (0.0, 0, PlayerId(0))
            };
            let last_hit_by = if flags & HIT != 0 {
                byte_seat(r)?
            } else {
                PlayerId(0)
            };
            let enemy = Enemy {
                id,
                kind: EnemyKindId(kind as u16),
                hp,
                max_hp,
                flying: flags & FLYING != 0,
                heading,
                remaining,
                slow_factor,
                slow_until,
                dot_per_tick,
                dot_until,
                dot_owner,
                last_hit_by,
                gone: flags & GONE != 0,
            };
            enemies.push((enemy, position));
        }

        let count = r.count(MIN_PROJECTILE)?;
        let mut projectiles = Vec::with_capacity(count);
        let mut previous = 0;
        for _ in 0..count {
            let id = next_id(r, &mut previous, ids.next_projectile)?;
            let owner = byte_seat(r)?;
            let kind = r.index(rules.towers.len(), "unknown tower kind")?;
            let level = r.u8()?;
            if usize::from(level) >= rules.towers[kind].levels.len() {
                return Err(RestoreError::Malformed("projectile level out of range"));
            }
            let position = Vec2::new(r.f32()?, r.f32()?);
            let aim = Vec2::new(r.f32()?, r.f32()?);
            let target = r.var_u32()?;
            if target != 0
                && enemies
                    .binary_search_by_key(&target, |(enemy, _)| enemy.id)
                    .is_err()
            {
                return Err(RestoreError::Malformed("projectile aimed at no enemy"));
            }
            let projectile = Projectile {
                id,
                owner,
                tower_kind: TowerKindId(kind as u16),
                level,
                target: None,
                aim,
            };
            projectiles.push((projectile, position, target));
        }

        Ok(Self {
            tick,
            rng,
            next_ticket,
            ids,
            field_version,
            state: Match {
                lives,
                kills,
                leaks,
                alive: enemies.len() as u32,
                outcome,
            },
            players: player_states,
            waves: Waves {
                started,
                next_start,
                hp_scale,
                spawners,
            },
            towers,
            enemies,
            projectiles,
        })
    }

    /// Puts the state into a fresh [`base_world`]. Entities are spawned in
    /// id order; no system depends on storage order (they sort by id where
    /// order matters), so this need not match the saved world's.
    fn build(self, world: &mut World) {
        world.insert_resource(Clock { tick: self.tick });
        world.insert_resource(SimRng(Pcg32::from_state(self.rng, RNG_STREAM)));
        world.insert_resource(Inbox {
            pending: Vec::new(),
            next_ticket: self.next_ticket,
        });
        world.insert_resource(self.ids);
        world.insert_resource(self.state);
        world.insert_resource(Players(self.players));
        world.insert_resource(self.waves);

        let mut order = Vec::with_capacity(self.towers.len());
        let mut cells = Vec::with_capacity(self.towers.len());
        for tower in self.towers {
            let (id, cell) = (tower.id, tower.cell);
            let entity = world.spawn(tower).id();
            order.push((id, entity));
            cells.push((cell, entity));
        }
        let mut board = world.resource_mut::<Board>();
        board.field_version = self.field_version;
        for (cell, entity) in cells {
            let index = board.index(cell);
            board.towers[index] = Some(entity);
            board.walkable[index] = false;
        }
        world.insert_resource(TowerOrder(order));

        let mut enemies = Vec::with_capacity(self.enemies.len());
        for (enemy, position) in self.enemies {
            let id = enemy.id;
            enemies.push((id, world.spawn((enemy, Position(position))).id()));
        }
        for (mut projectile, position, target) in self.projectiles {
            // `read` checked that the target is among the enemies.
            projectile.target = enemies
                .binary_search_by_key(&target, |&(id, _)| id)
                .ok()
                .map(|slot| enemies[slot].1);
            world.spawn((projectile, Position(position)));
        }
    }
}

/// Reads an id saved as the gap to the previous one, so ids strictly
/// increase, and checks it was handed out already.
fn next_id(r: &mut Reader, previous: &mut u32, issued: u32) -> Result<u32, RestoreError> {
    let id = previous
        .checked_add(r.var_u32()?)
        .and_then(|id| id.checked_add(1))
        .filter(|&id| id <= issued)
        .ok_or(RestoreError::Malformed("ids out of order or never issued"))?;
    *previous = id;
    Ok(id)
}
