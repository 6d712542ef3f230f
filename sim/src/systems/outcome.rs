//! Step 9: victory once every wave is spent and the board is clear; defeat at
//! zero lives; short of both, a wave's end when the board is cleared.

use crate::event::{Event, Outcome};
use crate::world::Game;

/// Decides the outcome, once; otherwise says when the board was cleared.
pub(crate) fn decide_outcome(game: &mut Game) {
    let Game {
        state,
        waves,
        events,
        ..
    } = game;
    let clear = waves.started > 0 && waves.spawners.is_empty() && state.alive == 0;
    let outcome = if state.lives == 0 {
        Outcome::Defeat
    } else if clear && waves.next_start.is_none() {
        Outcome::Victory
    } else {
        // The board can only become clear in the tick its last enemy died
        // or leaked, so this needs no state of its own (and the events are
        // read only in a tick that ends with the board clear).
        let emptied = || {
            events
                .0
                .iter()
                .any(|event| matches!(event, Event::EnemyKilled { .. } | Event::EnemyLeaked { .. }))
        };
        if clear && emptied() {
            events.0.push(Event::WaveCleared {
                wave: waves.started,
            });
        }
        return;
    };
    state.outcome = Some(outcome);
    events.0.push(Event::GameOver { outcome });
}
