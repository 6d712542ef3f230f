//! The durable store against real backends: every test body runs on SQLite
//! and on PostgreSQL (`RAMPART_TEST_DATABASE_URL`), each in its own file or
//! schema.

use crate::support::session_id;
use diesel_async::SimpleAsyncConnection;
use rampart_persistence::{
    CheckpointWrite, Database, DbError, LoggedCommand, MapRecord, MatchOutcome, RowState,
    SeatResult, SessionRow,
};

/// Runs each listed body once per backend, as `sqlite::name` and
/// `postgres::name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let test = crate::support::TestDb::sqlite().await;
                    super::$name(&test.db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(test) = crate::support::TestDb::postgres().await else { return };
                    super::$name(&test.db).await;
                }
            )*
        }
    };
}

on_both_backends!(
    migrations_are_idempotent,
    players_and_maps_round_trip,
    maps_are_listed_by_key,
    session_round_trip,
    claims_fence_old_owners,
    checkpoints_append_the_command_log_once,
    a_checkpoint_batch_answers_each_session,
    finish_writes_results_and_history,
    leaderboard_and_histories,
    content_versions_are_written_once,
);

fn session(id: u64, map: &str) -> SessionRow {
    SessionRow {
        id,
        map: map.to_owned(),
        scenario: None,
        seed: 42,
        players: 2,
        tick_hz: 30,
        content_version: 7,
        state: RowState::Running,
    }
}

fn seat(seat: u8, player: Option<&str>, score: u32) -> SeatResult {
    SeatResult {
        seat,
        player_id: player.map(str::to_owned),
        score,
        kills: score / 10,
        leaks: 1,
        gold_earned: score * 2,
        victory: true,
    }
}

fn outcome(ticks: u64) -> MatchOutcome {
    MatchOutcome {
        outcome: "victory".to_owned(),
        ticks,
        players: 2,
    }
}

async fn migrations_are_idempotent(db: &Database) {
    // The fixture migrated once already.
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    db.ping().await.unwrap();
    db.upsert_player("p", "P").await.unwrap();
    assert!(db.player("p").await.unwrap().is_some());
}

async fn players_and_maps_round_trip(db: &Database) {
    assert_eq!(db.player("alice").await.unwrap(), None);
    db.upsert_player("alice", "Alice").await.unwrap();
    let first = db.player("alice").await.unwrap().unwrap();
    assert_eq!(first.name, "Alice");
    assert_eq!(first.created_at, first.last_seen_at);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    db.upsert_player("alice", "Alice B").await.unwrap();
    let second = db.player("alice").await.unwrap().unwrap();
    assert_eq!(second.name, "Alice B");
    assert_eq!(second.created_at, first.created_at);
    assert!(second.last_seen_at > first.last_seen_at);

    let mut map = MapRecord {
        key: "meadow".to_owned(),
        name: "Meadow".to_owned(),
        content_hash: u64::MAX - 3,
        width: 40,
        height: 30,
    };
    assert_eq!(db.map("meadow").await.unwrap(), None);
    db.upsert_map(&map).await.unwrap();
    assert_eq!(db.map("meadow").await.unwrap().as_ref(), Some(&map));
    map.content_hash = 1;
    map.width = 64;
    db.upsert_map(&map).await.unwrap();
    assert_eq!(db.map("meadow").await.unwrap(), Some(map));
}

/// The HTTP API's map list: every map, by key whatever the insertion order,
/// with an upsert changing a map in place rather than adding one.
async fn maps_are_listed_by_key(db: &Database) {
    assert!(db.maps().await.unwrap().is_empty());
    let map = |key: &str, width: u32| MapRecord {
        key: key.to_owned(),
        name: key.to_uppercase(),
        content_hash: u64::MAX - u64::from(width),
        width,
        height: 16,
    };
    for record in [map("small", 24), map("highlands", 48), map("reference", 40)] {
        db.upsert_map(&record).await.unwrap();
    }
    db.upsert_map(&map("small", 32)).await.unwrap();
    assert_eq!(
        db.maps().await.unwrap(),
        [map("highlands", 48), map("reference", 40), map("small", 32)]
    );
}

async fn session_round_trip(db: &Database) {
    // Ids, seeds and versions use the whole u64 range (bit-cast storage).
    let id = u64::MAX - session_id();
    let row = SessionRow {
        id,
        map: "meadow".to_owned(),
        scenario: Some("hard".to_owned()),
        seed: u64::MAX,
        players: 8,
        tick_hz: 60,
        content_version: 1 << 63,
        state: RowState::Running,
    };
    assert_eq!(db.session(id).await.unwrap(), None);
    db.create_session(&row).await.unwrap();
    assert!(matches!(
        db.create_session(&row).await,
        Err(DbError::SessionExists(got)) if got == id
    ));
    let stored = db.session(id).await.unwrap().unwrap();
    assert_eq!(stored.row, row);
    assert_eq!((stored.owner_instance, stored.owner_epoch), (None, 0));
    assert_eq!(stored.ended_at, None);

    // A lobby is not adopted; a running session is.
    let lobby = SessionRow {
        id: session_id(),
        state: RowState::Lobby,
        ..row.clone()
    };
    db.create_session(&lobby).await.unwrap();
    assert_eq!(db.session(lobby.id).await.unwrap().unwrap().row, lobby);
    assert_eq!(db.claim(lobby.id, "a").await.unwrap(), 1);
    let epoch = db.claim(id, "a").await.unwrap();
    assert_eq!(epoch, 1);
    let running = db.running_sessions().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(
        (
            running[0].id,
            running[0].owner_instance.as_deref(),
            running[0].owner_epoch
        ),
        (id, Some("a"), 1)
    );

    assert_eq!(db.load_checkpoint(id).await.unwrap(), None);
    let blob: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    db.checkpoint(id, epoch, 300, u64::MAX - 1, &blob, &[])
        .await
        .unwrap();
    db.checkpoint(id, epoch, 600, 5, &blob[..100], &[])
        .await
        .unwrap();
    let checkpoint = db.load_checkpoint(id).await.unwrap().unwrap();
    assert_eq!(
        (
            checkpoint.session_id,
            checkpoint.epoch,
            checkpoint.tick,
            checkpoint.state_hash
        ),
        (id, 1, 600, 5)
    );
    assert_eq!(checkpoint.snapshot, &blob[..100]);

    // Writes to a session that does not exist say so.
    let missing = session_id();
    assert!(matches!(
        db.checkpoint(missing, 1, 1, 1, b"x", &[]).await,
        Err(DbError::UnknownSession(got)) if got == missing
    ));
    assert!(matches!(
        db.claim(missing, "a").await,
        Err(DbError::UnknownSession(_))
    ));
}

/// A content version's files are kept as first written: a repeat (a
/// restart on the same assets, a reload back to them) changes nothing, and
/// the top bit of the version survives the BIGINT.
async fn content_versions_are_written_once(db: &Database) {
    let version = 0x8000_0000_0000_0001;
    assert_eq!(db.content_version_files(version).await.unwrap(), None);
    db.store_content_version(version, b"first files")
        .await
        .unwrap();
    db.store_content_version(version, b"other files")
        .await
        .unwrap();
    db.store_content_version(7, b"").await.unwrap();
    assert_eq!(
        db.content_version_files(version).await.unwrap().as_deref(),
        Some(&b"first files"[..])
    );
    assert_eq!(
        db.content_version_files(7).await.unwrap().as_deref(),
        Some(&b""[..])
    );
}

fn logged(tick: u64, ordinal: u32, text: &str) -> LoggedCommand {
    LoggedCommand {
        tick,
        ordinal,
        command: text.as_bytes().to_vec(),
    }
}

/// The command log grows by what each checkpoint carries, in the
/// checkpoint's transaction: a retried checkpoint or an adopter repeating
/// its predecessor's last lines adds nothing twice, and a fenced one adds
/// nothing at all.
async fn checkpoints_append_the_command_log_once(db: &Database) {
    let id = session_id();
    db.create_session(&session(id, "meadow")).await.unwrap();
    let old = db.claim(id, "a").await.unwrap();
    let first = [logged(3, 0, "3 0 ready"), logged(3, 1, "3 1 ready")];
    db.checkpoint(id, old, 10, 1, b"a at 10", &first)
        .await
        .unwrap();
    // A retry after a lost reply.
    db.checkpoint(id, old, 10, 1, b"a at 10", &first)
        .await
        .unwrap();
    let second = [logged(12, 0, "12 0 call-wave")];
    db.checkpoint(id, old, 20, 2, b"a at 20", &second)
        .await
        .unwrap();

    // B adopts from the checkpoint at 10 and logs what it recovered (the
    // line at 12 again) with its own.
    let new = db.claim(id, "b").await.unwrap();
    let refused = db
        .checkpoint(id, old, 30, 3, b"a at 30", &[logged(25, 0, "25 0 ready")])
        .await;
    assert!(
        matches!(refused, Err(DbError::Fenced { .. })),
        "{refused:?}"
    );
    let adopter = [logged(12, 0, "12 0 call-wave"), logged(12, 1, "12 1 ready")];
    db.checkpoint(id, new, 21, 4, b"b at 21", &adopter)
        .await
        .unwrap();

    let log = db.command_log(id).await.unwrap();
    assert_eq!(
        log,
        [
            logged(3, 0, "3 0 ready"),
            logged(3, 1, "3 1 ready"),
            logged(12, 0, "12 0 call-wave"),
            logged(12, 1, "12 1 ready"),
        ]
    );
    assert!(db.command_log(session_id()).await.unwrap().is_empty());
}

/// A batch is one transaction, but each session's write is fenced on its
/// own: a session another owner took, one that does not exist and one whose
/// command ordinal does not fit are refused, and the rest are written with
/// their log lines.
async fn a_checkpoint_batch_answers_each_session(db: &Database) {
    let (kept, taken, missing, bad) = (session_id(), session_id(), session_id(), session_id());
    let mut epochs = Vec::new();
    for id in [kept, taken, bad] {
        db.create_session(&session(id, "meadow")).await.unwrap();
        epochs.push(db.claim(id, "a").await.unwrap());
    }
    let newer = db.claim(taken, "b").await.unwrap();
    let write = |session, epoch, text: &str, log: Vec<LoggedCommand>| CheckpointWrite {
        session,
        epoch,
        tick: 10,
        state_hash: 1,
        snapshot: text.as_bytes().into(),
        log: log.into(),
    };
    let answers = db
        .checkpoints(vec![
            write(
                kept,
                epochs[0],
                "kept at 10",
                vec![logged(4, 0, "4 0 ready")],
            ),
            write(
                taken,
                epochs[1],
                "taken at 10",
                vec![logged(5, 0, "5 0 ready")],
            ),
            write(missing, 1, "missing at 10", Vec::new()),
            write(
                bad,
                epochs[2],
                "bad at 10",
                vec![logged(6, u32::MAX, "6 ? ready")],
            ),
        ])
        .await
        .unwrap();
    assert_eq!(answers.len(), 4, "{answers:?}");
    assert!(answers[0].is_ok(), "{answers:?}");
    assert!(
        matches!(answers[1], Err(DbError::Fenced { session, current, ours })
            if session == taken && current == newer && ours == epochs[1]),
        "{answers:?}"
    );
    assert!(
        matches!(answers[2], Err(DbError::UnknownSession(id)) if id == missing),
        "{answers:?}"
    );
    assert!(
        matches!(answers[3], Err(DbError::OutOfRange { .. })),
        "{answers:?}"
    );

    assert_eq!(
        db.load_checkpoint(kept).await.unwrap().unwrap().snapshot,
        b"kept at 10"
    );
    assert_eq!(
        db.command_log(kept).await.unwrap(),
        vec![logged(4, 0, "4 0 ready")]
    );
    for refused in [taken, bad] {
        assert!(db.load_checkpoint(refused).await.unwrap().is_none());
        assert!(db.command_log(refused).await.unwrap().is_empty());
    }
}

async fn claims_fence_old_owners(db: &Database) {
    let id = session_id();
    db.create_session(&session(id, "meadow")).await.unwrap();
    let old = db.claim(id, "a").await.unwrap();
    db.checkpoint(id, old, 10, 1, b"a at 10", &[])
        .await
        .unwrap();

    // B takes over; A, paused meanwhile, wakes up and tries to write.
    let new = db.claim(id, "b").await.unwrap();
    assert_eq!(new, old + 1);
    let refused = db.checkpoint(id, old, 20, 2, b"a at 20", &[]).await;
    assert!(
        matches!(refused, Err(DbError::Fenced { session, current, ours })
            if session == id && current == new && ours == old),
        "{refused:?}"
    );
    assert_eq!(
        db.load_checkpoint(id).await.unwrap().unwrap().snapshot,
        b"a at 10"
    );
    db.checkpoint(id, new, 15, 3, b"b at 15", &[])
        .await
        .unwrap();
    assert!(matches!(
        db.checkpoint(id, old, 30, 4, b"a at 30", &[]).await,
        Err(DbError::Fenced { .. })
    ));
    assert!(matches!(
        db.finish(id, old, "victory", &[seat(0, None, 1)], &outcome(30))
            .await,
        Err(DbError::Fenced { .. })
    ));
    let stored = db.session(id).await.unwrap().unwrap();
    assert_eq!(stored.row.state, RowState::Running);
    assert_eq!(
        (stored.owner_instance.as_deref(), stored.owner_epoch),
        (Some("b"), new)
    );
    let checkpoint = db.load_checkpoint(id).await.unwrap().unwrap();
    assert_eq!(
        (checkpoint.epoch, checkpoint.snapshot),
        (new, b"b at 15".to_vec())
    );

    // The new owner finishes; nobody can claim an ended session.
    db.finish(id, new, "victory", &[seat(0, None, 1)], &outcome(30))
        .await
        .unwrap();
    assert!(matches!(
        db.claim(id, "c").await,
        Err(DbError::UnknownSession(_))
    ));
}

/// On PostgreSQL a claim and the old owner's checkpoint can run at once: a
/// checkpoint that meets a claim in flight waits for it and is refused once
/// the claim commits, never written under the new owner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkpoint_racing_a_claim_waits_and_is_refused() {
    let Some(test) = crate::support::TestDb::postgres().await else {
        return;
    };
    let db = test.db.clone();
    let id = session_id();
    db.create_session(&session(id, "meadow")).await.unwrap();
    let old = db.claim(id, "a").await.unwrap();
    db.checkpoint(id, old, 10, 1, b"a at 10", &[])
        .await
        .unwrap();

    // B's claim, as `Database::claim` makes it, held open.
    let mut b = test.other_postgres_connection().await.unwrap();
    b.batch_execute(&format!(
        "BEGIN; UPDATE sessions SET owner_epoch = owner_epoch + 1, owner_instance = 'b' \
         WHERE id = {}",
        i64::from_ne_bytes(id.to_ne_bytes())
    ))
    .await
    .unwrap();
    let write = tokio::spawn({
        let db = db.clone();
        async move { db.checkpoint(id, old, 20, 2, b"a at 20", &[]).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !write.is_finished(),
        "the checkpoint did not wait for the claim"
    );
    b.batch_execute("COMMIT").await.unwrap();

    let refused = write.await.unwrap();
    assert!(
        matches!(refused, Err(DbError::Fenced { current, ours, .. })
            if current == old + 1 && ours == old),
        "{refused:?}"
    );
    assert_eq!(
        db.load_checkpoint(id).await.unwrap().unwrap().snapshot,
        b"a at 10"
    );
}

async fn finish_writes_results_and_history(db: &Database) {
    let id = session_id();
    db.create_session(&session(id, "meadow")).await.unwrap();
    let epoch = db.claim(id, "a").await.unwrap();
    let seats = [seat(0, Some("alice"), 120), seat(1, None, 80)];
    db.finish(id, epoch, "victory", &seats, &outcome(900))
        .await
        .unwrap();
    // A retry after a lost reply rewrites the same rows.
    db.finish(id, epoch, "victory", &seats, &outcome(900))
        .await
        .unwrap();

    let stored = db.session(id).await.unwrap().unwrap();
    assert_eq!(stored.row.state, RowState::Ended);
    assert_eq!(stored.end_reason.as_deref(), Some("victory"));
    assert!(stored.ended_at.is_some());
    assert!(db.running_sessions().await.unwrap().is_empty());

    let history = db.player_history("alice", 10).await.unwrap();
    assert_eq!(history.len(), 1);
    let game = &history[0];
    assert_eq!(
        (
            game.session_id,
            game.map.as_str(),
            game.seat,
            game.outcome.as_str(),
            game.ticks
        ),
        (id, "meadow", 0, "victory", 900)
    );
    assert_eq!(
        (
            game.score,
            game.kills,
            game.leaks,
            game.gold_earned,
            game.victory
        ),
        (120, 12, 1, 240, true)
    );
    assert_eq!(Some(game.ended_at), stored.ended_at);

    let matches = db.recent_matches("meadow", 10).await.unwrap();
    assert_eq!(matches.len(), 1);
    assert_eq!(
        (matches[0].session_id, matches[0].ticks, matches[0].players),
        (id, 900, 2)
    );
}

async fn leaderboard_and_histories(db: &Database) {
    db.upsert_player("alice", "Alice").await.unwrap();
    db.upsert_player("bob", "Bob").await.unwrap();
    // carol never visited the players table: the board still lists her.
    let games: [(&str, [SeatResult; 2]); 3] = [
        (
            "meadow",
            [seat(0, Some("alice"), 100), seat(1, Some("bob"), 300)],
        ),
        ("meadow", [seat(0, Some("carol"), 200), seat(1, None, 999)]),
        (
            "canyon",
            [seat(0, Some("alice"), 500), seat(1, Some("bob"), 50)],
        ),
    ];
    let mut ids = Vec::new();
    for (map, seats) in &games {
        let id = session_id();
        ids.push(id);
        db.create_session(&session(id, map)).await.unwrap();
        let epoch = db.claim(id, "a").await.unwrap();
        db.finish(id, epoch, "victory", seats, &outcome(100))
            .await
            .unwrap();
        // Distinct end times, so "newest first" is well defined.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }

    let board = db.leaderboard("meadow", 10).await.unwrap();
    let lines: Vec<(&str, Option<&str>, u32)> = board
        .iter()
        .map(|e| (e.player_id.as_str(), e.player_name.as_deref(), e.score))
        .collect();
    assert_eq!(
        lines,
        [
            ("bob", Some("Bob"), 300),
            ("carol", None, 200),
            ("alice", Some("Alice"), 100)
        ],
        "bots (999) are not on the board"
    );
    let top = db.leaderboard("meadow", 1).await.unwrap();
    assert_eq!((top.len(), top[0].session_id, top[0].seat), (1, ids[0], 1));
    assert_eq!(db.leaderboard("canyon", 10).await.unwrap()[0].score, 500);
    assert!(db.leaderboard("nowhere", 10).await.unwrap().is_empty());

    let alice: Vec<(u64, String)> = db
        .player_history("alice", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|g| (g.session_id, g.map))
        .collect();
    assert_eq!(
        alice,
        [(ids[2], "canyon".to_owned()), (ids[0], "meadow".to_owned())]
    );
    assert_eq!(db.player_history("alice", 1).await.unwrap().len(), 1);
    assert!(db.player_history("nobody", 10).await.unwrap().is_empty());

    let meadow: Vec<u64> = db
        .recent_matches("meadow", 10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.session_id)
        .collect();
    assert_eq!(meadow, [ids[1], ids[0]]);
}

/// The embedded default across a restart: a second `Database` on the same
/// file (what a restarted server opens) finds the first one's sessions and
/// checkpoints, and the file is in WAL mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_a_restart() {
    let dir = std::env::temp_dir().join(crate::support::unique("rampart_test"));
    let path = dir.join("rampart.db");
    let url = path.to_str().unwrap();
    let id = session_id();
    {
        let db = Database::open(url).await.unwrap();
        db.migrate().await.unwrap();
        db.create_session(&session(id, "meadow")).await.unwrap();
        let epoch = db.claim(id, "me").await.unwrap();
        db.checkpoint(id, epoch, 90, 9, b"at 90", &[])
            .await
            .unwrap();
        assert!(dir.join("rampart.db-wal").exists(), "journal_mode=WAL");
    }
    let db = Database::open(url).await.unwrap();
    db.migrate().await.unwrap();
    let running = db.running_sessions().await.unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].owner_instance.as_deref(), Some("me"));
    assert_eq!(db.claim(id, "me").await.unwrap(), 2);
    assert_eq!(db.load_checkpoint(id).await.unwrap().unwrap().tick, 90);
    drop(db);
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn urls_that_are_not_files_are_refused() {
    for url in ["", ":memory:", "file::memory:?cache=shared"] {
        let refused = Database::open(url).await;
        assert!(matches!(refused, Err(DbError::Url(_))), "{url}");
    }
    let bad_schema = rampart_persistence::DbOptions {
        schema: Some("x; DROP TABLE players".into()),
        ..Default::default()
    };
    assert!(matches!(
        Database::open_with("postgres://nobody@127.0.0.1:1/none", bad_schema).await,
        Err(DbError::Url(_))
    ));
}

/// Opening never connects, so an instance starts while PostgreSQL is down;
/// calls then fail with an actionable error instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_postgres_fails_calls_quickly() {
    let options = rampart_persistence::DbOptions {
        connect_timeout: std::time::Duration::from_secs(1),
        ..Default::default()
    };
    let db = Database::open_with("postgres://postgres@127.0.0.1:1/none", options)
        .await
        .unwrap();
    assert_eq!(db.backend_name(), "postgres");
    let started = std::time::Instant::now();
    let error = db.ping().await.unwrap_err();
    assert!(matches!(error, DbError::Connect(_)), "{error}");
    assert!(error.to_string().contains("DATABASE_URL"));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
}
