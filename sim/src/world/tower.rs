//! Towers: how they are kept, their record in a save and their part of the
//! state hash, kept together so a new field is one edit here (plus the
//! step that uses it and the save's format version).

use crate::command::{PlayerId, Targeting};
use crate::content::TowerKindId;
use crate::grid::{Cell, Tile};
use crate::hash::StableHasher;
use crate::session::save::{Persisted, Reader, RestoreCx, RestoreError, Writer};

/// A built tower.
#[derive(Clone, Debug)]
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

/// The towers on the board, in id order, and what this tick's commands
/// placed and sold, which the towers that fire see from the next tick on
/// (as enemies spawned this tick start walking next tick).
///
/// A list in the session's `Game`, not entities in a bevy `World`: in a
/// host of a thousand sessions each world is cold at its tick, and the
/// towers' query cost a chain of misses in bevy's bookkeeping (the query's
/// archetype check, the table and its column looked up, the entity rows,
/// the change ticks, the world's trackers cleared), more than the towers'
/// own rows.
#[derive(Debug, Default)]
pub(crate) struct Towers {
    standing: Vec<Tower>,
    /// Placed this tick: they join the standing at its end.
    placed: Vec<Tower>,
    /// Sold this tick: no command finds them any more, but they stand (and
    /// fire) until its end.
    sold: Vec<u32>,
}

impl Towers {
    /// Towers standing; between ticks, every tower.
    pub(crate) fn len(&self) -> usize {
        self.standing.len()
    }

    /// The standing towers, in id order.
    pub(crate) fn iter(&self) -> std::slice::Iter<'_, Tower> {
        self.standing.iter()
    }

    /// The standing towers, in id order, for the step that fires them.
    pub(crate) fn standing_mut(&mut self) -> &mut [Tower] {
        &mut self.standing
    }

    /// The tower `id`, if it stands and was not sold this tick.
    pub(crate) fn find_mut(&mut self, id: u32) -> Option<&mut Tower> {
        if self.sold.contains(&id) {
            return None;
        }
        let slot = self.standing.binary_search_by_key(&id, |tower| tower.id);
        slot.ok().map(|slot| &mut self.standing[slot])
    }

    /// A tower built now (before the first tick, or restored): it stands at once.
    pub(crate) fn stand(&mut self, tower: Tower) {
        debug_assert!(self.standing.last().is_none_or(|last| last.id < tower.id));
        self.standing.push(tower);
    }

    /// A tower a command places: it stands from the end of the tick.
    pub(crate) fn place(&mut self, tower: Tower) {
        self.placed.push(tower);
    }

    /// A tower a command sells: gone for commands now, from the board at
    /// the end of the tick.
    pub(crate) fn sell(&mut self, id: u32) {
        self.sold.push(id);
    }

    /// The end of a tick: the sold leave, the placed join (ids only grow,
    /// so appending keeps the order).
    pub(crate) fn settle(&mut self) {
        if !self.sold.is_empty() {
            let sold = &self.sold;
            self.standing.retain(|tower| !sold.contains(&tower.id));
            self.sold.clear();
        }
        self.standing.append(&mut self.placed);
    }
}

/// Record: owner (byte), kind, level (byte), cell (x, y), targeting (byte),
/// reload countdown, gold invested.
impl Persisted for Tower {
    /// A tower's record is all on `Tower`.
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
