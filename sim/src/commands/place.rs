//! `PlaceTower`: build a tower on a free buildable cell, unless it would cut
//! a spawn or a walking enemy off from every goal.
//!
//! Checks, in order: known kind, on the map, buildable terrain, no tower and
//! no walking enemy on the cell, gold, and finally the path (the only costly
//! check, a flow field computation, which becomes the live field on success).

use std::cell::RefCell;

use crate::command::{PlayerId, Rejection, Targeting, TowerId};
use crate::content::TowerKindId;
use crate::event::Event;
use crate::grid::Cell;
use crate::path::FlowField;
use crate::world::{Board, Game, Tower};

use super::{CommandContext, charge};

pub(super) fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    kind: TowerKindId,
    cell: Cell,
) -> Result<(), Rejection> {
    let rules = &context.rules.0;
    let Some(tower_rules) = rules.towers.get(usize::from(kind.0)) else {
        return Err(Rejection::UnknownTowerKind);
    };
    let board = &mut *context.board;
    if cell.x >= board.width || cell.y >= board.height {
        return Err(Rejection::OutOfBounds);
    }
    let index = board.index(cell);
    if !board.buildable[index] {
        return Err(Rejection::CellNotBuildable);
    }
    if board.towers[index] {
        return Err(Rejection::CellOccupied);
    }
    // Every cell a walking enemy stands on or heads for must stay free and
    // keep its way to a goal.
    board.occupied.clear();
    for enemy in context
        .enemies
        .walkers()
        .iter()
        .filter(|enemy| !enemy.flying)
    {
        board.occupied.push(enemy.heading as usize);
        board.occupied.push(board.index_at(enemy.position));
    }
    if board.occupied.contains(&index) {
        return Err(Rejection::CellOccupied);
    }
    let price = tower_rules.levels[0].cost;
    let gold = context.players.0[usize::from(player.0)].gold;
    if gold < price {
        return Err(Rejection::NotEnoughGold {
            needed: price,
            available: gold,
        });
    }
    if !try_block(board, index) {
        return Err(Rejection::WouldBlockPath);
    }
    charge(context.players, player, price)?;
    context.ids.next_tower += 1;
    let id = context.ids.next_tower;
    board.towers[index] = true;
    context
        .towers
        .place(new_tower(id, player, kind, cell, price));
    let player_state = &mut context.players.0[usize::from(player.0)];
    player_state.towers_built += 1;
    context.events.0.push(Event::TowerPlaced {
        tower: TowerId(id),
        player,
        kind,
        cell,
    });
    Ok(())
}

fn new_tower(id: u32, owner: PlayerId, kind: TowerKindId, cell: Cell, invested: u32) -> Tower {
    Tower {
        id,
        owner,
        kind,
        level: 0,
        cell,
        targeting: Targeting::First,
        cooldown: 0,
        invested,
    }
}

thread_local! {
    /// Where this thread tries placements: a field is needed only while a
    /// command is checked, so the sessions stepped on a thread share one
    /// rather than each keeping a second field (18 KiB on the reference
    /// map). A placement on a map of another size than the last makes one.
    static TRIAL: RefCell<Option<FlowField>> = const { RefCell::new(None) };
}

/// Blocks `index` in a trial field and checks that every spawn and every
/// occupied cell still reaches a goal. On success the trial becomes the
/// live field (swapped: the old one is the thread's next trial), so a
/// placement costs exactly one field computation; on failure nothing
/// changes.
fn try_block(board: &mut Board, index: usize) -> bool {
    board.walkable[index] = false;
    TRIAL.with_borrow_mut(|spare| {
        let trial = match spare {
            Some(field) if field.width() == board.width && field.height() == board.height => field,
            _ => spare.insert(FlowField::new(board.width, board.height)),
        };
        trial.compute(&board.walkable, &board.goals);
        let connected = board
            .spawns
            .iter()
            .chain(&board.occupied)
            .all(|&cell| trial.reachable(cell));
        if !connected {
            board.walkable[index] = true;
            return false;
        }
        std::mem::swap(&mut board.field, trial);
        board.field_version += 1;
        true
    })
}

/// Places a scenario tower before the first tick: no gold changes hands, and
/// the caller recomputes the field once after the last one. Returns false if
/// the cell cannot take a tower.
pub(crate) fn place_tower(
    game: &mut Game,
    owner: PlayerId,
    kind: TowerKindId,
    cell: Cell,
    level: u8,
    invested: u32,
) -> bool {
    let board = &mut game.board;
    if cell.x >= board.width || cell.y >= board.height {
        return false;
    }
    let index = board.index(cell);
    if !board.buildable[index] || board.towers[index] {
        return false;
    }
    board.walkable[index] = false;
    game.ids.next_tower += 1;
    let id = game.ids.next_tower;
    let mut tower = new_tower(id, owner, kind, cell, invested);
    tower.level = level;
    board.towers[index] = true;
    game.towers.stand(tower);
    true
}
