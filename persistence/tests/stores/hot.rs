//! The hot store against real Redis (`RAMPART_TEST_REDIS_URL`), and the
//! takeover story across Redis and each database backend.

use std::time::{Duration, Instant};

use crate::support::{HotWrites as _, TestRedis, running_row, session_id};
use rampart_persistence::{
    CachedRecord, CommandEntry, Database, DbError, FlushedSnapshot, HotError, HotSnapshot,
    SessionFlush,
};
use redis::Commands as _;

fn cmd(tick: u64, text: &str) -> CommandEntry {
    CommandEntry {
        tick,
        bytes: text.as_bytes().to_vec(),
    }
}

fn texts(commands: &[CommandEntry]) -> Vec<(u64, String)> {
    commands
        .iter()
        .map(|c| (c.tick, String::from_utf8(c.bytes.clone()).unwrap()))
        .collect()
}

#[tokio::test]
async fn leases_have_one_holder_until_they_expire() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let id = session_id();
    let long = Duration::from_secs(30);
    assert_eq!(hot.lease_holder(id).await.unwrap(), None);
    assert!(hot.acquire_lease(id, "a", long).await.unwrap());
    assert!(!hot.acquire_lease(id, "b", long).await.unwrap());
    assert!(!hot.renew_lease(id, "b", long).await.unwrap());
    assert!(hot.renew_lease(id, "a", long).await.unwrap());
    assert!(!hot.release_lease(id, "b").await.unwrap());
    assert_eq!(hot.lease_holder(id).await.unwrap().as_deref(), Some("a"));
    assert!(hot.release_lease(id, "a").await.unwrap());
    assert_eq!(hot.lease_holder(id).await.unwrap(), None);

    // A holder that stops renewing loses the lease to the next acquirer,
    // and cannot renew it back.
    assert!(
        hot.acquire_lease(id, "a", Duration::from_millis(150))
            .await
            .unwrap()
    );
    assert!(!hot.acquire_lease(id, "b", long).await.unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hot.acquire_lease(id, "b", long).await.unwrap());
    assert!(!hot.renew_lease(id, "a", long).await.unwrap());
    assert_eq!(hot.lease_holder(id).await.unwrap().as_deref(), Some("b"));
}

/// An instance's advertised address is there while it refreshes it, and
/// lapses like a lease when it stops (it died).
#[tokio::test]
async fn advertised_addresses_lapse_with_their_instance() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    assert_eq!(hot.advertised("a").await.unwrap(), None);
    let short = Duration::from_millis(150);
    hot.advertise("a", "http://10.0.0.1:8080", short)
        .await
        .unwrap();
    hot.advertise("b", "http://10.0.0.2:8080", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        hot.advertised("a").await.unwrap().as_deref(),
        Some("http://10.0.0.1:8080")
    );
    // A refresh may move it (a restarted pod keeping its name).
    hot.advertise("a", "http://10.0.0.3:8080", short)
        .await
        .unwrap();
    assert_eq!(
        hot.advertised("a").await.unwrap().as_deref(),
        Some("http://10.0.0.3:8080")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hot.advertised("a").await.unwrap(), None);
    assert_eq!(
        hot.advertised("b").await.unwrap().as_deref(),
        Some("http://10.0.0.2:8080")
    );
}

#[tokio::test]
async fn snapshots_and_commands_round_trip() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let id = session_id();
    assert_eq!(hot.load(id).await.unwrap(), None);

    // Commands before any snapshot (tick 0 included) come back in order.
    hot.append_commands(id, 1, &[cmd(0, "a"), cmd(1, "b"), cmd(1, "c")])
        .await
        .unwrap();
    let state = hot.load(id).await.unwrap().unwrap();
    assert_eq!((state.epoch, state.snapshot), (1, None));
    assert_eq!(
        texts(&state.commands),
        [(0, "a".into()), (1, "b".into()), (1, "c".into())]
    );

    // A snapshot at tick 1 keeps only the commands from tick 1 on.
    let bytes: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
    hot.put_snapshot(id, 1, 1, u64::MAX, &bytes).await.unwrap();
    hot.append_commands(id, 1, &[cmd(1, "d"), cmd(3, "e")])
        .await
        .unwrap();
    let state = hot.load(id).await.unwrap().unwrap();
    let snapshot = state.snapshot.unwrap();
    assert_eq!((snapshot.tick, snapshot.state_hash), (1, u64::MAX));
    assert_eq!(snapshot.bytes, bytes);
    assert_eq!(
        texts(&state.commands),
        [
            (1, "b".into()),
            (1, "c".into()),
            (1, "d".into()),
            (3, "e".into())
        ]
    );
    let mut raw = redis.raw();
    let stored: usize = raw.xlen(redis.key(id, "cmds")).unwrap();
    assert_eq!(stored, 4, "tick 0 was trimmed by the snapshot");

    // Every write refreshes the 30-minute TTL of the state.
    for part in ["epoch", "snap", "cmds"] {
        let ttl: i64 = raw.pttl(redis.key(id, part)).unwrap();
        assert!(
            ttl > 29 * 60 * 1000 && ttl <= 30 * 60 * 1000,
            "{part}: {ttl}"
        );
    }

    hot.forget(id).await.unwrap();
    assert_eq!(hot.load(id).await.unwrap(), None);
}

/// The HTTP API's cache: forms (page sizes) of one record live in one hash
/// that expires one TTL after its first form, and invalidating a record
/// drops every form of it and nothing else.
#[tokio::test]
async fn cached_records_expire_together_and_invalidate_whole() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let long = Duration::from_secs(60);
    let meadow = CachedRecord::Leaderboard("meadow");
    assert_eq!(hot.cached_record(meadow, "20").await.unwrap(), None);
    hot.cache_record(meadow, "20", b"[20]", long).await.unwrap();
    hot.cache_record(meadow, "10", b"[10]", long).await.unwrap();
    assert_eq!(
        hot.cached_record(meadow, "20").await.unwrap().as_deref(),
        Some(&b"[20]"[..])
    );
    assert_eq!(
        hot.cached_record(meadow, "10").await.unwrap().as_deref(),
        Some(&b"[10]"[..])
    );
    let mut raw = redis.raw();
    let ttl: i64 = raw
        .pttl(redis.cache_key("cache:leaderboard:meadow"))
        .unwrap();
    assert!(ttl > 59_000 && ttl <= 60_000, "{ttl}");

    // A later form does not extend the record's life: the first form's TTL
    // bounds them all.
    let brief = CachedRecord::RecentMatches("meadow");
    hot.cache_record(brief, "20", b"[]", Duration::from_millis(200))
        .await
        .unwrap();
    hot.cache_record(brief, "5", b"[]", long).await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(hot.cached_record(brief, "5").await.unwrap(), None);

    // Invalidation: every form of the named records, and only those. Names
    // are taken as they are (a player id may hold `|` and `:`).
    let odd_player = CachedRecord::PlayerHistory("auth0|a:b");
    let canyon = CachedRecord::Leaderboard("canyon");
    let everything = CachedRecord::Maps;
    for record in [brief, odd_player, canyon, everything] {
        hot.cache_record(record, "20", b"[1]", long).await.unwrap();
    }
    hot.invalidate_records(&[]).await.unwrap();
    hot.invalidate_records(&[meadow, brief, odd_player])
        .await
        .unwrap();
    for (record, form) in [
        (meadow, "20"),
        (meadow, "10"),
        (brief, "20"),
        (odd_player, "20"),
    ] {
        assert_eq!(
            hot.cached_record(record, form).await.unwrap(),
            None,
            "{record:?} {form}"
        );
    }
    for record in [canyon, everything] {
        assert!(
            hot.cached_record(record, "20").await.unwrap().is_some(),
            "{record:?}"
        );
    }
}

#[tokio::test]
async fn adopting_a_session_redis_lost_finds_no_snapshot() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let id = session_id();
    let state = redis.hot.adopt(id, 3).await.unwrap().unwrap();
    assert_eq!(
        (state.epoch, state.snapshot, state.commands),
        (3, None, vec![])
    );
    assert!(matches!(
        redis.hot.adopt(id, 2).await,
        Err(HotError::Fenced {
            current: 3,
            ours: 2,
            ..
        })
    ));
}

#[tokio::test]
async fn out_of_order_writes_change_nothing() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let id = session_id();
    hot.append_commands(id, 1, &[cmd(5, "a")]).await.unwrap();
    let refused = hot
        .append_commands(id, 1, &[cmd(6, "b"), cmd(3, "c")])
        .await;
    assert!(
        matches!(refused, Err(HotError::OutOfOrder { last: 6, .. })),
        "{refused:?}"
    );
    let refused = hot.append_commands(id, 1, &[cmd(4, "d")]).await;
    assert!(matches!(
        refused,
        Err(HotError::OutOfOrder {
            tick: 4,
            last: 5,
            ..
        })
    ));
    hot.put_snapshot(id, 1, 9, 1, b"nine").await.unwrap();
    assert!(matches!(
        hot.put_snapshot(id, 1, 8, 1, b"eight").await,
        Err(HotError::OutOfOrder { last: 9, .. })
    ));
    let state = hot.load(id).await.unwrap().unwrap();
    assert_eq!(state.snapshot.unwrap().bytes, b"nine");
    assert!(state.commands.is_empty());
}

#[tokio::test]
async fn a_paused_old_owner_cannot_overwrite_the_new_owner() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let id = session_id();
    hot.put_snapshot(id, 1, 10, 1, b"old at 10").await.unwrap();
    hot.append_commands(id, 1, &[cmd(10, "old")]).await.unwrap();

    // The new owner (epoch 2) resumes from the old owner's last snapshot...
    hot.put_snapshot(id, 2, 10, 1, b"new at 10").await.unwrap();
    hot.append_commands(id, 2, &[cmd(11, "new")]).await.unwrap();
    // ...and the old owner wakes up with newer ticks of its own.
    let refused = hot.put_snapshot(id, 1, 50, 9, b"old at 50").await;
    assert!(
        matches!(
            refused,
            Err(HotError::Fenced {
                current: 2,
                ours: 1,
                ..
            })
        ),
        "{refused:?}"
    );
    assert!(matches!(
        hot.append_commands(id, 1, &[cmd(50, "stale")]).await,
        Err(HotError::Fenced { current: 2, .. })
    ));

    let state = hot.load(id).await.unwrap().unwrap();
    assert_eq!(state.epoch, 2);
    assert_eq!(state.snapshot.unwrap().bytes, b"new at 10");
    assert_eq!(
        texts(&state.commands),
        [(10, "old".into()), (11, "new".into())]
    );
}

#[tokio::test]
async fn a_batch_flushes_hundreds_of_sessions_and_fences_each() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let hot = &redis.hot;
    let stale = session_id();
    hot.put_snapshot(stale, 5, 1, 1, b"epoch 5").await.unwrap();

    let bytes = vec![7u8; 4096];
    let commands: Vec<[CommandEntry; 2]> = (0..300)
        .map(|i| [cmd(i, "place"), cmd(i + 1, "sell")])
        .collect();
    let stale_commands = [cmd(2, "stale")];
    let mut flushes: Vec<SessionFlush> = (0..300u64)
        .zip(&commands)
        .map(|(i, commands)| SessionFlush {
            session: session_id(),
            epoch: 1,
            commands,
            first_command: None,
            snapshot: Some(FlushedSnapshot {
                tick: i + 1,
                state_hash: i,
                bytes: &bytes,
            }),
        })
        .collect();
    flushes.push(SessionFlush {
        session: stale,
        epoch: 4,
        commands: &stale_commands,
        first_command: None,
        snapshot: None,
    });

    let started = Instant::now();
    let outcomes = hot.flush(&flushes).await.unwrap();
    eprintln!(
        "flushed {} sessions x 4 KiB in {:?}",
        flushes.len(),
        started.elapsed()
    );
    assert_eq!(outcomes.len(), 301);
    assert!(outcomes[..300].iter().all(Result::is_ok));
    assert!(matches!(
        outcomes[300],
        Err(HotError::Fenced {
            current: 5,
            ours: 4,
            ..
        })
    ));

    for flush in [&flushes[0], &flushes[299]] {
        let state = hot.load(flush.session).await.unwrap().unwrap();
        let snapshot = state.snapshot.unwrap();
        let flushed = flush.snapshot.unwrap();
        assert_eq!(
            snapshot,
            HotSnapshot {
                tick: flushed.tick,
                state_hash: flushed.state_hash,
                bytes: flushed.bytes.to_vec(),
            }
        );
        assert_eq!(texts(&state.commands), [(snapshot.tick, "sell".into())]);
    }
    assert!(hot.flush(&[]).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_script_cache_flush_does_not_break_writes() {
    let Some(redis) = TestRedis::open().await else {
        return;
    };
    let id = session_id();
    redis.hot.put_snapshot(id, 1, 1, 1, b"one").await.unwrap();
    // What a Redis restart or failover does to loaded scripts.
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.raw())
        .unwrap();
    redis.hot.put_snapshot(id, 1, 2, 2, b"two").await.unwrap();
    assert!(
        redis
            .hot
            .renew_lease(id, "nobody", Duration::from_secs(1))
            .await
            .is_ok()
    );
    let state = redis.hot.load(id).await.unwrap().unwrap();
    assert_eq!(state.snapshot.unwrap().bytes, b"two");
}

/// The whole takeover on one backend: A owns the session, stalls, loses its
/// lease; B takes the lease and claims; A wakes up and every one of its
/// writes is refused, in Redis and in the database.
async fn takeover_fences_the_old_owner(db: &Database, redis: &TestRedis) {
    let hot = &redis.hot;
    let id = session_id();
    db.create_session(&running_row(id)).await.unwrap();
    let lease = Duration::from_millis(200);
    assert!(hot.acquire_lease(id, "a", lease).await.unwrap());
    let a = db.claim(id, "a").await.unwrap();
    hot.put_snapshot(id, a, 30, 1, b"a at 30").await.unwrap();
    db.checkpoint(id, a, 30, 1, b"a at 30", &[]).await.unwrap();

    // A stalls past its lease; B finds the session orphaned and adopts it.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let orphans = db.running_sessions().await.unwrap();
    assert!(orphans.iter().any(|s| s.id == id));
    assert_eq!(hot.lease_holder(id).await.unwrap(), None);
    assert!(
        hot.acquire_lease(id, "b", Duration::from_secs(30))
            .await
            .unwrap()
    );
    let b = db.claim(id, "b").await.unwrap();
    // Until B touches Redis, Redis still takes A's epoch: A's commands
    // accepted meanwhile must reach B.
    hot.append_commands(id, a, &[cmd(31, "a late")])
        .await
        .unwrap();
    let resumed = hot.adopt(id, b).await.unwrap().unwrap();
    assert_eq!(resumed.epoch, b);
    assert_eq!(resumed.snapshot.unwrap().bytes, b"a at 30");
    assert_eq!(texts(&resumed.commands), [(31, "a late".into())]);
    // From the adoption on, A is refused even before B writes anything.
    assert!(matches!(
        hot.append_commands(id, a, &[cmd(32, "a later")]).await,
        Err(HotError::Fenced { .. })
    ));
    hot.put_snapshot(id, b, 32, 2, b"b at 32").await.unwrap();

    // A wakes up.
    assert!(!hot.renew_lease(id, "a", lease).await.unwrap());
    assert!(matches!(
        hot.put_snapshot(id, a, 60, 3, b"a at 60").await,
        Err(HotError::Fenced { .. })
    ));
    assert!(matches!(
        db.checkpoint(id, a, 60, 3, b"a at 60", &[]).await,
        Err(DbError::Fenced { .. })
    ));
    assert_eq!(
        hot.load(id).await.unwrap().unwrap().snapshot.unwrap().bytes,
        b"b at 32"
    );
    assert_eq!(
        db.load_checkpoint(id).await.unwrap().unwrap().snapshot,
        b"a at 30"
    );
}

with_redis_on_both_backends!(takeover_fences_the_old_owner => takeover_on_sqlite, takeover_on_postgres);
