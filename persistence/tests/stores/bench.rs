//! What database checkpoints cost, the figure docs/BENCHMARKS.md records:
//! the `Persister`'s writer CPU and, on PostgreSQL, the server's CPU per
//! round of durable snapshots from every session, database only (no Redis).
//! Prints a table (`--nocapture`); asserts only that every checkpoint was
//! written, never a time (the goals live in the docs).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::{TestDb, running_row, session_id};
use rampart_persistence::{CommandEntry, Database, PersistConfig, PersistJob, Persister};

/// How long a round may take: a debug build on a loaded machine
/// registers 1,000 sessions slowly.
const ROUND_LIMIT: Duration = Duration::from_secs(60);

/// The reference session's checkpoint envelope is about 4-5 KiB.
const PAYLOAD: usize = 4608;

/// Commands a busy game accepts a second: eight seats, each sending one
/// every two seconds. A checkpoint logs those since the previous one: ten
/// seconds' worth with Redis, one second's on SQLite.
const BUSY_COMMANDS_PER_SECOND: usize = 4;

/// One command line as the host encodes it (seat, then the command's text).
const COMMAND: &[u8] = b"3 place cannon 12 7";

/// `/proc/<pid>/stat` counts CPU in clock ticks; `getconf CLK_TCK` is 100
/// on Linux everywhere this runs (no `libc` here to ask `sysconf`).
const CLOCK_TICK: Duration = Duration::from_millis(10);

/// CPU time this thread has run, from the scheduler (nanoseconds).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// CPU time every live thread of this process has run: the writer plus,
/// on SQLite, the blocking threads diesel-async runs each query on. A
/// thread that exits mid-round takes its time with it (tokio keeps idle
/// blocking threads for 10 s, longer than a round).
fn process_cpu() -> Option<Duration> {
    let mut nanos = 0u64;
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanos += text.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(nanos))
}

/// utime + stime of every process named `postgres` (the postmaster, its
/// background workers and every connection's backend), or `None` if there
/// is none to read (the server runs elsewhere).
fn postgres_cpu() -> Option<Duration> {
    let mut ticks = 0u64;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let path = entry.path();
        if std::fs::read_to_string(path.join("comm")).is_ok_and(|c| c.trim_end() == "postgres") {
            let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
                continue;
            };
            // The name in parentheses may hold spaces: fields count from
            // the last `)`, where field 3 (state) starts.
            let Some((_, rest)) = stat.rsplit_once(')') else {
                continue;
            };
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            if let (Some(utime), Some(stime)) = (field(14), field(15)) {
                ticks += utime + stime;
                found = true;
            }
        }
    }
    found.then(|| CLOCK_TICK * u32::try_from(ticks).unwrap_or(u32::MAX))
}

/// `PAYLOAD` pseudo-random bytes (splitmix64): incompressible, so
/// PostgreSQL stores each one out of line (TOAST) after a failed attempt to
/// compress it, as it would a compressed save.
fn payload(seed: u64) -> Arc<[u8]> {
    let mut state = seed;
    let mut bytes = Vec::with_capacity(PAYLOAD + 8);
    while bytes.len() < PAYLOAD {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    bytes.truncate(PAYLOAD);
    bytes.into()
}

/// One measured round: `n` checkpoints.
struct Round {
    wall: Duration,
    writer: Option<Duration>,
    process: Option<Duration>,
    server: Option<Duration>,
}

fn delta(before: Option<Duration>, after: Option<Duration>) -> Option<Duration> {
    before
        .zip(after)
        .map(|(before, after)| after.saturating_sub(before))
}

/// Starts `n` sessions through a database-only `Persister`, then runs
/// `rounds` rounds in which every session hands a durable snapshot (new
/// tick, new bytes) with `log` new commands, and the writer checkpoints them
/// all (appending the commands to the session's log).
async fn measure(db: &Database, n: usize, rounds: u64, server: bool, log: usize) -> Vec<Round> {
    let (persister, handle, _events) = Persister::start(
        PersistConfig {
            instance: "bench".to_owned(),
            ..PersistConfig::default()
        },
        Some(db.clone()),
        None,
        &tokio::runtime::Handle::current(),
    );
    let sessions: Vec<u64> = (0..n).map(|_| session_id()).collect();
    let job = |session: u64, tick: u64| {
        let bytes = payload(session ^ tick.rotate_left(40));
        // The commands accepted since the previous save, in tick order.
        let commands = (0..log as u64)
            .map(|i| CommandEntry {
                tick: tick - 30 + i * 30 / log as u64,
                bytes: COMMAND.to_vec(),
            })
            .collect();
        PersistJob::Save {
            session,
            epoch: 1,
            tick,
            state_hash: tick,
            bytes,
            commands,
            recovered: Vec::new(),
            durable: true,
        }
    };
    // Registration (lease-less start: row, claim) and the first checkpoint,
    // which also warms the pool's connections.
    for &session in &sessions {
        handle
            .try_send(PersistJob::Start(Box::new(running_row(session))))
            .unwrap();
        handle.try_send(job(session, 30)).unwrap();
    }
    eventually!(
        "the sessions' first checkpoints",
        handle.stats().checkpoints >= n as u64,
        ROUND_LIMIT
    );
    let mut measured = Vec::new();
    for round in 1..=rounds {
        let tick = (round + 1) * 30;
        let jobs: Vec<PersistJob> = sessions.iter().map(|&s| job(s, tick)).collect();
        let written = handle.stats().checkpoints;
        // The measuring task must stay on the worker for the thread's
        // clock to be the writer's.
        let thread = std::thread::current().id();
        let (writer, process) = (thread_cpu(), process_cpu());
        let pg = if server { postgres_cpu() } else { None };
        let started = Instant::now();
        for job in jobs {
            handle.try_send(job).unwrap();
        }
        eventually!(
            "the round's checkpoints",
            handle.stats().checkpoints >= written + n as u64,
            ROUND_LIMIT
        );
        measured.push(Round {
            wall: started.elapsed(),
            writer: delta(writer, thread_cpu()).filter(|_| std::thread::current().id() == thread),
            process: delta(process, process_cpu()),
            server: if server {
                delta(pg, postgres_cpu())
            } else {
                None
            },
        });
    }
    let stats = handle.stats();
    assert_eq!(stats.checkpoints, n as u64 * (rounds + 1), "{stats:?}");
    assert_eq!(
        (
            stats.queue_full,
            stats.dropped_durable,
            stats.lost_ownership
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    let last = (rounds + 1) * 30;
    for &session in &sessions {
        let checkpoint = db.load_checkpoint(session).await.unwrap().unwrap();
        assert_eq!((checkpoint.epoch, checkpoint.tick), (1, last));
        assert_eq!(checkpoint.snapshot.len(), PAYLOAD);
    }
    let logged = db.command_log(sessions[0]).await.unwrap();
    assert_eq!(logged.len(), log * (rounds as usize + 1), "{logged:?}");
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(10))
            .await
            .unwritten_sessions,
        0
    );
    measured
}

fn per_100(cpu: Option<Duration>, n: usize) -> String {
    cpu.map_or_else(
        || "-".to_owned(),
        |cpu| format!("{:.2}", cpu.as_secs_f64() * 1e3 * 100.0 / n as f64),
    )
}

fn median(mut values: Vec<Duration>) -> Option<Duration> {
    values.sort_unstable();
    let upper = *values.get(values.len() / 2)?;
    if values.len().is_multiple_of(2) {
        Some((values[values.len() / 2 - 1] + upper) / 2)
    } else {
        Some(upper)
    }
}

fn report(name: &str, n: usize, log: usize, per_second: f64, rounds: &[Round]) {
    eprintln!(
        "{name}: {n} sessions x {PAYLOAD} B durable snapshots and {log} log lines \
         per round (CPU in ms per 100 checkpoints)"
    );
    eprintln!("round | wall ms | writer thread | whole process | PostgreSQL server");
    for (i, r) in rounds.iter().enumerate() {
        eprintln!(
            "{:>5} | {:>7.1} | {:>13} | {:>13} | {:>17}",
            i + 1,
            r.wall.as_secs_f64() * 1e3,
            per_100(r.writer, n),
            per_100(r.process, n),
            per_100(r.server, n),
        );
    }
    // Share of one core at `per_second` checkpoints a second.
    let share = |pick: fn(&Round) -> Option<Duration>| {
        median(rounds.iter().filter_map(pick).collect()).map_or_else(
            || "-".to_owned(),
            |cpu| format!("{:.2}%", cpu.as_secs_f64() / n as f64 * per_second * 100.0),
        )
    };
    eprintln!(
        "median share of one core at {per_second} checkpoints/s: writer thread {}, whole process {}, PostgreSQL {}",
        share(|r| r.writer),
        share(|r| r.process),
        share(|r| r.server),
    );
}

/// The checkpoint cost the issue asks for: with Redis, 1,000 sessions
/// checkpoint every 10 s (100 checkpoints a second) to PostgreSQL; without
/// it (embedded, SQLite) every snapshot is a checkpoint, once a second per
/// session: 100 sessions are again 100 a second.
///
/// PostgreSQL's migrations need a multi-thread runtime (diesel-async runs
/// them in `block_in_place`), so this one has a single worker thread and
/// the measurement runs as a task on it: the writer, its database tasks and
/// PostgreSQL's connections all share that thread, so its CPU time is the
/// client's whole cost. SQLite's queries run on tokio's blocking threads,
/// counted in the whole process. The server's CPU counts every `postgres`
/// process on the machine, and the process's every test: run this test
/// alone when recording figures.
#[test]
fn checkpointing_costs() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let measured = runtime.block_on(async { tokio::spawn(measure_both()).await });
    if let Err(error) = measured {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn measure_both() {
    // The test suite runs the debug build: fewer rounds.
    let rounds = if cfg!(debug_assertions) { 2 } else { 5 };
    // A quiet stretch of the game (no commands: one statement), then a busy
    // one (a transaction: the upsert and the log lines).
    for per_second in [0, BUSY_COMMANDS_PER_SECOND] {
        if let Some(test) = TestDb::postgres().await {
            let log = per_second * 10;
            let measured = measure(&test.db, 1000, rounds, true, log).await;
            report("PostgreSQL", 1000, log, 100.0, &measured);
        }
        let test = TestDb::sqlite().await;
        let measured = measure(&test.db, 100, rounds, false, per_second).await;
        report("SQLite", 100, per_second, 100.0, &measured);
    }
}
