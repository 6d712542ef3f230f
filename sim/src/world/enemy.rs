//! A walking or flying enemy: the component, its record in a save and its
//! part of the state hash, kept together so a new field is one edit here
//! (plus the steps that spawn and use it, and the save's format version).

use bevy_ecs::prelude::*;
use glam::Vec2;

use super::Board;
use crate::command::PlayerId;
use crate::content::EnemyKindId;
use crate::hash::StableHasher;
use crate::session::save::{Persisted, Reader, RestoreCx, RestoreError, Writer};

/// A walking or flying enemy.
#[derive(Component, Clone, Debug)]
pub(crate) struct Enemy {
    pub id: u32,
    pub kind: EnemyKindId,
    pub hp: f32,
    pub max_hp: f32,
    pub flying: bool,
    /// Ground enemies: the cell whose centre they walk towards. Fliers: unused.
    pub heading: u32,
    /// The heading's centre and its distance to a goal along the field, in
    /// cells: derived from the heading and the field, kept so that a step
    /// of the walk reads neither the field nor divides by the map's width
    /// (the field's distance was a cache miss per walker per tick). Set by
    /// [`Enemy::head_for`] and, after the field changes, by
    /// [`Enemy::refresh_heading`]; neither saved nor hashed.
    pub toward: Vec2,
    pub toward_remaining: f32,
    /// Distance left to a goal in cells, refreshed by movement; drives the
    /// `first` and `last` targeting modes.
    pub remaining: f32,
    /// Speed multiplier while slowed, and the tick the slow wears off.
    pub slow_factor: f32,
    pub slow_until: u64,
    /// Burn damage per tick, the tick it stops, and whose tower lit it.
    pub dot_per_tick: f32,
    pub dot_until: u64,
    pub dot_owner: PlayerId,
    /// Who hurt it last: the killer, should it die.
    pub last_hit_by: PlayerId,
    /// Reached a goal this tick; despawned at the end of the tick, and no
    /// longer a target meanwhile.
    pub gone: bool,
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
    /// Where it stands.
    type Extra = Vec2;
    const MIN_RECORD: usize = 20;

    fn id(&self) -> u32 {
        self.id
    }

    #[inline]
    fn save(&self, position: Vec2, w: &mut Writer<'_>) {
        w.var(u64::from(self.kind.0));
        let hurt = self.hp.to_bits() != self.max_hp.to_bits();
        let slowed = self.slow_factor.to_bits() != 1.0f32.to_bits() || self.slow_until != 0;
        let burned = self.dot_per_tick.to_bits() != 0.0f32.to_bits()
            || self.dot_until != 0
            || self.dot_owner != PlayerId(0);
        let hit = self.last_hit_by != PlayerId(0);
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
        w.f32(self.max_hp);
        if hurt {
            w.f32(self.hp);
        }
        w.f32(position.x);
        w.f32(position.y);
        w.var(u64::from(self.heading));
        w.f32(self.remaining);
        if slowed {
            w.f32(self.slow_factor);
            w.var(self.slow_until);
        }
        if burned {
            w.f32(self.dot_per_tick);
            w.var(self.dot_until);
            w.u8(self.dot_owner.0);
        }
        if hit {
            w.u8(self.last_hit_by.0);
        }
    }

    fn restore(
        id: u32,
        r: &mut Reader<'_>,
        cx: &mut RestoreCx<'_>,
    ) -> Result<(Self, Vec2), RestoreError> {
        let kind = r.index(cx.rules.enemies.len(), "unknown enemy kind")?;
        let flags = r.u8()?;
        if flags & !ENEMY_FLAGS != 0 {
            return Err(RestoreError::Malformed("unknown enemy flags"));
        }
        let max_hp = r.f32()?;
        let hp = if flags & HURT != 0 { r.f32()? } else { max_hp };
        let position = Vec2::new(r.f32()?, r.f32()?);
        let heading = r.index(cx.rules.map().grid.len(), "enemy heading off the map")? as u32;
        let remaining = r.f32()?;
        let (slow_factor, slow_until) = if flags & SLOWED != 0 {
            (r.f32()?, r.var()?)
        } else {
            (1.0, 0)
        };
        let (dot_per_tick, dot_until, dot_owner) = if flags & BURNED != 0 {
            (r.f32()?, r.var()?, cx.seat(r)?)
        } else {
            (0.0, 0, PlayerId(0))
        };
        let last_hit_by = if flags & HIT != 0 {
            cx.seat(r)?
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
            // Derived once the field is computed: the restore refreshes
            // every enemy's heading then.
            toward: Vec2::ZERO,
            toward_remaining: 0.0,
            remaining,
            slow_factor,
            slow_until,
            dot_per_tick,
            dot_until,
            dot_owner,
            last_hit_by,
            gone: flags & GONE != 0,
        };
        Ok((enemy, position))
    }

    /// `gone` is left out: the state is hashed between steps, when no enemy
    /// that reached a goal is left on the board.
    fn hash(&self, position: Vec2, h: &mut StableHasher) {
        h.u32(u32::from(self.kind.0));
        for value in [
            self.hp,
            self.max_hp,
            position.x,
            position.y,
            self.remaining,
            self.slow_factor,
            self.dot_per_tick,
        ] {
            h.f32(value);
        }
        h.u32(self.heading);
        h.u64(self.slow_until);
        h.u64(self.dot_until);
        h.bytes(&[u8::from(self.flying), self.dot_owner.0, self.last_hit_by.0]);
    }
}
