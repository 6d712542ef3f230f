//! `SetTargeting`: choose how one of your towers picks its target.
//!
//! Checks, in order: the tower exists, it is yours.

use crate::command::{PlayerId, Rejection, Targeting, TowerId};

use super::{CommandContext, own_tower};

pub(super) fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    id: TowerId,
    mode: Targeting,
) -> Result<(), Rejection> {
    own_tower(context.towers, player, id)?.targeting = mode;
    Ok(())
}
