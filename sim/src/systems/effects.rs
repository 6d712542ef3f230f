//! Step 4, damage over time, and what slows do to a step of the walk: the
//! enemy's [`Afflictions`], read only while one is active.

use crate::world::{Afflictions, Enemy};

/// The speed multiplier of an enemy's slow at tick `now` (1 once worn off).
pub(crate) fn slow(afflictions: &Afflictions, now: u64) -> f32 {
    if afflictions.slow_until > now {
        afflictions.slow_factor
    } else {
        1.0
    }
}

/// Burns an enemy with an active damage-over-time effect. Deaths are
/// settled by step 8 with the burner as the killer.
pub(crate) fn burn(enemy: &mut Enemy, afflictions: &mut Afflictions, now: u64) {
    if afflictions.dot_until > now && enemy.hp > 0.0 && !enemy.gone {
        enemy.hp -= afflictions.dot_per_tick;
        afflictions.last_hit_by = afflictions.dot_owner;
    }
}
