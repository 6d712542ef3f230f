//! Step 7: projectiles fly, hit, splash, and apply their effects.

use crate::command::PlayerId;
use crate::content::DamageType;
use crate::rules::{EnemyRules, LevelRules};
use crate::world::{Afflictions, Enemy, Game, Projectile};

use super::targeting::EnemyIndex;

/// Radius within which a ballistic shot without splash still hits the
/// enemy nearest its landing point.
const DIRECT_HIT_RADIUS: f32 = 0.5;

/// Moves every projectile and applies the impacts of those that arrive
/// (`impacts`: the shots that landed, at their aim; `victims`: the slots
/// in the enemy list an impact hits). Impacts are applied in projectile id
/// order, the order shots are kept in, so simultaneous hits resolve the
/// same way every run.
pub(crate) fn fly_projectiles(
    game: &mut Game,
    index: &EnemyIndex,
    impacts: &mut Vec<Projectile>,
    victims: &mut Vec<u32>,
) {
    let Game {
        clock,
        rules,
        projectiles,
        enemies,
        ..
    } = game;
    let rules = &rules.0;
    projectiles.0.retain_mut(|projectile| {
        // The index holds exactly the enemies alive and not leaked, where
        // they stand now: no hit lands before every projectile has moved.
        if let Some(target) = projectile.target {
            match index.find(target) {
                Some(target) => projectile.aim = target.position,
                // The target died or leaked: land where it was last seen.
                None => projectile.target = None,
            }
        }
        let level = &rules.towers[usize::from(projectile.tower_kind.0)].levels
            [usize::from(projectile.level)];
        let offset = projectile.aim - projectile.position;
        let distance = offset.length();
        if distance > level.projectile_speed {
            projectile.position += offset * (level.projectile_speed / distance);
            return true;
        }
        impacts.push(projectile.clone());
        false
    });
    let now = clock.tick;
    let (walkers, afflictions) = enemies.parts_mut();
    for impact in impacts.drain(..) {
        let level =
            &rules.towers[usize::from(impact.tower_kind.0)].levels[usize::from(impact.level)];
        victims.clear();
        // A target still set is in the index: the flight above just found it.
        victims.extend(
            impact
                .target
                .and_then(|target| index.find(target))
                .map(|target| target.slot),
        );
        if level.splash_radius > 0.0 {
            index.for_each_within(impact.aim, level.splash_radius, |enemy| {
                if Some(enemy.id) != impact.target {
                    victims.push(enemy.slot);
                }
            });
        } else if impact.target.is_none() {
            let mut nearest: Option<(f32, u32, u32)> = None;
            index.for_each_within(impact.aim, DIRECT_HIT_RADIUS, |enemy| {
                let key = (
                    enemy.position.distance_squared(impact.aim),
                    enemy.id,
                    enemy.slot,
                );
                if nearest.is_none_or(|best| (key.0, key.1) < (best.0, best.1)) {
                    nearest = Some(key);
                }
            });
            victims.extend(nearest.map(|(_, _, slot)| slot));
        }
        for &victim in victims.iter() {
            let slot = victim as usize;
            let enemy = &mut walkers[slot];
            // Hurt by an earlier impact this tick, perhaps to death.
            if enemy.hp > 0.0 && !enemy.gone {
                let kind = &rules.enemies[usize::from(enemy.kind.0)];
                hurt(
                    enemy,
                    &mut afflictions[slot],
                    kind,
                    level,
                    impact.owner,
                    now,
                );
            }
        }
    }
}

/// Applies one hit: damage after resistance (and armour, for physical
/// damage; a hit always deals at least 1), then slow and burn.
fn hurt(
    enemy: &mut Enemy,
    afflictions: &mut Afflictions,
    kind: &EnemyRules,
    level: &LevelRules,
    owner: PlayerId,
    now: u64,
) {
    let mut damage = level.damage * (1.0 - kind.resist.against(level.damage_type));
    if level.damage_type == DamageType::Physical {
        damage -= kind.armour;
    }
    enemy.hp -= damage.max(1.0);
    let a = afflictions;
    a.last_hit_by = owner;
    if let Some((factor, ticks)) = level.slow {
        let active = a.slow_until > now;
        // The strongest slow wins; an equal or weaker one only refreshes it.
        if !active || factor <= a.slow_factor {
            a.slow_factor = if active {
                factor.min(a.slow_factor)
            } else {
                factor
            };
            a.slow_until = a.slow_until.max(now + u64::from(ticks));
        }
    }
    if let Some((per_tick, ticks)) = level.dot {
        let per_tick = per_tick * (1.0 - kind.resist.fire);
        if a.dot_until <= now || per_tick >= a.dot_per_tick {
            a.dot_per_tick = per_tick;
            a.dot_until = now + u64::from(ticks);
            a.dot_owner = owner;
        }
    }
    // A burn renewed at a lower rate may end sooner than the one it
    // replaced: the walk then looks at the afflictions a little longer.
    enemy.afflicted_until = enemy.afflicted_until.max(a.until());
}
