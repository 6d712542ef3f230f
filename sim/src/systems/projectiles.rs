//! Step 7: projectiles fly, hit, splash, and apply their effects.

use bevy_ecs::prelude::*;

use crate::command::PlayerId;
use crate::content::DamageType;
use crate::rules::{EnemyRules, LevelRules};
use crate::world::{Enemy, Game, Projectile};

use super::Enemies;
use super::targeting::EnemyIndex;

/// Radius within which a ballistic shot without splash still hits the
/// enemy nearest its landing point.
const DIRECT_HIT_RADIUS: f32 = 0.5;

/// Moves every projectile and applies the impacts of those that arrive
/// (`impacts`: the shots that landed, at their aim). Impacts are applied in
/// projectile id order, the order shots are kept in, so simultaneous hits
/// resolve the same way every run.
pub(crate) fn fly_projectiles(
    game: &mut Game,
    index: &EnemyIndex,
    enemies: &mut Enemies,
    impacts: &mut Vec<Projectile>,
    victims: &mut Vec<Entity>,
) {
    let Game {
        clock,
        rules,
        projectiles,
        ..
    } = game;
    let rules = &rules.0;
    projectiles.0.retain_mut(|projectile| {
        // The index holds exactly the enemies alive and not leaked, where
        // they stand now: no hit lands before every projectile has moved.
        if let Some(target) = projectile.target {
            match index.living(target) {
                Some(target_position) => projectile.aim = target_position,
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
    for impact in impacts.drain(..) {
        let level =
            &rules.towers[usize::from(impact.tower_kind.0)].levels[usize::from(impact.level)];
        victims.clear();
        if let Some(target) = impact.target {
            victims.push(target);
        }
        if level.splash_radius > 0.0 {
            index.for_each_within(impact.aim, level.splash_radius, |enemy| {
                if Some(enemy.entity) != impact.target {
                    victims.push(enemy.entity);
                }
            });
        } else if impact.target.is_none() {
            let mut nearest: Option<(f32, u32, Entity)> = None;
            index.for_each_within(impact.aim, DIRECT_HIT_RADIUS, |enemy| {
                let key = (
                    enemy.position.distance_squared(impact.aim),
                    enemy.id,
                    enemy.entity,
                );
                if nearest.is_none_or(|best| (key.0, key.1) < (best.0, best.1)) {
                    nearest = Some(key);
                }
            });
            victims.extend(nearest.map(|(_, _, entity)| entity));
        }
        for &victim in victims.iter() {
            if let Ok((_, mut enemy, _)) = enemies.get_mut(victim)
                && enemy.hp > 0.0
                && !enemy.gone
            {
                let kind = &rules.enemies[usize::from(enemy.kind.0)];
                hurt(&mut enemy, kind, level, impact.owner, now);
            }
        }
    }
}

/// Applies one hit: damage after resistance (and armour, for physical
/// damage; a hit always deals at least 1), then slow and burn.
fn hurt(enemy: &mut Enemy, kind: &EnemyRules, level: &LevelRules, owner: PlayerId, now: u64) {
    let mut damage = level.damage * (1.0 - kind.resist.against(level.damage_type));
    if level.damage_type == DamageType::Physical {
        damage -= kind.armour;
    }
    enemy.hp -= damage.max(1.0);
    enemy.last_hit_by = owner;
    if let Some((factor, ticks)) = level.slow {
        let active = enemy.slow_until > now;
        // The strongest slow wins; an equal or weaker one only refreshes it.
        if !active || factor <= enemy.slow_factor {
            enemy.slow_factor = if active {
                factor.min(enemy.slow_factor)
            } else {
                factor
            };
            enemy.slow_until = enemy.slow_until.max(now + u64::from(ticks));
        }
    }
    if let Some((per_tick, ticks)) = level.dot {
        let per_tick = per_tick * (1.0 - kind.resist.fire);
        if enemy.dot_until <= now || per_tick >= enemy.dot_per_tick {
            enemy.dot_per_tick = per_tick;
            enemy.dot_until = now + u64::from(ticks);
            enemy.dot_owner = owner;
        }
    }
}
