//! Steps 3 to 5 in one walk over the enemies: each walks the flow field (or
//! flies straight) and leaks at a goal, burns under damage over time, and
//! is indexed for targeting if still alive.
//!
//! One walk, not three: in a host of hundreds of sessions each world is
//! cold when its tick starts, and every walk over the enemies reads every
//! enemy. The three steps do not depend on each other across enemies, so
//! doing all three for one enemy before the next is the same tick as doing
//! each for all.

use crate::event::Event;
use crate::world::{Board, Enemy, Game};

use super::effects;
use super::targeting::{EnemyIndex, Indexed};

/// Moves the first `standing` enemies (those spawned this tick wait for the
/// next) by their speed, slowed if a slow is active, burns them, and
/// indexes those still alive. Those at a goal leak: they cost lives now
/// and leave the board at the end of the tick.
pub(crate) fn move_enemies(game: &mut Game, standing: usize, index: &mut EnemyIndex) {
    let Game {
        clock,
        rules,
        board,
        state,
        events,
        enemies,
        ..
    } = game;
    let now = clock.tick;
    let mut refill = index.refill(board.width, board.height);
    let (walkers, afflictions) = enemies.parts_mut();
    for (slot, enemy) in walkers[..standing].iter_mut().enumerate() {
        let kind = &rules.0.enemies[usize::from(enemy.kind.0)];
        let afflicted = enemy.afflicted_until > now;
        let slow = if afflicted {
            effects::slow(&afflictions[slot], now)
        } else {
            1.0
        };
        let budget = kind.speed * slow;
        let arrived = if enemy.flying {
            fly(board, enemy, budget)
        } else {
            walk(board, enemy, budget)
        };
        if arrived {
            enemy.gone = true;
            // Walked in id order: leaks settle in id order.
            state.lives = state.lives.saturating_sub(kind.lives_cost);
            state.leaks += 1;
            state.alive -= 1;
            events.0.push(Event::EnemyLeaked {
                enemy: enemy.id,
                kind: enemy.kind,
                lives_lost: kind.lives_cost,
            });
        }
        if afflicted {
            effects::burn(enemy, &mut afflictions[slot], now);
        }
        if enemy.hp > 0.0 && !enemy.gone {
            refill.add(Indexed {
                slot: slot as u32,
                id: enemy.id,
                position: enemy.position,
                hp: enemy.hp,
                remaining: enemy.remaining,
                flying: enemy.flying,
            });
        }
    }
}

/// Fliers head for the nearest goal in a straight line. Returns true on arrival.
fn fly(board: &Board, enemy: &mut Enemy, budget: f32) -> bool {
    let goal = board.nearest_goal(enemy.position);
    let offset = goal - enemy.position;
    let distance = offset.length();
    if distance <= budget {
        enemy.position = goal;
        enemy.remaining = 0.0;
        return true;
    }
    enemy.position += offset * (budget / distance);
    enemy.remaining = distance - budget;
    false
}

/// Ground enemies walk from cell centre to cell centre along the flow field,
/// spending their whole step even across several centres. Returns true on
/// reaching a goal centre.
fn walk(board: &Board, enemy: &mut Enemy, mut budget: f32) -> bool {
    loop {
        let offset = enemy.toward - enemy.position;
        let distance = offset.length();
        if distance > budget {
            enemy.position += offset * (budget / distance);
            enemy.remaining = enemy.toward_remaining + distance - budget;
            return false;
        }
        enemy.position = enemy.toward;
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
