//! Steps 3 to 5 in one walk over the enemies: each walks the flow field (or
//! flies straight) and leaks at a goal, burns under damage over time, and
//! is indexed for targeting if still alive.
//!
//! One walk, not three: in a host of hundreds of sessions each world is
//! cold when its tick starts, and every walk over the enemies costs its
//! query's set-up and the reads of every enemy. The three steps do not
//! depend on each other across enemies (leaks are settled once all have
//! moved), so doing all three for one enemy before the next is the same
//! tick as doing each for all.

use bevy_ecs::prelude::*;

use crate::content::EnemyKindId;
use crate::event::Event;
use crate::world::{Board, Enemy, Game, Position};

use super::targeting::{EnemyIndex, Indexed};
use super::{Enemies, effects};

/// A leak found this tick, applied in id order once all enemies have moved.
pub(crate) struct Leak {
    id: u32,
    entity: Entity,
    kind: EnemyKindId,
    lives: u32,
}

/// Moves every enemy by its speed (slowed if a slow is active), burns it,
/// and indexes it if it still lives.
///
/// Change detection is bypassed: nothing in a session reads change ticks,
/// and marking them would write two more columns for every enemy each tick.
pub(crate) fn move_enemies(
    commands: &mut Commands,
    game: &mut Game,
    enemies: &mut Enemies,
    index: &mut EnemyIndex,
    leaks: &mut Vec<Leak>,
) {
    let Game {
        clock,
        rules,
        board,
        state,
        events,
        ..
    } = game;
    let now = clock.tick;
    let mut refill = index.refill(board.width, board.height);
    for (entity, mut enemy, mut position) in enemies.iter_mut() {
        let enemy = enemy.bypass_change_detection();
        let position = position.bypass_change_detection();
        let kind = &rules.0.enemies[usize::from(enemy.kind.0)];
        let slow = if enemy.slow_until > now {
            enemy.slow_factor
        } else {
            1.0
        };
        let budget = kind.speed * slow;
        let arrived = if enemy.flying {
            fly(board, enemy, position, budget)
        } else {
            walk(board, enemy, position, budget)
        };
        if arrived {
            enemy.gone = true;
            leaks.push(Leak {
                id: enemy.id,
                entity,
                kind: enemy.kind,
                lives: kind.lives_cost,
            });
        }
        effects::burn(enemy, now);
        if enemy.hp > 0.0 && !enemy.gone {
            refill.add(Indexed {
                entity,
                id: enemy.id,
                position: position.0,
                hp: enemy.hp,
                remaining: enemy.remaining,
                flying: enemy.flying,
            });
        }
    }
    drop(refill);
    leaks.sort_unstable_by_key(|leak| leak.id);
    for leak in leaks.drain(..) {
        state.lives = state.lives.saturating_sub(leak.lives);
        state.leaks += 1;
        state.alive -= 1;
        events.0.push(Event::EnemyLeaked {
            enemy: leak.id,
            kind: leak.kind,
            lives_lost: leak.lives,
        });
        commands.entity(leak.entity).despawn();
    }
}

/// Fliers head for the nearest goal in a straight line. Returns true on arrival.
fn fly(board: &Board, enemy: &mut Enemy, position: &mut Position, budget: f32) -> bool {
    let goal = board.nearest_goal(position.0);
    let offset = goal - position.0;
    let distance = offset.length();
    if distance <= budget {
        position.0 = goal;
        enemy.remaining = 0.0;
        return true;
    }
    position.0 += offset * (budget / distance);
    enemy.remaining = distance - budget;
    false
}

/// Ground enemies walk from cell centre to cell centre along the flow field,
/// spending their whole step even across several centres. Returns true on
/// reaching a goal centre.
fn walk(board: &Board, enemy: &mut Enemy, position: &mut Position, mut budget: f32) -> bool {
    loop {
        let offset = enemy.toward - position.0;
        let distance = offset.length();
        if distance > budget {
            position.0 += offset * (budget / distance);
            enemy.remaining = enemy.toward_remaining + distance - budget;
            return false;
        }
        position.0 = enemy.toward;
        budget -= distance;
        let heading = enemy.heading as usize;
        match board.field.next(heading) {
            Some(next) => enemy.head_for(board, next),
            None => {
                // At a goal (or, were the map ever cut, stranded: wait there).
                enemy.remaining = enemy.toward_remaining;
                return board.field.distance(heading) == Some(0);
            }
        }
    }
}
