//! `Ready`: a player declares ready; when every seat is, the first wave
//! starts without waiting out the preparation time.
//!
//! Checks: not already ready.

use crate::command::{PlayerId, Rejection};
use crate::event::Event;
use crate::systems::waves::start_next_wave;

use super::CommandContext;

pub(super) fn apply(context: &mut CommandContext, player: PlayerId) -> Result<(), Rejection> {
    let seat = &mut context.players.0[usize::from(player.0)];
    if seat.ready {
        return Err(Rejection::AlreadyReady);
    }
    seat.ready = true;
    let everyone = context.players.0.iter().all(|seat| seat.ready);
    if everyone
        && context.waves.started == 0
        && start_next_wave(context.waves, &context.rules.0, context.clock.tick)
    {
        context.events.0.push(Event::WaveStarted {
            wave: 1,
            early_bonus: 0,
        });
    }
    Ok(())
}
