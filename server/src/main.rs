//! `rampart`: the game server and the designers' command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rampart_server::{balance, check, config, path, render, serve, simulate, stores};

/// mimalloc rather than glibc's malloc: buffers that cross threads (a step
/// thread's events freed by the net thread) and renet's small per-packet
/// allocations cost glibc arena locks, chunk coalescing and fastbin
/// consolidation, about 5% of a full core hosting 850 sessions with
/// clients. Built without its transparent huge pages (`no_thp`, in the
/// workspace's `Cargo.toml`), it holds what glibc did, about 60 KiB per
/// reference session (`docs/BENCHMARKS.md`, "Clients that read headers
/// only").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// rampart: an authoritative tower-defense game server and its tools.
///
/// With no subcommand it serves, taking the same flags as `rampart serve`.
#[derive(Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: config::ServeArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the game server (the default): session host, HTTP API, metrics.
    Serve(Box<config::ServeArgs>),
    /// Validate a content directory and list every problem with its file,
    /// line and column; exits 1 if there is any.
    Check(check::CheckArgs),
    /// Answer `sx sy gx gy` shortest-path queries from standard input on a map file.
    Path(path::PathArgs),
    /// Play a whole session headless with scripted players and report the result.
    Simulate(simulate::SimulateArgs),
    /// Re-run a recorded command log and check it reaches the recorded state hash.
    Replay(simulate::ReplayArgs),
    /// Draw a map (tiles, flow field, fliers, scenario towers and ranges) or a
    /// recorded game at a tick or animated, as SVG, PNG or animated PNG.
    Render(Box<render::RenderArgs>),
    /// Play many games with varied content in parallel and report win rates,
    /// lives, gold, kills, leaks and lengths per variant (JSON, CSV, charts).
    Balance(Box<balance::BalanceArgs>),
    /// Apply the database schema (also done at server start) and exit; takes
    /// the server's configuration (--database-url, DATABASE_URL, ...).
    Migrate(Box<config::ServeArgs>),
    /// Print the command log of a session's latest checkpoint, ending with
    /// its tick and state hash, for `rampart replay`.
    ExportLog(Box<stores::ExportLogArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: anyhow::Result<ExitCode> = match cli.command {
        None => serve::run(cli.serve),
        Some(Command::Serve(args)) => serve::run(*args),
        Some(Command::Check(args)) => check::run(args),
        Some(Command::Path(args)) => path::run(args),
        Some(Command::Simulate(args)) => simulate::simulate(args),
        Some(Command::Replay(args)) => simulate::replay(args),
        Some(Command::Render(args)) => render::run(*args),
        Some(Command::Balance(args)) => balance::run(*args),
        Some(Command::Migrate(args)) => stores::migrate(&args),
        Some(Command::ExportLog(args)) => stores::export_log(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
