//! Step 8: the dead leave the board and pay their bounty to whoever killed
//! them; the leaked, whose lives step 3 took, leave with them.

use crate::event::Event;
use crate::world::Game;

/// Removes enemies at or below zero hit points, and those that leaked.
pub(crate) fn remove_dead(game: &mut Game) {
    let Game {
        rules,
        state,
        players,
        events,
        enemies,
        ..
    } = game;
    // In id order: bounties and events do not depend on storage.
    enemies.remove_finished(|enemy, afflictions| {
        if enemy.gone {
            return;
        }
        let killer = afflictions.last_hit_by;
        let bounty = rules.0.enemies[usize::from(enemy.kind.0)].bounty;
        if let Some(player) = players.0.get_mut(usize::from(killer.0)) {
            player.gold += bounty;
            player.gold_earned += bounty;
            player.bounty_earned += bounty;
            player.kills += 1;
        }
        state.kills += 1;
        state.alive -= 1;
        events.0.push(Event::EnemyKilled {
            enemy: enemy.id,
            kind: enemy.kind,
            player: killer,
            bounty,
        });
    });
}
