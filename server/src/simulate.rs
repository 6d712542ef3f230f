//! `rampart simulate` and `rampart replay`: whole sessions headless, for
//! designers checking balance and for reproducing a recorded game.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::load_content;
use rampart_sim::bots::{BotGame, BotStyle};
use rampart_sim::log::{CommandLog, LogEnd};
use rampart_sim::{Content, DEFAULT_TICK_HZ, Session, SessionConfig, Summary};
use serde::Serialize;

/// The game a headless tool plays: map, scenario, seats, bots and length.
/// `simulate` and `balance` share it, so a balance run's games are the
/// games `simulate` plays one at a time.
#[derive(clap::Args)]
pub struct GameArgs {
    /// Map key (a file name under assets/maps without extension).
    #[arg(long)]
    map: String,
    /// Scripted start (pre-built towers); its bots only ready up.
    #[arg(long)]
    scenario: Option<String>,
    /// Seats, all played by scripted bots (default: the scenario's, or 1).
    #[arg(long)]
    players: Option<u8>,
    /// Bot behaviour: `builder` builds and upgrades; `passive` only readies
    /// (the default with a scenario).
    #[arg(long, value_parser = ["builder", "passive"])]
    bots: Option<String>,
    /// Stop after this many ticks if the game is still undecided.
    #[arg(long, default_value_t = 30 * 60 * 30)]
    pub ticks: u64,
    /// Ticks per second of simulated time.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ)]
    tick_hz: u32,
}

impl GameArgs {
    /// The session config for `seed`, with the seat count checked against
    /// the scenario in `content`.
    ///
    /// # Errors
    /// When the scenario is not in `content`.
    pub fn config(&self, content: &Content, seed: u64) -> anyhow::Result<SessionConfig> {
        let scenario_players = match &self.scenario {
            Some(key) => Some(
                content
                    .scenario(key)
                    .with_context(|| format!("no scenario `{key}` in the content"))?
                    .players,
            ),
            None => None,
        };
        Ok(SessionConfig {
            map: self.map.clone(),
            scenario: self.scenario.clone(),
            players: self.players.or(scenario_players).unwrap_or(1),
            seed,
            tick_hz: self.tick_hz,
        })
    }

    /// How the bots play.
    pub fn style(&self) -> BotStyle {
        match self.bots.as_deref() {
            Some("passive") => BotStyle::Passive,
            Some(_) => BotStyle::Builder,
            None => BotStyle::default_for(self.scenario.is_some()),
        }
    }
}

/// Arguments of `rampart simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    #[command(flatten)]
    game: GameArgs,
    /// Seed of the session's randomness and of the bots.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Write the command log here, for `rampart replay`.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Content directory.
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
}

/// Arguments of `rampart replay`.
#[derive(clap::Args)]
pub struct ReplayArgs {
    /// A command log written by `rampart simulate --record`.
    file: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Content directory (must be the content the log was recorded with).
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
}

/// What both commands print.
#[derive(Serialize)]
struct Report {
    map: String,
    seed: u64,
    players: u8,
    outcome: &'static str,
    ticks: u64,
    wave: u32,
    lives: u32,
    kills: u32,
    leaks: u32,
    enemies_alive: u32,
    towers: u32,
    commands: usize,
    state_hash: String,
    us_per_tick: f64,
}

impl Report {
    fn new(
        config: &SessionConfig,
        summary: &Summary,
        state_hash: u64,
        commands: usize,
        stepping: Duration,
    ) -> Self {
        Self {
            map: config.map.clone(),
            seed: config.seed,
            players: config.players,
            outcome: summary
                .outcome
                .map_or("undecided", |outcome| outcome.name()),
            ticks: summary.tick,
            wave: summary.wave,
            lives: summary.lives,
            kills: summary.kills,
            leaks: summary.leaks,
            enemies_alive: summary.enemies,
            towers: summary.towers,
            commands,
            state_hash: format!("{state_hash:016x}"),
            us_per_tick: stepping.as_secs_f64() * 1e6 / summary.tick.max(1) as f64,
        }
    }

    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!(
                "{} on {} (seed {}, {} players) after {} ticks: wave {}, lives {}, kills {}, leaks {}, \
                 {} enemies alive, {} towers, {} commands; state hash {}; {:.1} us per tick",
                self.outcome,
                self.map,
                self.seed,
                self.players,
                self.ticks,
                self.wave,
                self.lives,
                self.kills,
                self.leaks,
                self.enemies_alive,
                self.towers,
                self.commands,
                self.state_hash,
                self.us_per_tick
            );
        }
        Ok(())
    }
}

/// Runs `rampart simulate`.
pub fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let content = load_content(&args.assets)?;
    let config = args.game.config(&content, args.seed)?;
    let session = Session::new(content.clone(), &config).context("building the session")?;
    let mut game = BotGame::new(session, args.game.style());
    let mut log = CommandLog::new(&content, config.clone());
    let mut stepping = Duration::ZERO;
    while !game.finished(args.game.ticks) {
        game.think(|entry| log.entries.push(entry));
        let started = Instant::now();
        game.step();
        stepping += started.elapsed();
    }
    let session = game.session_mut();
    let state_hash = session.state_hash();
    log.end = Some(LogEnd {
        ticks: session.tick(),
        state_hash,
    });
    if let Some(path) = &args.record {
        std::fs::write(path, log.to_text(&content))
            .with_context(|| format!("writing the command log to {}", path.display()))?;
    }
    Report::new(
        &config,
        &session.summary(),
        state_hash,
        log.entries.len(),
        stepping,
    )
    .print(args.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `rampart replay`: exit 0 when the replay reproduces the recorded
/// hash (or the log has none), 1 on a mismatch.
pub fn replay(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let content = load_content(&args.assets)?;
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let log = CommandLog::parse(&text, &content)
        .with_context(|| format!("reading the command log {}", args.file.display()))?;
    let started = Instant::now();
    let session = log
        .replay(content)
        .with_context(|| format!("replaying {}", args.file.display()))?;
    let stepping = started.elapsed();
    let state_hash = session.state_hash();
    Report::new(
        &log.config,
        &session.summary(),
        state_hash,
        log.entries.len(),
        stepping,
    )
    .print(args.json)?;
    match log.end {
        Some(end) if end.state_hash != state_hash => {
            eprintln!(
                "desync: the log recorded state hash {:016x}, the replay reached {state_hash:016x}",
                end.state_hash
            );
            Ok(ExitCode::FAILURE)
        }
        _ => Ok(ExitCode::SUCCESS),
    }
}
