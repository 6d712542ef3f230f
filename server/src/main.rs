//! `rampart`: the game server and the designers' command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: anyhow::Result<ExitCode> = match cli.command {
        Command::Check(args) => check::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
