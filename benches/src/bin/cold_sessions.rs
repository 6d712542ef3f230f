//! `cold_sessions`: what a reference session-tick costs when many sessions
//! take turns on one core, so each finds its world evicted from the caches
//! by the others (as in a server hosting hundreds), without the host,
//! threads or stores around it: a quieter measure than `host_capacity`,
//! and a small target for callgrind's cache simulation.
//!
//! It steps one reference session to its steady state, saves it, restores
//! that save into `--sessions` worlds of their own, then steps them in
//! turn; it prints the time per session-tick and the memory each world
//! holds (RSS growth over the restores, divided by the count).
//!
//! ```text
//! cargo run --release -p rampart-benches --bin cold_sessions -- --sessions 1,100,1000
//! valgrind --tool=callgrind --cache-sim=yes --LL=524288,8,64 \
//!   --toggle-collect='cold_sessions::step_in_turn' \
//!   target/release/cold_sessions --sessions 400 --rounds 5
//! ```

use std::time::Instant;

use clap::Parser;
use rampart_benches::{assets, steady_reference_session};
use rampart_sim::Session;

/// Reference sessions stepped in turn on one thread.
#[derive(Parser)]
struct Args {
    /// Session counts, each measured on its own set of worlds.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    sessions: Vec<usize>,
    /// Rounds timed (every session steps once per round).
    #[arg(long, default_value_t = 30)]
    rounds: u64,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let content = assets();
    let steady = steady_reference_session(&content, 7);
    let mut save = Vec::new();
    steady.save(&mut save);
    drop(steady);
    for &count in &args.sessions {
        let before = resident_kib()?;
        let mut sessions = (0..count)
            .map(|_| Session::restore(content.clone(), &save))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("the steady save does not restore: {error}"))?;
        let per_session = resident_kib()?.saturating_sub(before) / count.max(1) as u64;
        // One untimed round: restored worlds size their buffers on first use.
        sessions.iter_mut().for_each(Session::step);
        let started = Instant::now();
        for _ in 0..args.rounds {
            step_in_turn(&mut sessions);
        }
        let per_tick = started.elapsed().as_secs_f64() * 1e6 / (count as f64 * args.rounds as f64);
        println!(
            "{count:>5} sessions: {per_tick:6.2} µs per session-tick, {per_session} KiB per session"
        );
    }
    Ok(())
}

/// One timed round; its own function so that callgrind can count it alone
/// (`--toggle-collect`), without the warm-up steps before it.
#[inline(never)]
fn step_in_turn(sessions: &mut [Session]) {
    sessions.iter_mut().for_each(Session::step);
}

/// This process's resident memory (`VmRSS`), in KiB.
fn resident_kib() -> Result<u64, String> {
    let status = std::fs::read_to_string("/proc/self/status").map_err(|error| error.to_string())?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| "no VmRSS in /proc/self/status".to_owned())
}
