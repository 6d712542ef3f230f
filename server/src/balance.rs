//! `rampart balance`: many games of a map and scenario with different seeds
//! and content variants, in parallel on every core, summed up per variant
//! and written as JSON, CSV and charts (`rampart_design::balance` does the
//! work; this module reads arguments, shows progress and writes files).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};
use rampart_design::balance::{self, Axis, Games, Setting};

use crate::simulate::GameArgs;

/// Arguments of `rampart balance`.
#[derive(clap::Args)]
pub struct BalanceArgs {
    #[command(flatten)]
    game: GameArgs,
    /// Games per variant; their seeds are --seed, --seed + 1, ...
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    games: u32,
    /// The first game's seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Vary a number: KEY=LOW:HIGH:STEPS multiplies it by STEPS values from
    /// LOW to HIGH (`towers.cannon.level.0.damage=0.8:1.2:5`). Repeat to
    /// vary several: every combination is a variant.
    #[arg(long, value_name = "KEY=LOW:HIGH:STEPS")]
    vary: Vec<String>,
    /// Compare content directories (repeat: one variant each, plus the
    /// combinations of --vary) instead of --assets alone.
    #[arg(long, value_name = "DIR")]
    vary_dir: Vec<PathBuf>,
    /// Set a value in every variant: KEY=VALUE, the value in TOML
    /// (`scenarios.reference.lives=50`).
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Seconds of game time between two samples of gold and kills.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    sample_seconds: u32,
    /// Write report.json, CSV tables and charts (SVG and PNG) into this
    /// directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the report as JSON on standard output, without a progress bar.
    #[arg(long)]
    json: bool,
    /// Content directory.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
}

/// Runs `rampart balance`.
pub fn run(args: BalanceArgs) -> anyhow::Result<ExitCode> {
    let axes: Vec<Axis> = args
        .vary
        .iter()
        .map(|text| Axis::parse(text))
        .collect::<Result<_, _>>()?;
    let settings: Vec<Setting> = args
        .set
        .iter()
        .map(|text| Setting::parse(text))
        .collect::<Result<_, _>>()?;
    let variants = balance::variants(&args.assets, &args.vary_dir, &settings, &axes)
        .context("preparing the variants")?;
    let first = variants
        .first()
        .context("no variants: pass at least one --vary-dir or none")?;
    let config = args.game.config(&first.content, 0)?;
    let games = Games {
        config,
        style: args.game.style(),
        seeds: (0..u64::from(args.games))
            .map(|game| args.seed.wrapping_add(game))
            .collect(),
        max_ticks: args.game.ticks,
        sample_seconds: args.sample_seconds,
    };
    let total = variants.len() as u64 * u64::from(args.games);
    let bar = if args.json {
        ProgressBar::hidden()
    } else {
        // Drawn on standard error only when it is a terminal.
        ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{bar:40} {pos}/{len} games, {elapsed} elapsed, about {eta} left",
            )
            .context("progress bar template")?,
        )
    };
    let started = Instant::now();
    let report = balance::run(&variants, &games, &|| bar.inc(1)).context("playing the games")?;
    bar.finish_and_clear();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for (name, bytes) in balance::report_files(&report).context("drawing the charts")? {
            let path = dir.join(name);
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if args.json {
        print!("{}", report.to_json());
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<40} {:>6} {:>22} {:>12} {:>11} {:>7}",
        "variant", "games", "win rate (95%)", "length s", "lives left", "leaks"
    );
    for (index, variant) in report.variants.iter().enumerate() {
        let leaks: u32 = report
            .games
            .iter()
            .filter(|game| game.variant == index)
            .map(|game| game.leaks)
            .sum();
        println!(
            "{:<40} {:>6} {:>6.1}% [{:>5.1}, {:>5.1}] {:>12.1} {:>11.1} {:>7.1}",
            variant.label,
            variant.games,
            100.0 * variant.win_rate,
            100.0 * variant.win_rate_interval.0,
            100.0 * variant.win_rate_interval.1,
            variant.length_seconds.mean,
            variant.lives_left.mean,
            f64::from(leaks) / f64::from(variant.games.max(1)),
        );
    }
    eprintln!(
        "{total} games in {:.1} s on {} threads{}",
        started.elapsed().as_secs_f64(),
        rayon::current_num_threads(),
        args.out
            .as_ref()
            .map(|dir| format!("; report, tables and charts in {}", dir.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}
