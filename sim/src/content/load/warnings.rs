//! What designers want to hear about content that loads but plays badly:
//! warnings, not errors, since a session runs it all the same. Two are
//! found while a file is walked (a wave group still spawning when the next
//! wave starts, in `waves`; a spawn too close to a goal, in `maps`); the
//! two that weigh items of several files are found here, once everything
//! has loaded: a tower nobody can afford early, an enemy kind no tower can
//! hit.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::Loader;
use super::walker::Diagnostic;
use crate::content::{Content, MapDef};

/// How demanding the warnings are.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WarningRules {
    /// A tower kind whose build cost no player can hold by the start of
    /// this wave, on any map or scenario, is worth a warning.
    pub afford_by_wave: u32,
    /// A spawn whose walk to the nearest goal is shorter than this many
    /// cells leaves towers too little road to work on.
    pub min_path_cells: f64,
}

impl Default for WarningRules {
    fn default() -> Self {
        Self {
            afford_by_wave: 3,
            min_path_cells: 10.0,
        }
    }
}

/// Where a tower or enemy kind is declared: its key in its file.
#[derive(Clone, Debug)]
pub(super) struct Place {
    pub(super) file: PathBuf,
    pub(super) line: u32,
    pub(super) column: u32,
}

/// Where each tower and enemy kind is declared, by key.
#[derive(Default)]
pub(super) struct Places {
    pub(super) towers: BTreeMap<String, Place>,
    pub(super) enemies: BTreeMap<String, Place>,
}

impl Loader {
    fn warn_at(&mut self, place: Option<&Place>, message: String) {
        let Some(place) = place else { return };
        self.warnings.push(Diagnostic {
            file: place.file.clone(),
            line: place.line,
            column: place.column,
            message,
        });
    }

    /// The warnings about items of several files, on content that loaded.
    pub(super) fn warn_across_files(&mut self, content: &Content) {
        self.warn_unaffordable(content);
        self.warn_unhittable(content);
    }

    /// Tower kinds whose build cost is more than any player can hold by
    /// the start of wave `afford_by_wave` on every map and scenario.
    fn warn_unaffordable(&mut self, content: &Content) {
        let wave = self.rules.afford_by_wave;
        let mut starts: Vec<(String, f64)> = Vec::new();
        for map in &content.maps {
            let earned = gold_before_wave(content, map, wave);
            starts.push((
                format!("map `{}`", map.key),
                f64::from(map.start_gold) + earned,
            ));
            for scenario in content.scenarios.iter().filter(|s| s.map == map.key) {
                let start = scenario.start_gold.unwrap_or(map.start_gold);
                starts.push((
                    format!("scenario `{}`", scenario.key),
                    f64::from(start) + earned,
                ));
            }
        }
        let Some((richest, most)) = starts.into_iter().max_by(|a, b| a.1.total_cmp(&b.1)) else {
            return;
        };
        for tower in &content.towers {
            let Some(build) = tower.levels.first() else {
                continue;
            };
            if f64::from(build.cost) > most {
                let place = self.places.towers.get(&tower.key).cloned();
                self.warn_at(
                    place.as_ref(),
                    format!(
                        "tower `{}` costs {} gold to build, more than any player can \
                         hold before wave {wave} on any map or scenario (at most {} gold, on \
                         {richest}): nobody can build it early",
                        tower.key,
                        build.cost,
                        most.floor()
                    ),
                );
            }
        }
    }

    /// Enemy kinds no tower can target: fliers with no tower that targets
    /// air, walkers with none that targets ground.
    fn warn_unhittable(&mut self, content: &Content) {
        let air = content.towers.iter().any(|t| t.targets.air);
        let ground = content.towers.iter().any(|t| t.targets.ground);
        for enemy in &content.enemies {
            let (moves, target) = match (enemy.flying, air, ground) {
                (true, false, _) => ("flies", "air"),
                (false, _, false) => ("walks", "ground"),
                _ => continue,
            };
            let place = self.places.enemies.get(&enemy.key).cloned();
            self.warn_at(
                place.as_ref(),
                format!(
                    "enemy `{}` {moves}, but no tower targets {target}: every one \
                     that spawns leaks",
                    enemy.key
                ),
            );
        }
    }
}

/// The most gold one player can have earned on `map` before wave `wave`
/// starts: every bounty of the waves before it (as if that player killed
/// everything) and every early-call bonus (as if each wave, and the
/// preparation, were called at once). An upper bound, so a tower it
/// cannot pay for is out of everyone's reach.
fn gold_before_wave(content: &Content, map: &MapDef, wave: u32) -> f64 {
    let waves = &map.waves;
    let listed = waves.waves.len();
    let before = usize::try_from(wave.saturating_sub(1)).unwrap_or(usize::MAX);
    let played = if waves.endless.is_some() {
        before
    } else {
        before.min(listed)
    };
    let mut gold = 0.0;
    let mut seconds = f64::from(waves.prep_seconds);
    for index in 0..played {
        let Some(earlier) = waves.waves.get(index % listed.max(1)) else {
            break;
        };
        seconds += f64::from(earlier.duration);
        for group in &earlier.groups {
            let bounty = content.enemy(group.enemy).bounty;
            gold += f64::from(group.count) * f64::from(bounty);
        }
    }
    gold + seconds * f64::from(waves.early_call_bonus_per_second)
}
