//! Enemies: how they are kept, their record in a save and their part of the
//! state hash, kept together so a new field is one edit here (plus the
//! steps that spawn and use it, and the save's format version).
//!
//! Enemies are plain data in the session's [`Game`](super::Game), not
//! entities, for the reason shots are (`projectile.rs`): in a host of a
//! thousand sessions each world is cold when its tick starts, and a step is
//! bound by the cache lines it touches. As entities, each tick's walk read
//! an entity column, an 80-byte row over two components, and the world's
//! query, table and column bookkeeping; spawning went through a command
//! queue and dying through the entity table. Here the walk reads one list
//! of 48-byte rows holding what every enemy needs every tick, and reaches
//! into a second list, of what only hits, slows and burns touch, for the
//! few enemies under an effect.

use glam::Vec2;

use super::Board;
use crate::command::PlayerId;
use crate::content::EnemyKindId;
use crate::hash::StableHasher;
use crate::session::save::{Persisted, Reader, RestoreCx, RestoreError, Writer};

/// What the walk reads and writes for every enemy every tick.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Enemy {
    pub id: u32,
    pub kind: EnemyKindId,
    pub flying: bool,
    /// Reached a goal this tick; removed at the end of the tick, and no
    /// longer a target meanwhile.
    pub gone: bool,
    pub hp: f32,
    /// Where it stands, in cells.
    pub position: Vec2,
    /// Ground enemies: the heading's centre and its distance to a goal
    /// along the field, in cells: derived from the heading and the field,
    /// kept so that a step of the walk reads neither the field nor divides
    /// by the map's width (the field's distance was a cache miss per walker
    /// per tick). Set by [`Enemy::head_for`] and, after the field changes,
    /// by [`Enemy::refresh_heading`]; neither saved nor hashed.
    pub toward: Vec2,
    pub toward_remaining: f32,
    /// Distance left to a goal in cells, refreshed by movement; drives the
    /// `first` and `last` targeting modes.
    pub remaining: f32,
    /// Ground enemies: the cell whose centre they walk towards. Fliers: unused.
    pub heading: u32,
    /// No slow or burn lasts past this tick: until then the walk looks at
    /// the enemy's [`Afflictions`]. Derived from them (at least the later
    /// of their two ends); neither saved nor hashed.
    pub afflicted_until: u64,
}

/// What only hits, slows and burns change, beside each [`Enemy`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Afflictions {
    pub max_hp: f32,
    /// Speed multiplier while slowed, and the tick the slow wears off.
    pub slow_factor: f32,
    pub slow_until: u64,
    /// Burn damage per tick, the tick it stops, and whose tower lit it.
    pub dot_per_tick: f32,
    pub dot_until: u64,
    pub dot_owner: PlayerId,
    /// Who hurt it last: the killer, should it die.
    pub last_hit_by: PlayerId,
}

impl Afflictions {
    /// A fresh enemy's: unhurt, neither slowed nor burning.
    pub(crate) fn new(max_hp: f32) -> Self {
        Self {
            max_hp,
            slow_factor: 1.0,
            slow_until: 0,
            dot_per_tick: 0.0,
            dot_until: 0,
            dot_owner: PlayerId(0),
            last_hit_by: PlayerId(0),
        }
    }

    /// The tick by which both the slow and the burn have worn off.
    pub(crate) fn until(&self) -> u64 {
        self.slow_until.max(self.dot_until)
    }
}

impl Enemy {
    /// Turns a walker towards `cell`.
    pub(crate) fn head_for(&mut self, board: &Board, cell: usize) {
        self.heading = cell as u32;
        self.refresh_heading(board);
    }

    /// Derives the heading's centre and distance again: on spawn, after a
    /// restore, and whenever the field changes.
    pub(crate) fn refresh_heading(&mut self, board: &Board) {
        let heading = self.heading as usize;
        self.toward = board.centre(heading);
        self.toward_remaining = board.remaining(heading);
    }

    /// Still on the board at the end of a tick: neither dead nor leaked.
    fn stays(&self) -> bool {
        !(self.gone || self.hp <= 0.0)
    }
}

/// The enemies on the board, in id order: what every tick reads, and beside
/// it, slot for slot, what only effects read.
///
/// Ids only grow, so spawning appends and removal keeps the order: steps
/// walk the enemies in id order, and leaks, deaths, snapshots and saves
/// come out sorted without a sort.
#[derive(Debug, Default)]
pub(crate) struct Enemies {
    walkers: Vec<Enemy>,
    afflictions: Vec<Afflictions>,
}

impl Enemies {
    pub(crate) fn len(&self) -> usize {
        self.walkers.len()
    }

    /// Puts a new enemy on the board; its id must be the highest yet.
    pub(crate) fn spawn(&mut self, enemy: Enemy, afflictions: Afflictions) {
        debug_assert!(self.walkers.last().is_none_or(|last| last.id < enemy.id));
        self.walkers.push(enemy);
        self.afflictions.push(afflictions);
    }

    pub(crate) fn walkers(&self) -> &[Enemy] {
        &self.walkers
    }

    pub(crate) fn walkers_mut(&mut self) -> &mut [Enemy] {
        &mut self.walkers
    }

    /// Both lists, slot for slot, for the steps that change both.
    pub(crate) fn parts_mut(&mut self) -> (&mut [Enemy], &mut [Afflictions]) {
        (&mut self.walkers, &mut self.afflictions)
    }

    /// Every enemy with its afflictions, in id order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (&Enemy, &Afflictions)> {
        self.walkers.iter().zip(&self.afflictions)
    }

    /// Whether the enemy `id` is on the board.
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.walkers
            .binary_search_by_key(&id, |enemy| enemy.id)
            .is_ok()
    }

    /// Calls `finished` for each enemy that died or leaked this tick, in id
    /// order, and takes them off the board. Most ticks none has: then
    /// nothing is written. Otherwise the runs of enemies that stay between
    /// them move down a run at a time (a row at a time, through a copy on
    /// the stack, cost a host 4% of its step).
    pub(crate) fn remove_finished(&mut self, mut finished: impl FnMut(&Enemy, &Afflictions)) {
        let Some(first) = self.walkers.iter().position(|enemy| !enemy.stays()) else {
            return;
        };
        let count = self.walkers.len();
        let mut kept = first;
        let mut slot = first;
        // At the top of each round, `slot` is a finished enemy's.
        while slot < count {
            finished(&self.walkers[slot], &self.afflictions[slot]);
            slot += 1;
            let run = slot;
            while slot < count && self.walkers[slot].stays() {
                slot += 1;
            }
            self.walkers.copy_within(run..slot, kept);
            self.afflictions.copy_within(run..slot, kept);
            kept += slot - run;
        }
        self.walkers.truncate(kept);
        self.afflictions.truncate(kept);
    }
}

/// Flag bits of an enemy's record: which of its optional parts follow.
const FLYING: u8 = 1 << 0;
const GONE: u8 = 1 << 1;
const HURT: u8 = 1 << 2;
const SLOWED: u8 = 1 << 3;
const BURNED: u8 = 1 << 4;
const HIT: u8 = 1 << 5;
const ENEMY_FLAGS: u8 = FLYING | GONE | HURT | SLOWED | BURNED | HIT;

/// Record: kind, a flag byte, max hp, hp if hurt, position, heading,
/// distance remaining, slow (factor, until) and burn (per tick, until,
/// owner) if ever applied, last hitter if not seat 0.
///
/// Enemies are most of a save, so their rarely used fields are left out
/// while at their spawn values.
impl Persisted for Enemy {
    type Extra = Afflictions;
    const MIN_RECORD: usize = 20;

    fn id(&self) -> u32 {
        self.id
    }

    #[inline]
    fn save(&self, afflictions: Afflictions, w: &mut Writer<'_>) {
        let a = afflictions;
        w.var(u64::from(self.kind.0));
        let hurt = self.hp.to_bits() != a.max_hp.to_bits();
        let slowed = a.slow_factor.to_bits() != 1.0f32.to_bits() || a.slow_until != 0;
        let burned = a.dot_per_tick.to_bits() != 0.0f32.to_bits()
            || a.dot_until != 0
            || a.dot_owner != PlayerId(0);
        let hit = a.last_hit_by != PlayerId(0);
        let flags = [
            (self.flying, FLYING),
            (self.gone, GONE),
            (hurt, HURT),
            (slowed, SLOWED),
            (burned, BURNED),
            (hit, HIT),
        ]
        .into_iter()
        .filter(|&(set, _)| set)
        .fold(0, |flags, (_, bit)| flags | bit);
        w.u8(flags);
        w.f32(a.max_hp);
        if hurt {
            w.f32(self.hp);
        }
        w.f32(self.position.x);
        w.f32(self.position.y);
        w.var(u64::from(self.heading));
        w.f32(self.remaining);
        if slowed {
            w.f32(a.slow_factor);
            w.var(a.slow_until);
        }
        if burned {
            w.f32(a.dot_per_tick);
            w.var(a.dot_until);
            w.u8(a.dot_owner.0);
        }
        if hit {
            w.u8(a.last_hit_by.0);
        }
    }

    fn restore(
        id: u32,
        r: &mut Reader<'_>,
        cx: &mut RestoreCx<'_>,
    ) -> Result<(Self, Afflictions), RestoreError> {
        let kind = r.index(cx.rules.enemies.len(), "unknown enemy kind")?;
        let flags = r.u8()?;
        if flags & !ENEMY_FLAGS != 0 {
            return Err(RestoreError::Malformed("unknown enemy flags"));
        }
        let mut afflictions = Afflictions::new(r.f32()?);
        let hp = if flags & HURT != 0 {
            r.f32()?
        } else {
            afflictions.max_hp
        };
        let position = Vec2::new(r.f32()?, r.f32()?);
        let heading = r.index(cx.rules.map().grid.len(), "enemy heading off the map")? as u32;
        let remaining = r.f32()?;
        if flags & SLOWED != 0 {
            afflictions.slow_factor = r.f32()?;
            afflictions.slow_until = r.var()?;
        }
        if flags & BURNED != 0 {
            afflictions.dot_per_tick = r.f32()?;
            afflictions.dot_until = r.var()?;
            afflictions.dot_owner = cx.seat(r)?;
        }
        if flags & HIT != 0 {
            afflictions.last_hit_by = cx.seat(r)?;
        }
        let enemy = Enemy {
            id,
            kind: EnemyKindId(kind as u16),
            flying: flags & FLYING != 0,
            gone: flags & GONE != 0,
            hp,
            position,
            // Derived once the field is computed: the restore refreshes
            // every enemy's heading then.
            toward: Vec2::ZERO,
            toward_remaining: 0.0,
            remaining,
            heading,
            afflicted_until: afflictions.until(),
        };
        Ok((enemy, afflictions))
    }

    /// `gone` is left out: the state is hashed between steps, when no enemy
    /// that reached a goal is left on the board.
    fn hash(&self, afflictions: Afflictions, h: &mut StableHasher) {
        let a = afflictions;
        h.u32(u32::from(self.kind.0));
        for value in [
            self.hp,
            a.max_hp,
            self.position.x,
            self.position.y,
            self.remaining,
            a.slow_factor,
            a.dot_per_tick,
        ] {
            h.f32(value);
        }
        h.u32(self.heading);
        h.u64(a.slow_until);
        h.u64(a.dot_until);
        h.bytes(&[u8::from(self.flying), a.dot_owner.0, a.last_hit_by.0]);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn enemy(id: u32, hp: f32, gone: bool) -> Enemy {
        Enemy {
            id,
            kind: EnemyKindId(0),
            flying: false,
            gone,
            hp,
            position: Vec2::new(id as f32, 0.0),
            toward: Vec2::ZERO,
            toward_remaining: 0.0,
            remaining: 0.0,
            heading: 0,
            afflicted_until: 0,
        }
    }

    /// Dead and leaked enemies at the ends, side by side and alone leave in
    /// id order; the rest keep their order and their afflictions.
    #[test]
    fn removal_keeps_id_order_and_slots_in_step() {
        let mut enemies = Enemies::default();
        let finished = [1, 2, 5, 8];
        for id in 1..=8 {
            let hp = if id == 2 || id == 8 { -1.0 } else { 10.0 };
            let gone = id == 1 || id == 5;
            enemies.spawn(enemy(id, hp, gone), Afflictions::new(id as f32));
        }
        let mut seen = Vec::new();
        enemies.remove_finished(|enemy, afflictions| {
            assert_eq!(afflictions.max_hp, enemy.id as f32);
            seen.push(enemy.id);
        });
        assert_eq!(seen, finished);
        let left: Vec<(u32, f32)> = enemies
            .iter()
            .map(|(enemy, afflictions)| (enemy.id, afflictions.max_hp))
            .collect();
        assert_eq!(left, [(3, 3.0), (4, 4.0), (6, 6.0), (7, 7.0)]);
        assert!(enemies.contains(6) && !enemies.contains(5));

        let mut none = Vec::new();
        enemies.remove_finished(|enemy, _| none.push(enemy.id));
        assert!(none.is_empty());
        assert_eq!(enemies.len(), 4);
    }
}
