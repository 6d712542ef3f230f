//! Step 9: victory once every wave is spent and the board is clear; defeat at
//! zero lives.

use bevy_ecs::prelude::*;

use crate::event::{Event, Outcome};
use crate::world::{Events, Match, Waves};

/// Decides the outcome, once.
pub(crate) fn decide_outcome(
    mut state: ResMut<Match>,
    waves: Res<Waves>,
    mut events: ResMut<Events>,
) {
    let outcome = if state.lives == 0 {
        Outcome::Defeat
    } else if waves.started > 0
        && waves.next_start.is_none()
        && waves.spawners.is_empty()
        && state.alive == 0
    {
        Outcome::Victory
    } else {
        return;
    };
    state.outcome = Some(outcome);
    events.0.push(Event::GameOver { outcome });
}
