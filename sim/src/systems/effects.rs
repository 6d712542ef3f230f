//! Step 4: damage over time.

use bevy_ecs::prelude::*;

use crate::world::{Enemy, Game};

/// Burns every enemy with an active damage-over-time effect. Deaths are
/// settled by step 8 with the burner as the killer.
pub(crate) fn burn_enemies(game: Res<Game>, mut enemies: Query<&mut Enemy>) {
    let now = game.clock.tick;
    for mut enemy in &mut enemies {
        if enemy.dot_until > now && enemy.hp > 0.0 && !enemy.gone {
            enemy.hp -= enemy.dot_per_tick;
            enemy.last_hit_by = enemy.dot_owner;
        }
    }
}
