//! Step 8: the dead leave the board and pay their bounty to whoever killed them.

use bevy_ecs::prelude::*;

use crate::command::PlayerId;
use crate::content::EnemyKindId;
use crate::event::Event;
use crate::world::Game;

use super::Enemies;

/// A death found this tick, settled in id order.
pub(crate) struct Death {
    id: u32,
    entity: Entity,
    kind: EnemyKindId,
    killer: PlayerId,
}

/// Removes enemies at or below zero hit points.
pub(crate) fn remove_dead(
    commands: &mut Commands,
    game: &mut Game,
    enemies: &Enemies,
    deaths: &mut Vec<Death>,
) {
    let Game {
        rules,
        state,
        players,
        events,
        ..
    } = game;
    deaths.extend(
        enemies
            .iter()
            .filter(|(_, enemy, _)| enemy.hp <= 0.0 && !enemy.gone)
            .map(|(entity, enemy, _)| Death {
                id: enemy.id,
                entity,
                kind: enemy.kind,
                killer: enemy.last_hit_by,
            }),
    );
    deaths.sort_unstable_by_key(|death| death.id);
    for death in deaths.drain(..) {
        let bounty = rules.0.enemies[usize::from(death.kind.0)].bounty;
        if let Some(player) = players.0.get_mut(usize::from(death.killer.0)) {
            player.gold += bounty;
            player.gold_earned += bounty;
            player.bounty_earned += bounty;
            player.kills += 1;
        }
        state.kills += 1;
        state.alive -= 1;
        events.0.push(Event::EnemyKilled {
            enemy: death.id,
            kind: death.kind,
            player: death.killer,
            bounty,
        });
        commands.entity(death.entity).despawn();
    }
}
