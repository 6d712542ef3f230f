//! `waves/*.toml`: the waves of the map of the same name, each a list of
//! spawn groups naming enemy kinds and the map's spawns.

use super::Loader;
use super::maps::MAX_ENDPOINTS;
use super::walker::{Source, Tab, to_u16};
use crate::content::{Endless, EnemyKindId, SpawnGroup, Wave, WaveSet};

impl Loader {
    /// The waves of `map`, checked against the enemy keys and, when the
    /// map's grid loaded, its number of spawns.
    pub(super) fn waves(
        &mut self,
        source: &Source,
        enemies: &[&str],
        map: &str,
        spawns: Option<usize>,
    ) -> WaveSet {
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("waves of map `{map}`"),
        };
        cx.known_keys(
            &tab,
            &[
                "prep_seconds",
                "early_call_bonus_per_second",
                "endless",
                "wave",
            ],
        );
        let prep_seconds = cx.number(&tab, "prep_seconds", 0.0..=600.0, None);
        let early_call_bonus_per_second =
            cx.number(&tab, "early_call_bonus_per_second", 0.0..=1000.0, None);
        let endless = cx
            .subtable(&tab, "endless", false, "`[endless]`".into())
            .map(|endless| {
                cx.known_keys(&endless, &["hp_growth"]);
                Endless {
                    hp_growth: cx.number(&endless, "hp_growth", 1.0..=10.0, None),
                }
            });
        let mut waves = Vec::new();
        let wave_tabs = cx.tables(&tab, "wave", 1, 1000, |i| format!("wave {}", i + 1));
        for (w, wave) in wave_tabs.iter().enumerate() {
            // A group still spawning when the next wave starts makes the
            // two overlap; after the last wave of a finite set nothing does.
            let next_follows = endless.is_some() || w + 1 < wave_tabs.len();
            cx.known_keys(wave, &["duration", "group"]);
            let duration = cx.number(wave, "duration", 1.0..=3600.0, None);
            let mut groups = Vec::new();
            for group in cx.tables(wave, "group", 1, 100, |i| {
                format!("group {} of wave {}", i + 1, w + 1)
            }) {
                cx.known_keys(&group, &["enemy", "count", "interval", "delay", "spawn"]);
                let enemy = match cx.string(&group, "enemy", true) {
                    Some((key, at)) => {
                        enemies.iter().position(|e| *e == key).unwrap_or_else(|| {
                            cx.error(
                                at,
                                format!("unknown enemy kind `{key}`; no tribe declares it"),
                            );
                            0
                        })
                    }
                    None => 0,
                };
                let count = cx.integer(&group, "count", 1..=10_000, None) as u32;
                let interval = cx.number(&group, "interval", 0.0..=60.0, None);
                let delay = cx.number(&group, "delay", 0.0..=3600.0, Some(0.0));
                let spawn = cx.integer(&group, "spawn", 0..=(MAX_ENDPOINTS as i64 - 1), Some(0));
                if let (Some(spawns), Some(value)) = (spawns, group.table.get("spawn"))
                    && spawn as usize >= spawns
                {
                    cx.error(
                        value.span().start,
                        format!("spawn {spawn} does not exist: map `{map}` has {spawns} spawn(s), numbered from 0"),
                    );
                }
                let last_spawn = delay + interval * count.saturating_sub(1) as f32;
                if next_follows && last_spawn > duration {
                    cx.warn(
                        group.at,
                        format!(
                            "group {} of wave {} spawns its last enemy {last_spawn} s into the \
                             wave, after its duration of {duration} s: wave {} starts while it \
                             is still spawning",
                            groups.len() + 1,
                            w + 1,
                            w + 2
                        ),
                    );
                }
                groups.push(SpawnGroup {
                    enemy: EnemyKindId(to_u16(enemy)),
                    count,
                    interval,
                    delay,
                    spawn: spawn as u8,
                });
            }
            waves.push(Wave { duration, groups });
        }
        WaveSet {
            prep_seconds,
            early_call_bonus_per_second,
            waves,
            endless,
        }
    }
}
