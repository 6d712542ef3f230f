//! `rampart`: the game server and the designers' command-line tools.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod path;

/// rampart: an authoritative tower-defense game server and its tools.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer `sx sy gx gy` shortest-path queries from standard input on a map file.
    Path(path::PathArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome: anyhow::Result<ExitCode> = match cli.command {
        Command::Path(args) => path::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
