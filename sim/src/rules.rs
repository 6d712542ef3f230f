//! Content converted to tick units, so the tick never divides seconds by
//! the tick rate; converted once per content, map and tick rate, and shared
//! by the sessions built from them.

use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::content::{Content, DamageType, Flight, MapDef, Resistances, TargetFilter};

/// One tower level in tick units.
#[derive(Clone, Debug)]
pub(crate) struct LevelRules {
    pub cost: u32,
    pub range: f32,
    pub reload_ticks: u32,
    pub damage: f32,
    pub damage_type: DamageType,
    pub projectile_speed: f32,
    pub splash_radius: f32,
    /// Speed multiplier and duration in ticks.
    pub slow: Option<(f32, u32)>,
    /// Damage per tick and duration in ticks.
    pub dot: Option<(f32, u32)>,
}

/// One tower kind in tick units.
#[derive(Clone, Debug)]
pub(crate) struct TowerRules {
    pub targets: TargetFilter,
    pub flight: Flight,
    pub sell_refund: f32,
    pub levels: Vec<LevelRules>,
}

/// One enemy kind in tick units.
#[derive(Clone, Debug)]
pub(crate) struct EnemyRules {
    pub hp: f32,
    pub armour: f32,
    pub speed: f32,
    pub bounty: u32,
    pub lives_cost: u32,
    pub flying: bool,
    pub resist: Resistances,
}

/// One spawn group in tick units.
#[derive(Clone, Debug)]
pub(crate) struct GroupRules {
    pub enemy: u16,
    pub count: u32,
    pub interval_ticks: u32,
    pub delay_ticks: u32,
    pub spawn: u8,
}

/// One wave in tick units.
#[derive(Clone, Debug)]
pub(crate) struct WaveRules {
    pub duration_ticks: u32,
    pub groups: Vec<GroupRules>,
}

/// Everything a session reads from content during a tick.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    pub content: Arc<Content>,
    pub map_index: usize,
    pub tick_hz: u32,
    pub towers: Vec<TowerRules>,
    pub enemies: Vec<EnemyRules>,
    pub waves: Vec<WaveRules>,
    pub prep_ticks: u32,
    pub early_bonus_per_tick: f32,
    pub endless_hp_growth: Option<f32>,
}

/// Seconds to whole ticks, at least one.
fn ticks(seconds: f32, tick_hz: u32) -> u32 {
    ((seconds * tick_hz as f32).round() as u32).max(1)
}

/// The rules converted from one content, held weakly (per map and tick
/// rate) while sessions use them.
///
/// Shared because every tower's and enemy's step reads them: a thousand
/// sessions each with a copy of their own had a thousand copies to miss in
/// cache (the towers' level rules were a third of the time spent choosing
/// targets); one copy stays warm from one session's tick to the next.
/// Locked only while a session is built or restored, never in a tick.
#[derive(Default)]
pub struct RulesCache(Mutex<Vec<Weak<Rules>>>);

/// A clone starts empty: cloned content is there to be changed (a balance
/// run's variant), and its rules must come from its own values.
impl Clone for RulesCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl std::fmt::Debug for RulesCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cache = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("RulesCache")
            .field(
                "live",
                &cache
                    .iter()
                    .filter(|rules| rules.strong_count() > 0)
                    .count(),
            )
            .finish()
    }
}

impl Rules {
    /// The rules of `map_index` at `tick_hz` for `content`, converted once
    /// and shared while any session holds them.
    ///
    /// Sound though `Content` has public fields: a `Rules` holds its
    /// `Arc<Content>`, so while any cached entry is alive the content is
    /// shared and cannot change (`Arc::get_mut` refuses, `Arc::make_mut`
    /// clones it, and a clone starts with an empty cache).
    pub(crate) fn shared(content: &Arc<Content>, map_index: usize, tick_hz: u32) -> Arc<Self> {
        let mut cache = content
            .rules
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache.retain(|rules| rules.strong_count() > 0);
        let found = cache
            .iter()
            .filter_map(Weak::upgrade)
            .find(|rules| rules.map_index == map_index && rules.tick_hz == tick_hz);
        if let Some(rules) = found {
            return rules;
        }
        let rules = Arc::new(Self::new(content.clone(), map_index, tick_hz));
        cache.push(Arc::downgrade(&rules));
        rules
    }

    fn new(content: Arc<Content>, map_index: usize, tick_hz: u32) -> Self {
        let hz = tick_hz as f32;
        let towers = content
            .towers
            .iter()
            .map(|kind| TowerRules {
                targets: kind.targets,
                flight: kind.flight,
                sell_refund: kind.sell_refund,
                levels: kind
                    .levels
                    .iter()
                    .map(|level| LevelRules {
                        cost: level.cost,
                        range: level.range,
                        reload_ticks: ticks(level.reload, tick_hz),
                        damage: level.damage,
                        damage_type: level.damage_type,
                        projectile_speed: level.projectile_speed / hz,
                        splash_radius: level.splash_radius,
                        slow: level
                            .slow
                            .map(|slow| (slow.factor, ticks(slow.seconds, tick_hz))),
                        dot: level
                            .dot
                            .map(|dot| (dot.per_second / hz, ticks(dot.seconds, tick_hz))),
                    })
                    .collect(),
            })
            .collect();
        let enemies = content
            .enemies
            .iter()
            .map(|kind| EnemyRules {
                hp: kind.hp,
                armour: kind.armour,
                speed: kind.speed / hz,
                bounty: kind.bounty,
                lives_cost: kind.lives_cost,
                flying: kind.flying,
                resist: kind.resist,
            })
            .collect();
        let map = &content.maps[map_index];
        let waves = map
            .waves
            .waves
            .iter()
            .map(|wave| WaveRules {
                duration_ticks: ticks(wave.duration, tick_hz),
                groups: wave
                    .groups
                    .iter()
                    .map(|group| GroupRules {
                        enemy: group.enemy.0,
                        count: group.count,
                        interval_ticks: ticks(group.interval, tick_hz),
                        delay_ticks: (group.delay * hz).round() as u32,
                        spawn: group.spawn,
                    })
                    .collect(),
            })
            .collect();
        Self {
            prep_ticks: ticks(map.waves.prep_seconds, tick_hz),
            early_bonus_per_tick: map.waves.early_call_bonus_per_second / hz,
            endless_hp_growth: map.waves.endless.map(|endless| endless.hp_growth),
            map_index,
            tick_hz,
            towers,
            enemies,
            waves,
            content,
        }
    }

    pub(crate) fn map(&self) -> &MapDef {
        &self.content.maps[self.map_index]
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn assets() -> Arc<Content> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets");
        Arc::new(crate::content::load_dir(&dir).unwrap())
    }

    #[test]
    fn sessions_of_one_content_map_and_rate_share_their_rules() {
        let content = assets();
        let first = Rules::shared(&content, 0, 30);
        assert!(Arc::ptr_eq(&first, &Rules::shared(&content, 0, 30)));
        assert!(!Arc::ptr_eq(&first, &Rules::shared(&content, 0, 60)));
        assert!(!Arc::ptr_eq(&first, &Rules::shared(&content, 1, 30)));
        // Held weakly: once no session holds them, the entries go.
        drop(first);
        let again = Rules::shared(&content, 0, 30);
        assert_eq!(content.rules.0.lock().unwrap().len(), 1);
        assert_eq!((again.map_index, again.tick_hz), (0, 30));
    }

    #[test]
    fn changed_clone_of_content_converts_its_own_rules() {
        let content = assets();
        let original = Rules::shared(&content, 0, 30);
        let mut changed = (*content).clone();
        changed.towers[0].levels[0].damage *= 2.0;
        let changed = Arc::new(changed);
        let rules = Rules::shared(&changed, 0, 30);
        assert_eq!(
            rules.towers[0].levels[0].damage,
            original.towers[0].levels[0].damage * 2.0
        );
    }
}
