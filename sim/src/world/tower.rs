//! A built tower: the component, its record in a save and its part of the
//! state hash, kept together so a new field is one edit here (plus the
//! step that uses it and the save's format version).

use bevy_ecs::prelude::*;

use crate::command::{PlayerId, Targeting};
use crate::content::TowerKindId;
use crate::grid::{Cell, Tile};
use crate::hash::StableHasher;
use crate::session::save::{Persisted, Reader, RestoreCx, RestoreError, Writer};

/// A built tower.
#[derive(Component, Clone, Debug)]
pub(crate) struct Tower {
    pub id: u32,
    pub owner: PlayerId,
    pub kind: TowerKindId,
    pub level: u8,
    pub cell: Cell,
    pub targeting: Targeting,
    /// Ticks until it may fire again.
    pub cooldown: u32,
    /// Gold put into it (build plus upgrades), the base of its refund.
    pub invested: u32,
}

/// Record: owner (byte), kind, level (byte), cell (x, y), targeting (byte),
/// reload countdown, gold invested.
impl Persisted for Tower {
    /// A tower has no other component: its record is all on `Tower`.
    type Extra = ();
    const MIN_RECORD: usize = 9;

    fn id(&self) -> u32 {
        self.id
    }

    #[inline]
    fn save(&self, (): (), w: &mut Writer<'_>) {
        w.u8(self.owner.0);
        w.var(u64::from(self.kind.0));
        w.u8(self.level);
        w.var(u64::from(self.cell.x));
        w.var(u64::from(self.cell.y));
        w.u8(self.targeting as u8);
        w.var(u64::from(self.cooldown));
        w.var(u64::from(self.invested));
    }

    fn restore(
        id: u32,
        r: &mut Reader<'_>,
        cx: &mut RestoreCx<'_>,
    ) -> Result<(Self, ()), RestoreError> {
        let owner = cx.seat(r)?;
        let kind = r.index(cx.rules.towers.len(), "unknown tower kind")?;
        let level = r.u8()?;
        if usize::from(level) >= cx.rules.towers[kind].levels.len() {
            return Err(RestoreError::Malformed("tower level out of range"));
        }
        let cell = Cell::new(r.var_u16()?, r.var_u16()?);
        let grid = &cx.rules.map().grid;
        if cell.x >= grid.width() || cell.y >= grid.height() {
            return Err(RestoreError::Malformed("tower off the map"));
        }
        let index = grid.index(cell);
        if grid.tile(cell) != Tile::Buildable || cx.taken[index] {
            return Err(RestoreError::Malformed(
                "tower on an unbuildable or taken cell",
            ));
        }
        cx.taken[index] = true;
        let targeting = Targeting::ALL[r.index(Targeting::ALL.len(), "unknown targeting")?];
        let tower = Tower {
            id,
            owner,
            kind: TowerKindId(kind as u16),
            level,
            cell,
            targeting,
            cooldown: r.var_u32()?,
            invested: r.var_u32()?,
        };
        Ok((tower, ()))
    }

    fn hash(&self, (): (), h: &mut StableHasher) {
        h.bytes(&[self.owner.0, self.level, self.targeting as u8]);
        h.u32(u32::from(self.kind.0));
        h.u32(u32::from(self.cell.x) << 16 | u32::from(self.cell.y));
        h.u32(self.cooldown);
        h.u32(self.invested);
    }
}
