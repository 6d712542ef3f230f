//! `SetTargeting`: choose how one of your towers picks its target.
//!
//! Checks, in order: the tower exists, it is yours.

use crate::command::{PlayerId, Rejection, Targeting, TowerId};

use super::CommandContext;

pub(super) fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    id: TowerId,
    mode: Targeting,
) -> Result<(), Rejection> {
    let entity = context.own_tower(player, id)?;
    let mut tower = context
        .towers
        .get_mut(entity)
        .map_err(|_| Rejection::NoSuchTower)?;
    tower.targeting = mode;
    Ok(())
}
