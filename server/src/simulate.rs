//! `rampart simulate` and `rampart replay`: whole sessions headless, for
//! designers checking balance and for reproducing a recorded game.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::load_content;
use rampart_sim::bots::{BotStyle, ScriptedPlayer};
use rampart_sim::log::{CommandLog, LogEnd, LogEntry};
use rampart_sim::{DEFAULT_TICK_HZ, PlayerId, Session, SessionConfig, Snapshot, Summary};
use serde::Serialize;

/// Arguments of `rampart simulate`.
#[derive(clap::Args)]
pub struct SimulateArgs {
    /// Map key (a file name under assets/maps without extension).
    #[arg(long)]
    map: String,
    /// Seed of the session's randomness and of the bots.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seats, all played by scripted bots (default: the scenario's, or 1).
    #[arg(long)]
    players: Option<u8>,
    /// Stop after this many ticks if the game is still undecided.
    #[arg(long, default_value_t = 30 * 60 * 30)]
    ticks: u64,
    /// Scripted start (pre-built towers); its bots only ready up.
    #[arg(long)]
    scenario: Option<String>,
    /// Bot behaviour: `builder` builds and upgrades; `passive` only readies
    /// (the default with a scenario).
    #[arg(long, value_parser = ["builder", "passive"])]
    bots: Option<String>,
    /// Ticks per second of simulated time.
    #[arg(long, default_value_t = DEFAULT_TICK_HZ)]
    tick_hz: u32,
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
    let scenario_players = match &args.scenario {
        Some(key) => Some(
            content
                .scenario(key)
                .with_context(|| format!("no scenario `{key}` in {}", args.assets.display()))?
                .players,
        ),
        None => None,
    };
    let config = SessionConfig {
        map: args.map,
        scenario: args.scenario,
        players: args.players.or(scenario_players).unwrap_or(1),
        seed: args.seed,
        tick_hz: args.tick_hz,
    };
    let mut session = Session::new(content.clone(), &config).context("building the session")?;
    let style = match args.bots.as_deref() {
        Some("passive") => BotStyle::Passive,
        Some(_) => BotStyle::Builder,
        None if config.scenario.is_some() => BotStyle::Passive,
        None => BotStyle::Builder,
    };
    let mut bots: Vec<ScriptedPlayer> = (0..config.players)
        .map(|seat| ScriptedPlayer::new(PlayerId(seat), style, config.seed))
        .collect();
    let mut log = CommandLog::new(&content, config.clone());
    let mut snapshot = Snapshot::default();
    let mut stepping = Duration::ZERO;
    while session.tick() < args.ticks && session.outcome().is_none() {
        session.snapshot(&mut snapshot);
        for bot in &mut bots {
            if let Some(command) = bot.think(&session, &snapshot) {
                log.entries.push(LogEntry {
                    tick: session.tick(),
                    player: bot.player(),
                    command,
                });
                session.submit(bot.player(), command);
            }
        }
        let started = Instant::now();
        session.step();
        stepping += started.elapsed();
    }
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
    let mut session = log
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
