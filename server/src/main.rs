//! `rampart`: the game server and the designers' command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod config;
mod host;
mod http;
mod path;
mod simulate;
mod telemetry;

/// rampart: an authoritative tower-defense game server and its tools.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a content directory and list every problem with its file,
    /// line and column; exits 1 if there is any.
    Check(check::CheckArgs),
    /// Answer `sx sy gx gy` shortest-path queries from standard input on a map file.
    Path(path::PathArgs),
    /// Play a whole session headless with scripted players and report the result.
    Simulate(simulate::SimulateArgs),
    /// Re-run a recorded command log and check it reaches the recorded state hash.
    Replay(simulate::ReplayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: anyhow::Result<ExitCode> = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Path(args) => path::run(args),
        Command::Simulate(args) => simulate::simulate(args),
        Command::Replay(args) => simulate::replay(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
