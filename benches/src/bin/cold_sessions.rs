//! `cold_sessions`: what a reference session-tick costs when many sessions
//! take turns on one core, so each finds its world evicted from the caches
//! by the others (as in a server hosting hundreds), without the host,
//! threads or stores around it: a quieter measure than `host_capacity`,
//! and a small target for callgrind's cache simulation.
//!
//! It steps one reference session to its steady state, saves it, restores
//! that save into `--sessions` worlds of their own, steps session `i` on by
//! `i % spread` ticks so that no two play the same moment, then steps them
//! in turn, a round every `--period-ms`; it prints the time per
//! session-tick (the rounds' own time, not the waits between them) and the
//! memory each world holds (RSS growth over the restores, divided by the
//! count).
//!
//! Both make it a host's step, not a best case: sessions all at one moment
//! replay one another's branches (30% less time), and rounds back to back
//! find more of the last round's worlds in the caches than rounds a tick
//! apart, after the machine's other work has had 33 ms to evict them
//! (paced rounds took 1.7 times as long on this machine).
//!
//! ```text
//! cargo run --release -p rampart-benches --bin cold_sessions -- --sessions 1,100,1000
//! valgrind --tool=callgrind --cache-sim=yes --LL=524288,8,64 \
//!   --toggle-collect='cold_sessions::step_in_turn' \
//!   target/release/cold_sessions --sessions 400 --rounds 5 --period-ms 0
//! ```

use std::time::{Duration, Instant};

use clap::Parser;
use rampart_benches::scrape::resident_kib;
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
    /// Session `i` is stepped `i % spread` ticks past the others before
    /// the rounds, besides the untimed step every world takes (1: all at
    /// the same tick).
    #[arg(long, default_value_t = 300)]
    spread: u64,
    /// Milliseconds from the start of one round to the next, a tick at
    /// 30 Hz by default (0: back to back).
    #[arg(long, default_value_t = 33)]
    period_ms: u64,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    let content = assets();
    let steady = steady_reference_session(&content, 7);
    let mut save = Vec::new();
    steady.save(&mut save);
    drop(steady);
    let resident = || resident_kib("self").ok_or("no VmRSS in /proc/self/status");
    for &count in &args.sessions {
        let before = resident()?;
        let mut sessions = (0..count)
            .map(|_| Session::restore(content.clone(), &save))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("the steady save does not restore: {error}"))?;
        let per_session = resident()?.saturating_sub(before) / count.max(1) as u64;
        // Untimed: restored worlds size their buffers on their first step.
        for (index, session) in sessions.iter_mut().enumerate() {
            for _ in 0..=index as u64 % args.spread.max(1) {
                session.step();
            }
        }
        let period = Duration::from_millis(args.period_ms);
        let mut stepping = Duration::ZERO;
        for _ in 0..args.rounds {
            let started = Instant::now();
            step_in_turn(&mut sessions);
            let took = started.elapsed();
            stepping += took;
            std::thread::sleep(period.saturating_sub(took));
        }
        let per_tick = stepping.as_secs_f64() * 1e6 / (count as f64 * args.rounds as f64);
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
