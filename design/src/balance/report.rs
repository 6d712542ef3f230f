//! A balance run summed up per variant, in the form written as JSON (and
//! from which the CSV files and charts are drawn). Every number is computed
//! in (variant, seed) order, so a run's report is the same on every run.

use serde::Serialize;

use super::record::{GameRecord, wilson};
use super::{Games, Variant};
use rampart_sim::Outcome;

/// The whole run.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Map key.
    pub map: String,
    /// Scenario key, if any.
    pub scenario: Option<String>,
    /// Seats.
    pub players: u8,
    /// `builder` or `passive`.
    pub bots: &'static str,
    /// Ticks per second.
    pub tick_hz: u32,
    /// The tick limit of an undecided game.
    pub max_ticks: u64,
    /// Seconds between samples in `over_time`.
    pub sample_seconds: u32,
    /// The seeds each variant played.
    pub seeds: Vec<u64>,
    /// Per variant, in the order given.
    pub variants: Vec<VariantReport>,
    /// Every game, by variant then seed.
    pub games: Vec<GameRow>,
}

/// One variant's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct VariantReport {
    /// Label.
    pub label: String,
    /// Each change: key and the value written.
    pub changes: Vec<(String, String)>,
    /// The variant content's version (hex).
    pub content_version: String,
    /// Games played.
    pub games: u32,
    /// Games won.
    pub victories: u32,
    /// Games lost.
    pub defeats: u32,
    /// Games that reached the tick limit undecided.
    pub undecided: u32,
    /// Victories over games.
    pub win_rate: f64,
    /// The win rate's 95% Wilson interval.
    pub win_rate_interval: (f64, f64),
    /// Game length in seconds.
    pub length_seconds: Spread,
    /// Lives left at the end.
    pub lives_left: Spread,
    /// Mean lives lost during each wave per game (index 0 is wave 1; a
    /// game that never reached a wave counts 0 for it).
    pub lives_lost_per_wave: Vec<f64>,
    /// Mean leaks per game by enemy kind key, kinds that leaked in any
    /// variant, sorted by key.
    pub leaks_by_enemy: Vec<(String, f64)>,
    /// Mean gold earned and kills so far at each sample time (a game that
    /// ended keeps its final numbers).
    pub over_time: Vec<TimePoint>,
}

/// A distribution in brief.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Spread {
    /// Mean.
    pub mean: f64,
    /// Median (the mean of the middle two of an even count).
    pub median: f64,
    /// Smallest.
    pub min: f64,
    /// Largest.
    pub max: f64,
}

/// Means across a variant's games at one time.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct TimePoint {
    /// Seconds of game time.
    pub second: u64,
    /// Gold earned by all players so far (bounties and early-call bonuses).
    pub gold_earned: f64,
    /// Enemies killed so far.
    pub kills: f64,
}

/// One game.
#[derive(Clone, Debug, Serialize)]
pub struct GameRow {
    /// Index into `variants`.
    pub variant: usize,
    /// Seed.
    pub seed: u64,
    /// `victory`, `defeat` or `undecided`.
    pub outcome: &'static str,
    /// Ticks played.
    pub ticks: u64,
    /// Lives left.
    pub lives: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Enemies leaked.
    pub leaks: u32,
}

impl Report {
    /// Sums up `records` (variant index, record), in (variant, seed) order.
    pub(crate) fn new(
        variants: &[Variant],
        games: &Games,
        records: &[(usize, GameRecord)],
    ) -> Self {
        let hz = f64::from(games.config.tick_hz);
        let leaked: Vec<usize> = leaked_kinds(records);
        let reports = variants
            .iter()
            .enumerate()
            .map(|(index, variant)| {
                let mine: Vec<&GameRecord> = records
                    .iter()
                    .filter(|(of, _)| *of == index)
                    .map(|(_, record)| record)
                    .collect();
                summarise(variant, &mine, hz, games.sample_seconds, &leaked)
            })
            .collect();
        let rows = records
            .iter()
            .map(|(variant, record)| GameRow {
                variant: *variant,
                seed: record.seed,
                outcome: outcome_name(record.outcome),
                ticks: record.ticks,
                lives: record.lives,
                kills: record.kills,
                leaks: record.leaks,
            })
            .collect();
        Self {
            map: games.config.map.clone(),
            scenario: games.config.scenario.clone(),
            players: games.config.players,
            bots: match games.style {
                rampart_sim::bots::BotStyle::Builder => "builder",
                rampart_sim::bots::BotStyle::Passive => "passive",
            },
            tick_hz: games.config.tick_hz,
            max_ticks: games.max_ticks,
            sample_seconds: games.sample_seconds,
            seeds: games.seeds.clone(),
            variants: reports,
            games: rows,
        }
    }
}

/// The name of an outcome in reports.
fn outcome_name(outcome: Option<Outcome>) -> &'static str {
    outcome.map_or("undecided", Outcome::name)
}

/// Enemy kinds (indices) that leaked in any game of any variant, so every
/// variant lists the same kinds (variants of one run share the enemy list
/// unless a `--vary-dir` directory changes it; each names kinds from its
/// own content).
fn leaked_kinds(records: &[(usize, GameRecord)]) -> Vec<usize> {
    let kinds = records
        .iter()
        .map(|(_, record)| record.leaks_by_enemy.len())
        .max()
        .unwrap_or(0);
    (0..kinds)
        .filter(|&kind| {
            records
                .iter()
                .any(|(_, record)| record.leaks_by_enemy.get(kind).is_some_and(|&n| n > 0))
        })
        .collect()
}

fn summarise(
    variant: &Variant,
    records: &[&GameRecord],
    hz: f64,
    sample_seconds: u32,
    leaked: &[usize],
) -> VariantReport {
    let count = records.len() as u32;
    let victories = count_outcome(records, Some(Outcome::Victory));
    let defeats = count_outcome(records, Some(Outcome::Defeat));
    // The mean over the variant's games of one number of each game.
    let mean = |value: &dyn Fn(&GameRecord) -> u32| {
        let total: f64 = records.iter().map(|record| f64::from(value(record))).sum();
        if count == 0 {
            0.0
        } else {
            total / f64::from(count)
        }
    };
    let waves = records
        .iter()
        .map(|record| record.lives_lost_by_wave.len())
        .max()
        .unwrap_or(0);
    let lives_lost_per_wave = (0..waves)
        .map(|wave| mean(&|record| record.lives_lost_by_wave.get(wave).copied().unwrap_or(0)))
        .collect();
    let mut leaks_by_enemy: Vec<(String, f64)> = leaked
        .iter()
        .map(|&kind| {
            let name = variant
                .content
                .enemies
                .get(kind)
                .map_or_else(|| format!("kind {kind}"), |enemy| enemy.key.clone());
            let leaks = mean(&|record| record.leaks_by_enemy.get(kind).copied().unwrap_or(0));
            (name, leaks)
        })
        .collect();
    leaks_by_enemy.sort_by(|a, b| a.0.cmp(&b.0));
    let samples = records
        .iter()
        .map(|record| record.samples.len())
        .max()
        .unwrap_or(0);
    let over_time = (0..samples)
        .map(|sample| {
            let at = |record: &GameRecord| {
                record
                    .samples
                    .get(sample)
                    .or(record.samples.last())
                    .copied()
                    .unwrap_or((0, 0))
            };
            TimePoint {
                second: (sample as u64 + 1) * u64::from(sample_seconds),
                gold_earned: mean(&|record| at(record).0),
                kills: mean(&|record| at(record).1),
            }
        })
        .collect();
    VariantReport {
        label: variant.label.clone(),
        changes: variant.changes.clone(),
        content_version: format!("{:016x}", variant.content.version),
        games: count,
        victories,
        defeats,
        undecided: count - victories - defeats,
        win_rate: if count == 0 {
            0.0
        } else {
            f64::from(victories) / f64::from(count)
        },
        win_rate_interval: wilson(victories, count),
        length_seconds: spread(
            records
                .iter()
                .map(|record| record.ticks as f64 / hz)
                .collect(),
        ),
        lives_left: spread(
            records
                .iter()
                .map(|record| f64::from(record.lives))
                .collect(),
        ),
        lives_lost_per_wave,
        leaks_by_enemy,
        over_time,
    }
}

fn count_outcome(records: &[&GameRecord], outcome: Option<Outcome>) -> u32 {
    records
        .iter()
        .filter(|record| record.outcome == outcome)
        .count() as u32
}

fn spread(mut values: Vec<f64>) -> Spread {
    if values.is_empty() {
        return Spread {
            mean: 0.0,
            median: 0.0,
            min: 0.0,
            max: 0.0,
        };
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    Spread {
        mean: values.iter().sum::<f64>() / n as f64,
        median,
        min: values[0],
        max: values[n - 1],
    }
}
