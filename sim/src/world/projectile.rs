//! A shot in flight: its data, its record in a save and its part of the
//! state hash, kept together so a new field is one edit here (plus the
//! steps that fire and fly it, and the save's format version).
//!
//! Shots are plain data in the session's [`Game`](super::Game), not
//! entities. A shot lives a few ticks and a reference session fires a few
//! a tick; as entities each cost a command to spawn, an entity slot, a
//! table row and a despawn, and each homing shot looked its target up in
//! the world's entity table every tick: together a sixth of a cold world's
//! tick. In a list kept in id order they cost none of that, and come out
//! sorted for impacts, saves, hashes and snapshots.

use glam::Vec2;

use super::Enemies;
use crate::command::PlayerId;
use crate::content::TowerKindId;
use crate::hash::StableHasher;
use crate::session::save::{Persisted, Reader, RestoreCx, RestoreError, Writer};

/// A shot in flight.
#[derive(Clone, Debug)]
pub(crate) struct Projectile {
    pub id: u32,
    pub owner: PlayerId,
    pub tower_kind: TowerKindId,
    pub level: u8,
    /// Homing shots follow the enemy of this id while it lives.
    pub target: Option<u32>,
    /// Where it is going (refreshed from a living homing target).
    pub aim: Vec2,
    /// Where it is.
    pub position: Vec2,
}

/// The shots in flight, in id order: ids only grow, so launching appends
/// and landing removes in place without disturbing the order.
#[derive(Debug, Default)]
pub(crate) struct Projectiles(pub Vec<Projectile>);

/// What a projectile's record holds besides the shot itself: where it is,
/// and the target it still has.
#[derive(Clone, Copy, Debug)]
pub(crate) struct InFlight {
    pub position: Vec2,
    /// The enemy id it follows, 0 for none.
    pub target: u32,
}

impl Projectile {
    /// Its record's [`InFlight`] part. A target that died after the shot
    /// was fired is no longer on the board; the shot forgets it on its
    /// next flight step either way, so it counts as none.
    pub(crate) fn in_flight(&self, enemies: &Enemies) -> InFlight {
        let target = self
            .target
            .filter(|&target| enemies.contains(target))
            .unwrap_or(0);
        InFlight {
            position: self.position,
            target,
        }
    }
}

/// Record: owner (byte), tower kind, level (byte), position, aim, target
/// enemy id (0 for none).
impl Persisted for Projectile {
    type Extra = InFlight;
    const MIN_RECORD: usize = 21;

    fn id(&self) -> u32 {
        self.id
    }

    #[inline]
    fn save(&self, flight: InFlight, w: &mut Writer<'_>) {
        w.u8(self.owner.0);
        w.var(u64::from(self.tower_kind.0));
        w.u8(self.level);
        for value in [flight.position.x, flight.position.y, self.aim.x, self.aim.y] {
            w.f32(value);
        }
        w.var(u64::from(flight.target));
    }

    fn restore(
        id: u32,
        r: &mut Reader<'_>,
        cx: &mut RestoreCx<'_>,
    ) -> Result<(Self, InFlight), RestoreError> {
        let owner = cx.seat(r)?;
        let kind = r.index(cx.rules.towers.len(), "unknown tower kind")?;
        let level = r.u8()?;
        if usize::from(level) >= cx.rules.towers[kind].levels.len() {
            return Err(RestoreError::Malformed("projectile level out of range"));
        }
        let position = Vec2::new(r.f32()?, r.f32()?);
        let aim = Vec2::new(r.f32()?, r.f32()?);
        let target = r.var_u32()?;
        if target != 0 && cx.enemies.binary_search(&target).is_err() {
            return Err(RestoreError::Malformed("projectile aimed at no enemy"));
        }
        let projectile = Projectile {
            id,
            owner,
            tower_kind: TowerKindId(kind as u16),
            level,
            target: (target != 0).then_some(target),
            aim,
            position,
        };
        Ok((projectile, InFlight { position, target }))
    }

    fn hash(&self, flight: InFlight, h: &mut StableHasher) {
        h.bytes(&[self.owner.0, self.level]);
        h.u32(u32::from(self.tower_kind.0));
        for value in [flight.position.x, flight.position.y, self.aim.x, self.aim.y] {
            h.f32(value);
        }
        h.u32(flight.target);
    }
}
