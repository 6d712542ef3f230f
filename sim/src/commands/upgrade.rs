//! `UpgradeTower`: raise one of your towers a level.
//!
//! Checks, in order: the tower exists, it is yours, it has a next level, gold.

use crate::command::{PlayerId, Rejection, TowerId};
use crate::event::Event;

use super::{CommandContext, charge, own_tower};

pub(super) fn apply(
    context: &mut CommandContext,
    player: PlayerId,
    id: TowerId,
) -> Result<(), Rejection> {
    let tower = own_tower(context.towers, player, id)?;
    let levels = &context.rules.0.towers[usize::from(tower.kind.0)].levels;
    let next = usize::from(tower.level) + 1;
    let Some(level) = levels.get(next) else {
        return Err(Rejection::MaxLevel);
    };
    charge(context.players, player, level.cost)?;
    tower.level += 1;
    tower.invested += level.cost;
    context.events.0.push(Event::TowerUpgraded {
        tower: id,
        level: tower.level,
    });
    Ok(())
}
