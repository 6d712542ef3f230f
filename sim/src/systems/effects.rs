//! Step 4: damage over time.

use crate::world::Enemy;

/// Burns an enemy with an active damage-over-time effect. Deaths are
/// settled by step 8 with the burner as the killer.
pub(crate) fn burn(enemy: &mut Enemy, now: u64) {
    if enemy.dot_until > now && enemy.hp > 0.0 && !enemy.gone {
        enemy.hp -= enemy.dot_per_tick;
        enemy.last_hit_by = enemy.dot_owner;
    }
}
