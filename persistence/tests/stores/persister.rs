//! The write-behind `Persister` against real stores: snapshots coalesce and
//! reach Redis, checkpoints and ends reach each database backend, a full
//! queue refuses at once, an outage (a proxy cut mid-test) holds state and
//! catches up, a retried write appends no command twice, fenced writes
//! become `LostOwnership`, a started session is leased and registered
//! before anything else of it is written, a written end invalidates the
//! cached records it changed, and what a flush of 1,000 sessions costs.

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use crate::support::{Link, Proxy, TestDb, TestRedis, running_row, session_id};
use rampart_persistence::{
    BreakerConfig, CachedRecord, CommandEntry, Database, FinishJob, HotOptions, MatchOutcome,
    PersistConfig, PersistEvent, PersistJob, Persister, RowState, SeatResult, SendError, Store,
};

fn config(instance: &str) -> PersistConfig {
    PersistConfig {
        instance: instance.to_owned(),
        flush_interval: Duration::from_millis(20),
        breaker: BreakerConfig {
            failures: 2,
            call_timeout: Duration::from_millis(500),
            backoff_min: Duration::from_millis(50),
            backoff_max: Duration::from_millis(400),
        },
        ..PersistConfig::default()
    }
}

fn cmd(tick: u64, text: &str) -> CommandEntry {
    CommandEntry {
        tick,
        bytes: text.as_bytes().to_vec(),
    }
}

fn snapshot(
    session: u64,
    epoch: u64,
    tick: u64,
    durable: bool,
    commands: &[(u64, &str)],
) -> PersistJob {
    PersistJob::Save {
        session,
        epoch,
        tick,
        state_hash: tick * 7,
        bytes: Arc::from(format!("state at {tick}").into_bytes()),
        commands: commands.iter().map(|(t, c)| cmd(*t, c)).collect(),
        recovered: Vec::new(),
        durable,
    }
}

fn texts(commands: &[CommandEntry]) -> Vec<(u64, String)> {
    commands
        .iter()
        .map(|c| (c.tick, String::from_utf8(c.bytes.clone()).unwrap()))
        .collect()
}

fn start(id: u64) -> PersistJob {
    PersistJob::Start(Box::new(running_row(id)))
}

/// Creates a running session and claims it for `instance`: its epoch.
async fn running(db: &Database, id: u64, instance: &str) -> u64 {
    db.create_session(&running_row(id)).await.unwrap();
    db.claim(id, instance).await.unwrap()
}

/// Whether the database has the session running, owned by `instance` at
/// epoch 1 (what a start makes).
async fn started_by(db: &Database, id: u64, instance: &str) -> bool {
    db.session(id).await.unwrap().is_some_and(|s| {
        s.row.state == RowState::Running
            && s.owner_instance.as_deref() == Some(instance)
            && s.owner_epoch == 1
    })
}

fn next_event(events: &Receiver<PersistEvent>) -> Option<PersistEvent> {
    events.try_recv().ok()
}

/// Coalescing, durable saves with the command log, and the end of a
/// session, on one database backend with Redis.
async fn snapshots_flow_to_both_stores(db: &Database, redis: &TestRedis) {
    let id = session_id();
    let epoch = running(db, id, "a").await;
    let (persister, handle, events) = Persister::start(
        PersistConfig {
            flush_interval: Duration::from_millis(300),
            ..config("a")
        },
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );

    // Four jobs between two rounds: one write, the newest snapshot, every
    // command (those before the snapshot's tick are inside it).
    handle
        .try_send(snapshot(id, epoch, 10, false, &[(9, "a")]))
        .unwrap();
    handle
        .try_send(snapshot(id, epoch, 20, false, &[(15, "b")]))
        .unwrap();
    handle
        .try_send(snapshot(id, epoch, 30, false, &[(30, "c")]))
        .unwrap();
    handle
        .try_send(PersistJob::Commands {
            session: id,
            epoch,
            commands: vec![cmd(31, "d")],
        })
        .unwrap();
    eventually!("the snapshot in Redis", handle.stats().hot_writes > 0);
    let state = redis.hot.load(id).await.unwrap().unwrap();
    let snap = state.snapshot.unwrap();
    assert_eq!(
        (snap.tick, snap.state_hash, snap.bytes),
        (30, 210, b"state at 30".to_vec())
    );
    assert_eq!(texts(&state.commands), [(30, "c".into()), (31, "d".into())]);
    assert_eq!(handle.stats().hot_writes, 1, "four jobs, one write");

    // With Redis only durable saves are checkpoints; with one, every
    // command so far joins the database's command log.
    assert_eq!(db.load_checkpoint(id).await.unwrap(), None);
    handle
        .try_send(snapshot(id, epoch, 40, true, &[(40, "e")]))
        .unwrap();
    eventually!(
        "the checkpoint",
        db.load_checkpoint(id)
            .await
            .unwrap()
            .is_some_and(|c| c.tick == 40)
    );
    let log: Vec<(u64, u32, String)> = db
        .command_log(id)
        .await
        .unwrap()
        .into_iter()
        .map(|line| {
            (
                line.tick,
                line.ordinal,
                String::from_utf8(line.command).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        log,
        [
            (9, 0, "a".into()),
            (15, 0, "b".into()),
            (30, 0, "c".into()),
            (31, 0, "d".into()),
            (40, 0, "e".into()),
        ]
    );

    // The end: final checkpoint, results, history; then Redis forgets it.
    handle
        .try_send(PersistJob::Finish(Box::new(FinishJob {
            session: id,
            map: "meadow".into(),
            epoch,
            tick: 50,
            state_hash: 350,
            commands: Vec::new(),
            bytes: Arc::from(&b"state at 50"[..]),
            end_reason: "victory".into(),
            seats: vec![SeatResult {
                seat: 0,
                player_id: None,
                score: 120,
                kills: 30,
                leaks: 0,
                gold_earned: 400,
                victory: true,
            }],
            outcome: MatchOutcome {
                outcome: "victory".into(),
                ticks: 50,
                players: 1,
            },
        })))
        .unwrap();
    eventually!(
        "the end event",
        next_event(&events) == Some(PersistEvent::Finished { session: id })
    );
    let record = db.session(id).await.unwrap().unwrap();
    assert_eq!(record.row.state, RowState::Ended);
    assert_eq!(db.load_checkpoint(id).await.unwrap().unwrap().tick, 50);
    eventually!(
        "Redis forgets it",
        redis.hot.load(id).await.unwrap().is_none()
    );

    let report = persister.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unwritten_sessions, 0);
}

with_redis_on_both_backends!(snapshots_flow_to_both_stores => snapshots_flow_on_sqlite, snapshots_flow_on_postgres);

/// An end, once written, deletes the cached records it changed (its map's
/// leaderboard and latest matches, its seated players' histories, every
/// form of each) and leaves the others.
async fn a_written_end_invalidates_its_cached_records(db: &Database, redis: &TestRedis) {
    let id = session_id();
    let epoch = running(db, id, "a").await;
    let changed = [
        CachedRecord::Leaderboard("meadow"),
        CachedRecord::RecentMatches("meadow"),
        CachedRecord::PlayerHistory("alice"),
    ];
    let unchanged = [
        CachedRecord::Leaderboard("canyon"),
        CachedRecord::PlayerHistory("bob"),
        CachedRecord::Maps,
    ];
    for record in changed.iter().chain(&unchanged) {
        for form in ["10", "20"] {
            redis
                .hot
                .cache_record(*record, form, b"[]", Duration::from_secs(60))
                .await
                .unwrap();
        }
    }
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    let seat = |seat: u8, player: Option<&str>| SeatResult {
        seat,
        player_id: player.map(str::to_owned),
        score: 100,
        kills: 10,
        leaks: 0,
        gold_earned: 50,
        victory: true,
    };
    handle
        .try_send(PersistJob::Finish(Box::new(FinishJob {
            session: id,
            map: "meadow".into(),
            epoch,
            tick: 50,
            state_hash: 350,
            commands: Vec::new(),
            bytes: Arc::from(&b"state at 50"[..]),
            end_reason: "victory".into(),
            seats: vec![seat(0, Some("alice")), seat(1, None)],
            outcome: MatchOutcome {
                outcome: "victory".into(),
                ticks: 50,
                players: 2,
            },
        })))
        .unwrap();
    eventually!(
        "the end event",
        next_event(&events) == Some(PersistEvent::Finished { session: id })
    );
    for record in changed {
        eventually!(
            format!("{record:?} invalidated"),
            redis
                .hot
                .cached_record(record, "10")
                .await
                .unwrap()
                .is_none()
                && redis
                    .hot
                    .cached_record(record, "20")
                    .await
                    .unwrap()
                    .is_none()
        );
    }
    assert_eq!(db.leaderboard("meadow", 10).await.unwrap().len(), 1);
    for record in unchanged {
        assert!(
            redis
                .hot
                .cached_record(record, "20")
                .await
                .unwrap()
                .is_some(),
            "{record:?} kept"
        );
    }
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

with_redis_on_both_backends!(a_written_end_invalidates_its_cached_records => a_written_end_invalidates_on_sqlite, a_written_end_invalidates_on_postgres);

/// The embedded default: no Redis, so each snapshot is a checkpoint at the
/// snapshot interval, and the drain writes the last one.
async fn without_redis_snapshots_are_checkpoints(db: &Database) {
    let id = session_id();
    let epoch = running(db, id, "a").await;
    let (persister, handle, _events) = Persister::start(
        config("a"),
        Some(db.clone()),
        None,
        &tokio::runtime::Handle::current(),
    );
    handle
        .try_send(snapshot(id, epoch, 30, false, &[(29, "a")]))
        .unwrap();
    eventually!(
        "the checkpoint",
        db.load_checkpoint(id)
            .await
            .unwrap()
            .is_some_and(|c| c.tick == 30)
    );
    handle
        .try_send(snapshot(id, epoch, 60, false, &[]))
        .unwrap();
    let report = persister.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.unwritten_sessions, 0);
    assert_eq!(db.load_checkpoint(id).await.unwrap().unwrap().tick, 60);
    assert!(matches!(
        handle.try_send(snapshot(id, epoch, 90, false, &[])),
        Err(SendError::Closed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_on_sqlite() {
    let test = TestDb::sqlite().await;
    without_redis_snapshots_are_checkpoints(&test.db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_on_postgres() {
    let Some(test) = TestDb::postgres().await else {
        return;
    };
    without_redis_snapshots_are_checkpoints(&test.db).await;
}

#[test]
fn a_full_queue_refuses_at_once_and_counts() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // Not driven yet: the writer cannot take jobs, so the queue fills.
    let (_persister, handle, _events) = Persister::start(
        PersistConfig {
            queue_capacity: 4,
            ..config("a")
        },
        None,
        None,
        runtime.handle(),
    );
    for tick in 0..4 {
        handle.try_send(snapshot(1, 1, tick, false, &[])).unwrap();
    }
    let started = Instant::now();
    let refused = handle.try_send(snapshot(1, 1, 4, false, &[(4, "kept by the host")]));
    let took = started.elapsed();
    assert!(
        matches!(
            refused,
            Err(SendError::Full(PersistJob::Save { tick: 4, .. }))
        ),
        "{refused:?}"
    );
    assert!(took < Duration::from_millis(50), "try_send took {took:?}");
    assert_eq!(handle.stats().queue_full, 1);
    assert_eq!(handle.queue_depth(), 4);
    // Once the writer runs, the queue empties and takes jobs again.
    runtime.block_on(async {
        eventually!("the queue drained", handle.queue_depth() == 0);
    });
    handle.try_send(snapshot(1, 1, 5, false, &[])).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_holds_state_and_catches_up() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let proxy = Proxy::start(redis.address()).await;
    let options = HotOptions {
        response_timeout: Duration::from_millis(200),
        ..HotOptions::default()
    };
    let hot = redis.store_via(&proxy.url("redis"), options).await;
    let (persister, handle, events) = Persister::start(
        config("a"),
        None,
        Some(hot),
        &tokio::runtime::Handle::current(),
    );
    let sessions: Vec<u64> = (0..20).map(|_| session_id()).collect();
    for &id in &sessions {
        handle
            .try_send(snapshot(id, 1, 10, false, &[(10, "c10")]))
            .unwrap();
    }
    eventually!("every session in Redis", handle.stats().hot_writes >= 20);

    // Redis goes away; the game goes on for 30 more rounds.
    proxy.set(Link::Cut);
    let cut_at = Instant::now();
    let mut slowest = Duration::ZERO;
    for tick in 11..=40u64 {
        for &id in &sessions {
            let job = snapshot(id, 1, tick, false, &[(tick, &format!("c{tick}"))]);
            let started = Instant::now();
            handle.try_send(job).unwrap();
            slowest = slowest.max(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually!("the breaker open", !handle.store_up(Store::Redis));
    eprintln!(
        "Redis cut: breaker open within {:?}; slowest try_send {slowest:?}",
        cut_at.elapsed()
    );
    assert!(
        slowest < Duration::from_millis(50),
        "try_send took {slowest:?}"
    );
    let stale = redis.hot.load(sessions[0]).await.unwrap().unwrap();
    assert_eq!(
        stale.snapshot.unwrap().tick,
        10,
        "nothing got through the cut"
    );

    // Redis comes back: every session's latest state and every command
    // since its last write arrive, once.
    proxy.set(Link::Up);
    let restored_at = Instant::now();
    eventually!("the breaker closed", handle.store_up(Store::Redis));
    for &id in &sessions {
        eventually!(
            "the catch-up",
            redis
                .hot
                .load(id)
                .await
                .unwrap()
                .and_then(|s| s.snapshot)
                .is_some_and(|s| s.tick == 40)
        );
        let state = redis.hot.load(id).await.unwrap().unwrap();
        assert_eq!(texts(&state.commands), [(40, "c40".into())]);
    }
    eprintln!(
        "Redis restored: caught up within {:?}",
        restored_at.elapsed()
    );
    let stats = handle.stats();
    assert_eq!(
        (stats.dropped_hot, stats.lost_ownership),
        (0, 0),
        "{stats:?}"
    );
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_write_appends_no_command_twice() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let proxy = Proxy::start(redis.address()).await;
    let options = HotOptions {
        response_timeout: Duration::from_millis(200),
        ..HotOptions::default()
    };
    let hot = redis.store_via(&proxy.url("redis"), options).await;
    let (persister, handle, _events) = Persister::start(
        config("a"),
        None,
        Some(hot),
        &tokio::runtime::Handle::current(),
    );
    let id = session_id();
    handle.try_send(snapshot(id, 1, 5, false, &[])).unwrap();
    eventually!("the first write", handle.stats().hot_writes == 1);

    // Redis runs the write but the reply is lost: the writer cannot know,
    // and must retry.
    proxy.set(Link::Mute);
    handle
        .try_send(PersistJob::Commands {
            session: id,
            epoch: 1,
            commands: vec![cmd(6, "x"), cmd(6, "y")],
        })
        .unwrap();
    eventually!("the breaker open", !handle.store_up(Store::Redis));
    let state = redis.hot.load(id).await.unwrap().unwrap();
    assert_eq!(texts(&state.commands), [(6, "x".into()), (6, "y".into())]);
    // The connection dies (a muted one would pair later replies with the
    // lost requests); more commands arrive meanwhile.
    proxy.set(Link::Cut);
    handle
        .try_send(PersistJob::Commands {
            session: id,
            epoch: 1,
            commands: vec![cmd(7, "z")],
        })
        .unwrap();
    // Long enough for every proxied connection to see the cut.
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set(Link::Up);
    eventually!("the retry", handle.stats().hot_writes == 2);
    let state = redis.hot.load(id).await.unwrap().unwrap();
    assert_eq!(
        texts(&state.commands),
        [(6, "x".into()), (6, "y".into()), (7, "z".into())]
    );
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_write_reports_lost_ownership_once() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let test = TestDb::sqlite().await;
    let db = &test.db;
    let id = session_id();
    let old = running(db, id, "a").await;
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    handle.try_send(snapshot(id, old, 10, true, &[])).unwrap();
    eventually!("the first checkpoint", handle.stats().checkpoints == 1);

    // Instance b takes the session over while a keeps writing.
    let new = db.claim(id, "b").await.unwrap();
    redis.hot.adopt(id, new).await.unwrap();
    handle
        .try_send(snapshot(id, old, 20, true, &[(20, "late")]))
        .unwrap();
    let mut lost: Option<PersistEvent>;
    eventually!("lost ownership", {
        lost = next_event(&events);
        lost.is_some()
    });
    assert!(
        matches!(
            lost,
            Some(PersistEvent::LostOwnership { session, epoch, .. }) if session == id && epoch == old
        ),
        "{lost:?}"
    );
    // Not retried, and later jobs at the old epoch are ignored.
    handle.try_send(snapshot(id, old, 30, true, &[])).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(next_event(&events), None);
    let stats = handle.stats();
    assert_eq!(
        (stats.lost_ownership, stats.checkpoints),
        (1, 1),
        "{stats:?}"
    );
    let state = redis.hot.load(id).await.unwrap().unwrap();
    assert_eq!(
        (state.epoch, state.snapshot.map(|s| s.tick)),
        (new, Some(10))
    );
    assert_eq!(db.load_checkpoint(id).await.unwrap().unwrap().tick, 10);
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// CPU time this thread has run, from the scheduler (nanosecond precision,
/// unlike the clock-tick counters in `/proc/self/stat`).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// The write-behind cost the issue asks for: 1,000 sessions' 4 KiB
/// snapshots (and a command each) flushed to Redis once a second. The
/// writer runs alone on this thread (a current-thread runtime), so this
/// thread's CPU time is the client's whole cost: queueing, coalescing,
/// encoding the pipelines, the socket IO and the replies.
#[test]
fn flushing_1000_sessions_a_second_costs_little_cpu() {
    std::thread::spawn(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(measure_flush_cost());
    })
    .join()
    .unwrap();
}

async fn measure_flush_cost() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let (persister, handle, _events) = Persister::start(
        config("bench"),
        None,
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    let sessions: Vec<u64> = (0..1000).map(|_| session_id()).collect();
    let saves: Vec<Arc<[u8]>> = (0..1000u32)
        .map(|s| {
            (0..4096u32)
                .map(|i| (i.wrapping_mul(31) ^ s) as u8)
                .collect()
        })
        .collect();
    let mut samples = Vec::new();
    for round in 0..6u64 {
        let tick = (round + 1) * 30;
        let jobs: Vec<PersistJob> = sessions
            .iter()
            .zip(&saves)
            .map(|(&session, bytes)| PersistJob::Save {
                session,
                epoch: 1,
                tick,
                state_hash: tick,
                bytes: bytes.clone(),
                commands: vec![cmd(tick, "0 place arrow 12 7")],
                recovered: Vec::new(),
                durable: false,
            })
            .collect();
        let written = handle.stats().hot_writes;
        let cpu = thread_cpu();
        let started = Instant::now();
        for job in jobs {
            handle.try_send(job).unwrap();
        }
        eventually!("the round", handle.stats().hot_writes >= written + 1000);
        let wall = started.elapsed();
        // The first round loads the script and warms the connection.
        if round > 0 {
            let cpu = cpu.zip(thread_cpu()).map(|(before, after)| after - before);
            samples.push((cpu, wall));
        }
    }
    let cpu: Vec<Duration> = samples.iter().filter_map(|(cpu, _)| *cpu).collect();
    let wall = samples.iter().map(|(_, wall)| *wall).max().unwrap();
    if let Some(worst) = cpu.iter().max() {
        let mean = cpu.iter().sum::<Duration>() / cpu.len() as u32;
        eprintln!(
            "flush of 1000 sessions x 4 KiB + 1 command to Redis: client CPU mean {mean:?}, worst {worst:?} per round \
             (= {:.2}% of one core at one round a second); slowest round {wall:?} wall",
            worst.as_secs_f64() * 100.0
        );
        // The goal is under 2%; the bound here only catches regressions on
        // a loaded machine.
        assert!(*worst < Duration::from_millis(100), "{worst:?}");
    } else {
        eprintln!("no per-thread CPU clock here; slowest round {wall:?} wall");
    }
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_holds_checkpoints_and_catches_up() {
    let Some(test) = TestDb::postgres().await else {
        return;
    };
    let proxy = Proxy::start(test.postgres_address().unwrap()).await;
    let proxied = test.postgres_via(proxy.port).await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let id = session_id();
        sessions.push((id, running(&test.db, id, "a").await));
    }
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(proxied),
        None,
        &tokio::runtime::Handle::current(),
    );
    for &(id, epoch) in &sessions {
        handle
            .try_send(snapshot(id, epoch, 10, false, &[]))
            .unwrap();
    }
    eventually!("every checkpoint", handle.stats().checkpoints >= 10);

    proxy.set(Link::Cut);
    let mut slowest = Duration::ZERO;
    for tick in 11..=30u64 {
        for &(id, epoch) in &sessions {
            let started = Instant::now();
            handle
                .try_send(snapshot(id, epoch, tick, false, &[]))
                .unwrap();
            slowest = slowest.max(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eventually!("the breaker open", !handle.store_up(Store::Database));
    assert!(
        slowest < Duration::from_millis(50),
        "try_send took {slowest:?}"
    );
    let (first, _) = sessions[0];
    assert!(test.db.load_checkpoint(first).await.unwrap().unwrap().tick < 30);

    proxy.set(Link::Up);
    let restored_at = Instant::now();
    for &(id, _) in &sessions {
        eventually!(
            "the catch-up",
            test.db
                .load_checkpoint(id)
                .await
                .unwrap()
                .is_some_and(|c| c.tick == 30)
        );
    }
    eprintln!(
        "PostgreSQL restored: caught up within {:?}",
        restored_at.elapsed()
    );
    // A write the database committed whose reply the cut lost counts as a
    // failure, so the circuit may still be open here: it closes with the
    // retry.
    eventually!("the breaker closed", handle.store_up(Store::Database));
    assert_eq!(handle.stats().dropped_durable, 0);
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// A start, then the session's first snapshot at epoch 1 (sent at once, as
/// the host does): lease, row, claim, then the snapshot in both stores.
async fn a_start_registers_before_the_snapshot(db: &Database, redis: &TestRedis) {
    let id = session_id();
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    handle.try_send(start(id)).unwrap();
    handle
        .try_send(snapshot(id, 1, 10, true, &[(10, "c10")]))
        .unwrap();
    eventually!(
        "the checkpoint",
        db.load_checkpoint(id).await.unwrap().is_some()
    );
    let record = db.session(id).await.unwrap().unwrap();
    assert_eq!(record.row, running_row(id));
    assert_eq!(
        (record.owner_instance.as_deref(), record.owner_epoch),
        (Some("a"), 1)
    );
    let checkpoint = db.load_checkpoint(id).await.unwrap().unwrap();
    assert_eq!((checkpoint.epoch, checkpoint.tick), (1, 10));
    assert_eq!(
        redis.hot.lease_holder(id).await.unwrap().as_deref(),
        Some("a")
    );
    eventually!("the hot snapshot", handle.stats().hot_writes > 0);
    let state = redis.hot.load(id).await.unwrap().unwrap();
    assert_eq!((state.epoch, state.snapshot.map(|s| s.tick)), (1, Some(10)));
    assert_eq!(texts(&state.commands), [(10, "c10".into())]);
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

with_redis_on_both_backends!(a_start_registers_before_the_snapshot => a_start_registers_on_sqlite, a_start_registers_on_postgres);

/// Without the lease nothing of a started session is written, not even its
/// row (it would be running with no lease holder: adoptable); once Redis
/// is back the start and what queued behind it go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_waits_for_redis() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let test = TestDb::sqlite().await;
    let db = &test.db;
    let proxy = Proxy::start(redis.address()).await;
    let options = HotOptions {
        response_timeout: Duration::from_millis(200),
        ..HotOptions::default()
    };
    let hot = redis.store_via(&proxy.url("redis"), options).await;
    proxy.set(Link::Cut);
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(hot),
        &tokio::runtime::Handle::current(),
    );
    let id = session_id();
    handle.try_send(start(id)).unwrap();
    handle
        .try_send(snapshot(id, 1, 10, true, &[(10, "c10")]))
        .unwrap();
    eventually!("the breaker open", !handle.store_up(Store::Redis));
    // A few more rounds: the database is up, and still nothing goes to it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(db.session(id).await.unwrap(), None);
    assert_eq!(db.load_checkpoint(id).await.unwrap(), None);
    assert_eq!(redis.hot.lease_holder(id).await.unwrap(), None);
    assert!(redis.hot.load(id).await.unwrap().is_none());
    assert_eq!(handle.stats().checkpoints, 0);

    proxy.set(Link::Up);
    eventually!("the start", started_by(db, id, "a").await);
    assert_eq!(
        redis.hot.lease_holder(id).await.unwrap().as_deref(),
        Some("a")
    );
    eventually!(
        "the checkpoint",
        db.load_checkpoint(id)
            .await
            .unwrap()
            .is_some_and(|c| c.tick == 10)
    );
    eventually!(
        "the hot snapshot",
        redis
            .hot
            .load(id)
            .await
            .unwrap()
            .and_then(|s| s.snapshot)
            .is_some_and(|s| s.tick == 10)
    );
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// A lease someone else holds means the session is theirs: the start is
/// lost ownership, and no row goes in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_against_a_held_lease_is_lost_ownership() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let test = TestDb::sqlite().await;
    let db = &test.db;
    let id = session_id();
    assert!(
        redis
            .hot
            .acquire_lease(id, "b", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    handle.try_send(start(id)).unwrap();
    handle
        .try_send(snapshot(id, 1, 10, true, &[(10, "c10")]))
        .unwrap();
    let mut lost: Option<PersistEvent>;
    eventually!("lost ownership", {
        lost = next_event(&events);
        lost.is_some()
    });
    assert_eq!(
        lost,
        Some(PersistEvent::LostOwnership {
            session: id,
            epoch: 1,
            store: Store::Redis,
        })
    );
    assert_eq!(db.session(id).await.unwrap(), None);
    assert!(redis.hot.load(id).await.unwrap().is_none());
    assert_eq!(
        redis.hot.lease_holder(id).await.unwrap().as_deref(),
        Some("b")
    );
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// The embedded default: no Redis, so a start is the row and the claim,
/// and the snapshot behind it is a checkpoint.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_without_redis_on_sqlite() {
    let test = TestDb::sqlite().await;
    let db = &test.db;
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        None,
        &tokio::runtime::Handle::current(),
    );
    let id = session_id();
    handle.try_send(start(id)).unwrap();
    handle
        .try_send(snapshot(id, 1, 10, false, &[(10, "c10")]))
        .unwrap();
    eventually!(
        "the checkpoint",
        db.load_checkpoint(id).await.unwrap().is_some()
    );
    assert!(started_by(db, id, "a").await);
    let checkpoint = db.load_checkpoint(id).await.unwrap().unwrap();
    assert_eq!((checkpoint.epoch, checkpoint.tick), (1, 10));
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// A start retried after its reply was lost finds its own row, claimed or
/// not yet, and completes; a row another instance claimed is theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_start_finds_its_own_row() {
    let test = TestDb::sqlite().await;
    let db = &test.db;
    // The insert and the claim went through; the reply did not.
    let claimed = session_id();
    assert_eq!(running(db, claimed, "a").await, 1);
    // The insert went through; the claim never ran.
    let inserted = session_id();
    db.create_session(&running_row(inserted)).await.unwrap();
    // Another instance's.
    let theirs = session_id();
    assert_eq!(running(db, theirs, "b").await, 1);
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        None,
        &tokio::runtime::Handle::current(),
    );
    for id in [claimed, inserted, theirs] {
        handle.try_send(start(id)).unwrap();
        handle.try_send(snapshot(id, 1, 10, false, &[])).unwrap();
    }
    let mut lost: Option<PersistEvent>;
    eventually!("lost ownership", {
        lost = next_event(&events);
        lost.is_some()
    });
    assert_eq!(
        lost,
        Some(PersistEvent::LostOwnership {
            session: theirs,
            epoch: 1,
            store: Store::Database,
        })
    );
    for id in [claimed, inserted] {
        eventually!(
            "the checkpoint",
            db.load_checkpoint(id).await.unwrap().is_some()
        );
        assert!(started_by(db, id, "a").await);
    }
    assert_eq!(db.load_checkpoint(theirs).await.unwrap(), None);
    assert!(started_by(db, theirs, "b").await);
    assert!(next_event(&events).is_none());
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}

/// A row another instance claimed, its lease lapsed: the start takes the
/// lease, finds the row theirs, and gives the lease back so the owner can
/// take it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_against_a_claimed_row_gives_the_lease_back() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let test = TestDb::sqlite().await;
    let db = &test.db;
    let id = session_id();
    assert_eq!(running(db, id, "b").await, 1);
    let (persister, handle, events) = Persister::start(
        config("a"),
        Some(db.clone()),
        Some(redis.hot.clone()),
        &tokio::runtime::Handle::current(),
    );
    handle.try_send(start(id)).unwrap();
    handle.try_send(snapshot(id, 1, 10, true, &[])).unwrap();
    let mut lost: Option<PersistEvent>;
    eventually!("lost ownership", {
        lost = next_event(&events);
        lost.is_some()
    });
    assert_eq!(
        lost,
        Some(PersistEvent::LostOwnership {
            session: id,
            epoch: 1,
            store: Store::Database,
        })
    );
    assert_eq!(redis.hot.lease_holder(id).await.unwrap(), None);
    assert!(redis.hot.load(id).await.unwrap().is_none());
    assert!(started_by(db, id, "b").await);
    assert_eq!(db.load_checkpoint(id).await.unwrap(), None);
    assert_eq!(
        persister
            .shutdown(Duration::from_secs(5))
            .await
            .unwritten_sessions,
        0
    );
}
