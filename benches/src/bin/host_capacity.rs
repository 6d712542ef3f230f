//! `host_capacity`: how many reference sessions one `rampart serve` hosts at
//! 30 Hz, measured on the real server process through its own `/metrics`.
//!
//! For each level it starts a fresh release server, creates that many
//! reference sessions (8 seats, 50 towers, endless waves) through the HTTP
//! API, lets them reach their steady state (about 100 enemies each, tick
//! 7,200 = 4 minutes), then reads the tick duration histogram over the
//! measurement window, the server's CPU time, context switches and
//! resident memory (empty, and in the steady state) from `/proc`.
//! Creations the server refuses (503 while ticks run late) are retried
//! after a backoff and counted, so a level measures the sessions it names
//! or says why not. With `--storm N` it then creates N more at once
//! (from 16 clients, as a lobby service after a tournament's draw would)
//! and reads the ticks of the storm: whether creating sessions makes the
//! running ones late.
//!
//! ```text
//! cargo run --release -p rampart-benches --bin host_capacity -- --sessions 250,500,1000
//! # an older build against this one, in the same sitting
//! RAMPART_BIN=/path/to/old/rampart target/release/host_capacity --sessions 400
//! # 500 more created at once on top of 500 running ones
//! target/release/host_capacity --sessions 500 --storm 500
//! ```

use std::convert::Infallible;
use std::time::{Duration, Instant};

use clap::Parser;
use rampart_benches::scrape::{
    context_switches, cpu_seconds, quantile, resident_kib, tick_buckets,
};
use rampart_tests::server::{Server, metric, retry_unavailable};
use serde_json::json;

/// Host capacity at 30 Hz with the reference session.
#[derive(Parser)]
struct Args {
    /// Session counts to measure, each on a fresh server.
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    sessions: Vec<usize>,
    /// Seconds to let the sessions reach their steady state.
    #[arg(long, default_value_t = 240)]
    warmup_seconds: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 30)]
    measure_seconds: u64,
    /// Sessions created at once after the measured window, on top of the
    /// running ones; their creation's ticks are reported apart.
    #[arg(long, default_value_t = 0)]
    storm: usize,
    /// Print one JSON object per level instead of a table row.
    #[arg(long)]
    json: bool,
}

const TOKEN: &str = "capacity-admin";

/// The server's default tick rate, which the sessions run at.
const TICK_HZ: f64 = 30.0;

/// What creating the sessions took.
struct Created {
    sessions: usize,
    /// 503 answers (the server was busy), each retried after a backoff.
    refusals: usize,
    seconds: f64,
}

/// Creates `count` sessions from 16 concurrent clients, as a lobby service
/// would: a 503 is retried after its `Retry-After`, for up to a minute per
/// session; any other failure is reported and not retried.
fn create_sessions(server: &Server, count: usize) -> Created {
    const WORKERS: usize = 16;
    const PATIENCE: Duration = Duration::from_secs(60);
    let started = Instant::now();
    let (sessions, refusals) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..WORKERS)
            .map(|worker| {
                scope.spawn(move || {
                    let (mut created, mut refused) = (0, 0);
                    for _ in (worker..count).step_by(WORKERS) {
                        let body = json!({"map": "reference", "scenario": "reference", "max_players": 8, "bots": 8});
                        let Ok((reply, refusals)) = retry_unavailable(PATIENCE, || {
                            Ok::<_, Infallible>(server.post("/v1/sessions", &body, Some(TOKEN)))
                        });
                        refused += refusals;
                        if reply.status == 201 {
                            created += 1;
                        } else {
                            eprintln!("create failed: {} {}", reply.status, reply.body);
                        }
                    }
                    (created, refused)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|worker| worker.join().unwrap_or((0, 0)))
            .fold((0, 0), |(a, b), (c, d)| (a + c, b + d))
    });
    Created {
        sessions,
        refusals,
        seconds: started.elapsed().as_secs_f64(),
    }
}

fn measure(args: &Args, sessions: usize) -> serde_json::Value {
    let data = std::env::temp_dir().join(format!("rampart-capacity-{}", std::process::id()));
    let data = data.to_string_lossy().into_owned();
    let server = Server::start(&[
        "--admin-token",
        TOKEN,
        "--max-sessions",
        &(sessions + args.storm + 10).to_string(),
        "--rate-limit-per-second",
        "100000",
        "--rate-limit-burst",
        "100000",
        "--data-dir",
        &data,
    ]);
    let pid = server.pid().to_string();
    let empty_kib = resident_kib(&pid).unwrap_or(0);
    let creation = create_sessions(&server, sessions);
    let created = creation.sessions;
    std::thread::sleep(Duration::from_secs(args.warmup_seconds));
    let steady_kib = resident_kib(&pid).unwrap_or(0);
    let before = server.get("/metrics").body;
    let cpu_before = cpu_seconds(&pid);
    let switches_before = context_switches(&pid);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(args.measure_seconds));
    let after = server.get("/metrics").body;
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = (cpu_seconds(&pid) - cpu_before) / elapsed;
    let switches = (context_switches(&pid) - switches_before) as f64 / elapsed;
    let listed = server.get("/v1/sessions").json();
    let live: Vec<&serde_json::Value> = listed
        .as_array()
        .map(|all| all.iter().filter(|s| s["state"] == "running").collect())
        .unwrap_or_default();
    let enemies = live
        .iter()
        .filter_map(|s| s["enemies"].as_f64())
        .sum::<f64>()
        / live.len().max(1) as f64;
    let (early, late) = (tick_buckets(&before), tick_buckets(&after));
    let running = counter(&after, "rampart_sessions{state=\"running\"}");
    let storm = (args.storm > 0).then(|| storm(&server, args.storm));
    let _ = std::fs::remove_dir_all(&data);
    let mut result = json!({
        "sessions": sessions,
        "created": created,
        "create_refusals": creation.refusals,
        "create_seconds": (creation.seconds * 10.0).round() / 10.0,
        "running": running,
        "crashed": counter(&after, "rampart_sessions_crashed_total"),
        "mean_enemies_per_session": (enemies * 10.0).round() / 10.0,
        "ticks": counter(&after, "rampart_tick_duration_seconds_count") - counter(&before, "rampart_tick_duration_seconds_count"),
        "tick_p50_ms": quantile(&early, &late, 0.5) * 1e3,
        "tick_p99_ms": quantile(&early, &late, 0.99) * 1e3,
        "overruns": counter(&after, "rampart_tick_overruns_total") - counter(&before, "rampart_tick_overruns_total"),
        "server_cpu_cores": (cpu * 1000.0).round() / 1000.0,
        "cpu_us_per_session_tick": (cpu * 1e7 / (running.max(1.0) * TICK_HZ)).round() / 10.0,
        "context_switches_per_second": switches.round(),
        "rss_empty_mib": (empty_kib as f64 / 1024.0).round(),
        "rss_mib": (steady_kib as f64 / 1024.0).round(),
        "kib_per_session": (steady_kib.saturating_sub(empty_kib) as f64 / created.max(1) as f64).round(),
    });
    if let Some(storm) = storm {
        result["storm"] = storm;
    }
    result
}

/// A counter or gauge in a `/metrics` text, 0 when absent.
fn counter(text: &str, name: &str) -> f64 {
    metric(text, name).unwrap_or(0.0)
}

/// Creates `count` sessions at once on top of the running ones and reads
/// the ticks from just before the first creation to a second after the
/// last (the new sessions' first ticks included).
fn storm(server: &Server, count: usize) -> serde_json::Value {
    let before = server.get("/metrics").body;
    let creation = create_sessions(server, count);
    std::thread::sleep(Duration::from_secs(1));
    let after = server.get("/metrics").body;
    let (early, late) = (tick_buckets(&before), tick_buckets(&after));
    let delta = |name: &str| counter(&after, name) - counter(&before, name);
    json!({
        "sessions": count,
        "created": creation.sessions,
        "refusals": creation.refusals,
        "seconds": (creation.seconds * 10.0).round() / 10.0,
        "ticks": delta("rampart_tick_duration_seconds_count"),
        "tick_p50_ms": quantile(&early, &late, 0.5) * 1e3,
        "tick_p99_ms": quantile(&early, &late, 0.99) * 1e3,
        "tick_max_ms_at_most": quantile(&early, &late, 1.0) * 1e3,
        "overruns": delta("rampart_tick_overruns_total"),
    })
}

fn main() {
    let args = Args::parse();
    if !args.json {
        println!(
            "sessions  created in s  refusals  running  enemies/session  ticks  tick p50 ms  tick p99 ms  overruns  server CPU cores  us/session-tick  switches/s  KiB/session"
        );
    }
    for &sessions in &args.sessions {
        let result = measure(&args, sessions);
        if args.json {
            println!("{result}");
        } else {
            println!(
                "{:>8}  {:>12}  {:>8}  {:>7}  {:>15}  {:>5}  {:>11.2}  {:>11.2}  {:>8}  {:>16}  {:>15}  {:>10}  {:>11}",
                result["sessions"],
                result["create_seconds"],
                result["create_refusals"],
                result["running"],
                result["mean_enemies_per_session"],
                result["ticks"],
                result["tick_p50_ms"].as_f64().unwrap_or(f64::NAN),
                result["tick_p99_ms"].as_f64().unwrap_or(f64::NAN),
                result["overruns"],
                result["server_cpu_cores"],
                result["cpu_us_per_session_tick"],
                result["context_switches_per_second"],
                result["kib_per_session"],
            );
            if let Some(storm) = result.get("storm") {
                println!("  then a storm of creations: {storm}");
            }
        }
    }
}
