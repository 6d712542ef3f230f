//! Waves: starting them on time (or early), and spawning their groups.

use glam::Vec2;
use rand_core::Rng;

use crate::content::EnemyKindId;
use crate::event::Event;
use crate::rules::Rules;
use crate::world::{Afflictions, Enemy, Game, Spawner, Waves};

/// Starts the next wave at tick `now`. Returns false when no wave is left.
pub(crate) fn start_next_wave(waves: &mut Waves, rules: &Rules, now: u64) -> bool {
    let listed = rules.waves.len() as u32;
    if rules.endless_hp_growth.is_none() && waves.started >= listed {
        return false;
    }
    let slot = (waves.started % listed) as usize;
    if waves.started > 0 && slot == 0 {
        // A new endless cycle: the same waves, tougher.
        waves.hp_scale *= rules.endless_hp_growth.unwrap_or(1.0);
    }
    let wave = &rules.waves[slot];
    for (group, rules) in wave.groups.iter().enumerate() {
        waves.spawners.push(Spawner {
            wave_slot: slot,
            group,
            remaining: rules.count,
            next_tick: now + u64::from(rules.delay_ticks),
            hp_scale: waves.hp_scale,
        });
    }
    waves.started += 1;
    let more = rules.endless_hp_growth.is_some() || waves.started < listed;
    waves.next_start = more.then(|| now + u64::from(wave.duration_ticks));
    true
}

/// Step 2: start a wave that is due, then spawn every enemy whose time has
/// come (they start walking next tick).
pub(crate) fn advance_waves(game: &mut Game) {
    let Game {
        clock,
        rules,
        board,
        state,
        waves,
        ids,
        rng,
        events,
        enemies,
        ..
    } = game;
    let rules = &rules.0;
    let now = clock.tick;
    if waves.next_start.is_some_and(|at| now >= at) && start_next_wave(waves, rules, now) {
        events.0.push(Event::WaveStarted {
            wave: waves.started,
            early_bonus: 0,
        });
    }
    for spawner in &mut waves.spawners {
        let group = &rules.waves[spawner.wave_slot].groups[spawner.group];
        while spawner.remaining > 0 && spawner.next_tick <= now {
            let kind = EnemyKindId(group.enemy);
            let enemy = &rules.enemies[usize::from(group.enemy)];
            let spawn = board.spawns[usize::from(group.spawn)];
            // A little jitter keeps a group from walking as one stacked sprite.
            let jitter = Vec2::new(jitter(&mut rng.0), jitter(&mut rng.0));
            let position = board.centre(spawn) + jitter;
            let hp = enemy.hp * spawner.hp_scale;
            ids.next_enemy += 1;
            enemies.spawn(
                Enemy {
                    id: ids.next_enemy,
                    kind,
                    flying: enemy.flying,
                    gone: false,
                    hp,
                    position,
                    toward: board.centre(spawn),
                    toward_remaining: board.remaining(spawn),
                    remaining: f32::MAX,
                    heading: spawn as u32,
                    afflicted_until: 0,
                },
                Afflictions::new(hp),
            );
            spawner.remaining -= 1;
            state.alive += 1;
            spawner.next_tick += u64::from(group.interval_ticks);
        }
    }
    waves.spawners.retain(|spawner| spawner.remaining > 0);
}

/// A uniform offset in [-0.2, 0.2] cells, from integers only so it is the
/// same on every platform.
fn jitter(rng: &mut rand_pcg::Pcg32) -> f32 {
    (rng.next_u32() % 41) as f32 / 100.0 - 0.2
}
