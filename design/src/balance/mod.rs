//! Balance runs: many games of one map and scenario, with different seeds
//! and content variants, played by scripted players in parallel on every
//! core, summed up per variant (win rate with its interval, lives lost per
//! wave, gold and kills over time, leaks by enemy kind, game length).
//!
//! A run is deterministic: each game is a pure function of its content,
//! config and seed, games are collected in (variant, seed) order whatever
//! thread finished first, and the report holds no wall-clock time, so the
//! same command writes the same report.

mod output;
mod record;
mod report;
mod vary;

pub use output::report_files;
pub use record::{GameRecord, wilson};
pub use report::{GameRow, Report, Spread, TimePoint, VariantReport};
pub use vary::{Axis, ContentKey, Setting, VaryError};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_sim::bots::{BotGame, BotStyle};
use rampart_sim::content::{ContentError, ContentFiles};
use rampart_sim::{Content, Session, SessionConfig, SessionError};
use rayon::prelude::*;

/// Why a balance run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum BalanceError {
    /// A content directory could not be read.
    #[error("reading {dir}: {source}")]
    Read {
        /// The directory.
        dir: PathBuf,
        /// What failed.
        source: ContentError,
    },
    /// A change could not be made.
    #[error(transparent)]
    Vary(#[from] VaryError),
    /// A variant's content does not load (a value pushed out of range).
    #[error("variant `{variant}` is not valid content: {source}")]
    Content {
        /// The variant's label.
        variant: String,
        /// The loader's report.
        source: ContentError,
    },
    /// A variant's session cannot be built (its map or scenario is missing).
    #[error("variant `{variant}`: {source}")]
    Session {
        /// The variant's label.
        variant: String,
        /// Why.
        source: SessionError,
    },
}

/// One version of the content a run plays.
#[derive(Clone, Debug)]
pub struct Variant {
    /// How it differs, for people: the directory and each change.
    pub label: String,
    /// Each change made: key and the value written.
    pub changes: Vec<(String, String)>,
    /// The content.
    pub content: Arc<Content>,
}

/// The games a run plays of each variant.
#[derive(Clone, Debug)]
pub struct Games {
    /// The session config (its seed is replaced by each game's).
    pub config: SessionConfig,
    /// How the bots play.
    pub style: BotStyle,
    /// Seeds, one game each.
    pub seeds: Vec<u64>,
    /// A game still undecided after this many ticks stops there.
    pub max_ticks: u64,
    /// Seconds of game time between two samples of gold and kills.
    pub sample_seconds: u32,
}

/// Builds the variants: every directory (or `base` alone), each with every
/// combination of the axes' multipliers, after the settings.
///
/// # Errors
/// When a directory cannot be read, a key leads nowhere, or a variant is
/// not valid content.
pub fn variants(
    base: &Path,
    dirs: &[PathBuf],
    settings: &[Setting],
    axes: &[Axis],
) -> Result<Vec<Variant>, BalanceError> {
    let dirs = if dirs.is_empty() {
        vec![base.to_path_buf()]
    } else {
        dirs.to_vec()
    };
    let mut out = Vec::new();
    for dir in &dirs {
        let mut files = ContentFiles::read_dir(dir).map_err(|source| BalanceError::Read {
            dir: dir.clone(),
            source,
        })?;
        let mut changes = Vec::new();
        for setting in settings {
            setting.apply(files.files_mut())?;
            changes.push((setting.key.text().to_owned(), setting.value.to_string()));
        }
        let prefix = if dirs.len() > 1 {
            Some(dir.display().to_string())
        } else {
            None
        };
        combine(&files, axes, prefix, &changes, &mut out)?;
    }
    Ok(out)
}

/// Adds a variant per combination of the axes' multipliers over `files`.
fn combine(
    files: &ContentFiles,
    axes: &[Axis],
    prefix: Option<String>,
    changes: &[(String, String)],
    out: &mut Vec<Variant>,
) -> Result<(), BalanceError> {
    let combinations: usize = axes.iter().map(|axis| axis.multipliers.len()).product();
    for combination in 0..combinations {
        let mut files = files.clone();
        let mut changes = changes.to_vec();
        let mut label: Vec<String> = prefix.iter().cloned().collect();
        let mut rest = combination;
        for axis in axes {
            let multiplier = axis.multipliers[rest % axis.multipliers.len()];
            rest /= axis.multipliers.len();
            let value = axis.apply(files.files_mut(), multiplier)?;
            label.push(format!("{} x{}", axis.key.in_file(), trim(multiplier)));
            changes.push((axis.key.text().to_owned(), value.to_string()));
        }
        let label = if label.is_empty() {
            "base".to_owned()
        } else {
            label.join(" ")
        };
        let content = files.load().map_err(|source| BalanceError::Content {
            variant: label.clone(),
            source,
        })?;
        out.push(Variant {
            label,
            changes,
            content: Arc::new(content),
        });
    }
    Ok(())
}

fn trim(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Plays every game of every variant on the current rayon pool (every core
/// by default) and sums them up. `progress` is called once per finished
/// game, from whichever thread played it.
///
/// # Errors
/// When a variant's session cannot be built.
pub fn run(
    variants: &[Variant],
    games: &Games,
    progress: &(dyn Fn() + Sync),
) -> Result<Report, BalanceError> {
    let jobs: Vec<(usize, u64)> = (0..variants.len())
        .flat_map(|variant| games.seeds.iter().map(move |&seed| (variant, seed)))
        .collect();
    let sample_ticks = u64::from(games.sample_seconds.max(1)) * u64::from(games.config.tick_hz);
    let records: Vec<(usize, GameRecord)> =
        jobs.par_iter()
            .map(
                |&(variant, seed)| -> Result<(usize, GameRecord), BalanceError> {
                    let record = play(&variants[variant].content, games, seed, sample_ticks)
                        .map_err(|source| BalanceError::Session {
                            variant: variants[variant].label.clone(),
                            source,
                        })?;
                    progress();
                    Ok((variant, record))
                },
            )
            .collect::<Result<_, BalanceError>>()?;
    Ok(Report::new(variants, games, &records))
}

/// Plays one game and records it.
fn play(
    content: &Arc<Content>,
    games: &Games,
    seed: u64,
    sample_ticks: u64,
) -> Result<GameRecord, SessionError> {
    let config = SessionConfig {
        seed,
        ..games.config.clone()
    };
    let mut record = GameRecord::new(seed, content.enemies.len());
    let mut game = BotGame::new(Session::new(content.clone(), &config)?, games.style);
    while !game.finished(games.max_ticks) {
        game.think(|_| {});
        game.step();
        record.observe(game.session(), sample_ticks);
    }
    record.finish(game.session());
    Ok(record)
}
