//! Step 4: damage over time.

use crate::world::Game;

use super::Enemies;

/// Burns every enemy with an active damage-over-time effect. Deaths are
/// settled by step 8 with the burner as the killer.
pub(crate) fn burn_enemies(game: &Game, enemies: &mut Enemies) {
    let now = game.clock.tick;
    for (_, mut enemy, _) in enemies.iter_mut() {
        if enemy.dot_until > now && enemy.hp > 0.0 && !enemy.gone {
            enemy.hp -= enemy.dot_per_tick;
            enemy.last_hit_by = enemy.dot_owner;
        }
    }
}
