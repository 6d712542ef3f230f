//! `CallNextWave`: start the next wave now. Every player gets a bonus for the
//! time the wave would otherwise have waited.
//!
//! Checks: a wave is left to start.

use crate::command::Rejection;
use crate::event::Event;
use crate::systems::waves::start_next_wave;

use super::CommandContext;

pub(super) fn apply(context: &mut CommandContext) -> Result<(), Rejection> {
    let now = context.clock.tick;
    let waiting = context
        .waves
        .next_start
        .ok_or(Rejection::NoMoreWaves)?
        .saturating_sub(now);
    let rules = &context.rules.0;
    if !start_next_wave(context.waves, rules, now) {
        return Err(Rejection::NoMoreWaves);
    }
    let bonus = (waiting as f32 * rules.early_bonus_per_tick) as u32;
    for player in &mut context.players.0 {
        player.gold += bonus;
        player.gold_earned += bonus;
    }
    context.events.0.push(Event::WaveStarted {
        wave: context.waves.started,
        early_bonus: bonus,
    });
    Ok(())
}
