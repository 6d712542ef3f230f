//! `SellTower`: remove one of your towers for a share of what it cost.
//!
//! Checks, in order: the tower exists, it is yours. Selling never blocks a
//! path, so the field is recomputed without a trial.

use crate::command::{PlayerId, Rejection, TowerId};
use crate::event::Event;

use super::{CommandContext, own_tower};

pub(super) fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    id: TowerId,
) -> Result<(), Rejection> {
    let tower = own_tower(context.towers, player, id)?;
    let refund_share = context.rules.0.towers[usize::from(tower.kind.0)].sell_refund;
    let refund = (tower.invested as f32 * refund_share) as u32;
    let board = &mut *context.board;
    let index = board.index(tower.cell);
    board.towers[index] = false;
    board.walkable[index] = true;
    board.field.compute(&board.walkable, &board.goals);
    board.field_version += 1;
    context.towers.sell(id.0);
    context.players.0[usize::from(player.0)].gold += refund;
    context
        .events
        .0
        .push(Event::TowerSold { tower: id, refund });
    Ok(())
}
