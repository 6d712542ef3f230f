//! The host in process: sessions with bots tick, one crashing session
//! leaves the others ticking, capacity and validation refuse clearly, and a
//! drain hands every running session to the embedded store, from which a
//! new host resumes them exactly. The hosts tick when a test says
//! ([`DrivenClock`]); only the persistence writer keeps wall-clock time.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rampart_net::gateway::Feed;
use rampart_persistence::{
    Database, PersistConfig, PersistHandle, Persister, RowState as StoredState,
};

use super::*;

fn content() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    Arc::new(rampart_sim::content::load_dir(&dir).unwrap())
}

fn host_config(max_sessions: usize) -> HostConfig {
    HostConfig {
        max_sessions,
        tick_hz: 60,
        ..crate::config::Config::default().host_config()
    }
}

/// A fresh embedded (SQLite) database in the temp directory.
async fn embedded_database() -> Database {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rampart-host-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let database = Database::open(dir.join("rampart.db").to_str().unwrap())
        .await
        .unwrap();
    database.migrate().await.unwrap();
    database
}

/// A host persisting to `database` as the embedded default does (no Redis).
fn start_persisting_host(
    content: Arc<Content>,
    max_sessions: usize,
    database: &Database,
    instance: &str,
) -> (Driven, Persister) {
    let (host, persister, _) = start_host_saving_every(
        content,
        max_sessions,
        database,
        instance,
        Duration::from_secs(1),
        None,
    );
    (host, persister)
}

/// The same, saving running sessions every `snapshot_interval` (and at
/// wave starts and ends) and publishing to `feed`; also the host's handle
/// to the writer, for its counts.
fn start_host_saving_every(
    content: Arc<Content>,
    max_sessions: usize,
    database: &Database,
    instance: &str,
    snapshot_interval: Duration,
    feed: Option<FeedSender>,
) -> (Driven, Persister, PersistHandle) {
    let config = PersistConfig {
        instance: instance.to_owned(),
        ..PersistConfig::default()
    };
    let (persister, handle, events) = Persister::start(
        config,
        Some(database.clone()),
        None,
        &tokio::runtime::Handle::current(),
    );
    let persistence = Saves {
        handle: handle.clone(),
        events,
        cadence: SaveCadence {
            snapshot_interval,
            checkpoint_interval: snapshot_interval,
        },
    };
    let (host, clock) =
        HostHandle::spawn_driven(content, host_config(max_sessions), Some(persistence), feed)
            .unwrap();
    (Driven { host, clock }, persister, handle)
}

/// One adoption pass of `host`, owning sessions as `instance`, over the
/// embedded `database` (no Redis): how many sessions it resumed.
async fn adopt_orphans(host: &Driven, database: &Database, instance: &str) -> usize {
    let stores = crate::stores::Stores {
        database: database.clone(),
        hot: None,
        instance: instance.into(),
        lease: Duration::from_secs(6),
        versions: crate::content::ContentVersions::new(database.clone()),
    };
    crate::stores::Adopter::new(stores, host.host.clone())
        .pass()
        .await
}

/// A host that keeps nothing, for tests that do not look at persistence.
fn start_host(max_sessions: usize) -> Driven {
    start_host_feeding(max_sessions, None)
}

/// The same, publishing to `feed` as it would to the network.
fn start_host_feeding(max_sessions: usize, feed: Option<FeedSender>) -> Driven {
    let (host, clock) =
        HostHandle::spawn_driven(content(), host_config(max_sessions), None, feed).unwrap();
    Driven { host, clock }
}

/// A host and the clock it ticks by.
struct Driven {
    host: HostHandle,
    clock: Arc<pace::DrivenClock>,
}

impl std::ops::Deref for Driven {
    type Target = HostHandle;

    fn deref(&self) -> &HostHandle {
        &self.host
    }
}

impl Driven {
    /// Runs ticks until the published view satisfies `done` (it is
    /// published at least every third tick), at most `limit` of them.
    async fn run_until(&self, limit: u64, mut done: impl FnMut(&HostHandle) -> bool) {
        for _ in 0..limit {
            if done(&self.host) {
                return;
            }
            self.clock.advance(1).await;
        }
        panic!("condition not reached in {limit} ticks");
    }
}

fn bots(map: &str, bots: u8) -> CreateSession {
    CreateSession {
        map: map.into(),
        max_players: bots,
        bots,
        private: false,
        seed: Some(1),
        scenario: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_is_isolated() {
    let host = start_host(10);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let info = host.create(bots("reference", 4)).await.unwrap();
        assert_eq!(
            info.state,
            SessionState::Running,
            "bot-only sessions start at once"
        );
        ids.push(info.id);
    }
    host.run_until(20, |host| {
        host.get(ids[2]).is_some_and(|info| info.tick > 10)
    })
    .await;
    host.inject_panic(ids[0]).await;
    host.run_until(5, |host| host.status().crashed == 1).await;
    let crashed = host.get(ids[0]).unwrap();
    assert_eq!(
        (crashed.state, crashed.end_reason),
        (SessionState::Ended, Some("crashed"))
    );
    let before = host.get(ids[1]).unwrap().tick;
    host.run_until(40, |host| host.get(ids[1]).unwrap().tick > before + 30)
        .await;
    assert_eq!(host.status().running, 2, "the other sessions keep ticking");
}

/// A client that reads back the session it was just told of finds it: the
/// answer to a create waits for the view that shows the session. (Before,
/// a tick thread slow between answering and publishing gave a 404.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_is_shown_by_the_time_its_creation_is_answered() {
    let host = start_host(10);
    let control = host.control.clone();
    let empty = control.max_capacity();
    let queued = |count: usize| {
        let control = control.clone();
        async move {
            while control.capacity() != empty - count {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };
    // Wedge the tick thread, queue a create behind the wedge and a second
    // wedge behind the create; released once, the thread takes the create
    // and stops again before it publishes.
    let first = host.stall().await;
    queued(0).await;
    let mut create = tokio::spawn({
        let host = host.host.clone();
        async move { host.create(bots("reference", 2)).await }
    });
    queued(1).await;
    let second = host.stall().await;
    drop(first);
    let info = match tokio::time::timeout(Duration::from_millis(200), &mut create).await {
        // Answered while the thread is stopped before publishing.
        Ok(answered) => answered.unwrap().unwrap(),
        Err(_) => {
            drop(second);
            create.await.unwrap().unwrap()
        }
    };
    assert!(
        host.get(info.id).is_some(),
        "a created session is shown once its creation is answered"
    );
}

/// The panic hook names the session a thread steps, and only while it
/// steps: a caught panic leaves no stale name for the thread's next panic.
#[test]
fn a_panic_is_put_down_to_the_session_being_stepped() {
    assert_eq!(stepping(), None);
    let stepped = std::panic::catch_unwind(|| {
        let _stepping = hosted::Stepping::start(SessionId(7));
        assert_eq!(stepping(), Some(SessionId(7)));
        panic!("the step fails");
    });
    assert!(stepped.is_err());
    assert_eq!(stepping(), None);
}

/// Ticks on time are not enough: when the net loop says snapshots wait
/// longer than a snapshot period for it, new sessions are refused (and
/// `/ready` says so) until it catches up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_waiting_for_the_network_refuse_new_sessions() {
    let (feed, net_end) = rampart_net::gateway::feed_channel();
    let host = start_host_feeding(5, Some(feed));
    host.create(bots("small", 1)).await.unwrap();
    host.run_until(6, |host| host.status().snapshots_on_time)
        .await;

    // 20 snapshots a second: a period of 50 ms.
    net_end.report_snapshot_wait(Duration::from_millis(120));
    let refused = host.create(bots("small", 1)).await.unwrap_err();
    assert!(
        matches!(refused, HostError::Overloaded(Overload::SnapshotsLate)),
        "{refused}"
    );
    assert!(refused.to_string().contains("network thread"), "{refused}");
    host.run_until(6, |host| !host.status().snapshots_on_time)
        .await;
    assert!(
        host.status().ticks_on_time,
        "the ticks themselves keep time"
    );

    net_end.report_snapshot_wait(Duration::from_millis(20));
    host.create(bots("small", 1)).await.unwrap();
    host.run_until(6, |host| host.status().snapshots_on_time)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_and_validation_refuse_clearly() {
    let host = start_host(2);
    host.create(bots("small", 1)).await.unwrap();
    let mut lobby = bots("small", 1);
    lobby.max_players = 2;
    let info = host.create(lobby).await.unwrap();
    assert_eq!(
        info.state,
        SessionState::Lobby,
        "a free seat keeps the session in the lobby"
    );
    assert!(matches!(
        host.create(bots("small", 1)).await,
        Err(HostError::Full { max: 2 })
    ));

    let host = start_host(5);
    let error = host.create(bots("nowhere", 1)).await.unwrap_err();
    assert!(
        matches!(&error, HostError::Invalid(message) if message.contains("nowhere")),
        "{error}"
    );
    let mut too_many = bots("small", 3);
    too_many.max_players = 2;
    assert!(matches!(
        host.create(too_many).await,
        Err(HostError::Invalid(_))
    ));
    let mut nine = bots("small", 1);
    nine.max_players = 9;
    assert!(matches!(
        host.create(nine).await,
        Err(HostError::Invalid(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joining_fills_the_lobby_and_starts_the_game() {
    let host = start_host(5);
    let mut request = bots("small", 1);
    request.max_players = 2;
    let info = host.create(request).await.unwrap();
    let player = host.join(info.id, "alice").await.unwrap();
    assert_eq!(player, PlayerId(1));
    assert_eq!(
        host.join(info.id, "alice").await.unwrap(),
        player,
        "a person who holds a seat gets it back"
    );
    assert!(matches!(
        host.join(info.id, "bob").await,
        Err(HostError::SessionFull)
    ));
    // As the net thread reports a connection (its commands are answered on
    // the feed: see the next test).
    let connecting = host.clone();
    tokio::task::spawn_blocking(move || {
        connecting.connection_changed_blocking(info.id, player, true);
    })
    .await
    .unwrap();
    host.run_until(5, |host| {
        host.get(info.id)
            .is_some_and(|info| info.state == SessionState::Running && info.players == 1)
    })
    .await;
}

/// A network client's commands are answered on the feed with the identity
/// they came with, exactly once, whether or not a person is connected at
/// that tick (none is here: the player never connected); a command for a
/// seat that is not a person's is answered too, with a refusal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_commands_are_answered_on_the_feed_by_identity_exactly_once() {
    use rampart_net::gateway::{CommandOrigin, GameLink};
    use rampart_net::tickets::SeatRef;
    use rampart_sim::Rejection;

    let (feed, answers) = rampart_net::gateway::feed_channel();
    let host = start_host_feeding(5, Some(feed));
    let mut request = bots("small", 1);
    request.max_players = 2;
    let info = host.create(request).await.unwrap();
    let player = host.join(info.id, "alice").await.unwrap();
    let seat = SeatRef {
        session: info.id.0,
        player: player.0,
    };
    let bot_seat = SeatRef {
        session: info.id.0,
        player: 0,
    };
    let origin = |seq| CommandOrigin { client: 77, seq };
    assert!(GameLink::submit(
        &host.host,
        seat,
        Command::Ready,
        origin(5)
    ));
    assert!(GameLink::submit(
        &host.host,
        seat,
        Command::Ready,
        origin(6)
    ));
    assert!(GameLink::submit(
        &host.host,
        bot_seat,
        Command::Ready,
        origin(7)
    ));
    // Commands queued now are applied in the next tick; run a few more to
    // see that nothing is answered twice.
    host.clock.advance(10).await;
    let mut answered: Vec<_> = answers
        .try_iter()
        .filter_map(|feed| match feed {
            Feed::Answer {
                session,
                player,
                origin,
                result,
            } => Some((session, player, origin.client, origin.seq, result)),
            _ => None,
        })
        .collect();
    answered.sort_by_key(|answer| answer.3);
    let session = info.id.0;
    assert_eq!(
        answered,
        [
            (session, 1, 77, 5, Ok(())),
            (session, 1, 77, 6, Err(Rejection::AlreadyReady)),
            (session, 0, 77, 7, Err(Rejection::UnknownPlayer)),
        ],
        "each command answered once, with its identity"
    );
}

/// A cleared board is a checkpoint of its own: with timed saves an hour
/// apart, the game stopped right after the tick its board cleared in is
/// found in the database at that very tick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wave_end_is_checkpointed() {
    use rampart_net::gateway::{CommandOrigin, GameLink};
    use rampart_net::tickets::SeatRef;
    use rampart_sim::Event;

    let database = embedded_database().await;
    // The feed carries a session's events while a person is connected.
    let (feed, published) = rampart_net::gateway::feed_channel();
    let (host, persister, _) = start_host_saving_every(
        content(),
        10,
        &database,
        "waves",
        Duration::from_secs(3600),
        Some(feed),
    );
    let mut request = bots("skirmish", 1);
    request.max_players = 2;
    let session = host.create(request).await.unwrap().id;
    let player = host.join(session, "alice").await.unwrap();
    let connecting = host.host.clone();
    tokio::task::spawn_blocking(move || {
        connecting.connection_changed_blocking(session, player, true);
        let seat = SeatRef {
            session: session.0,
            player: player.0,
        };
        let origin = CommandOrigin { client: 1, seq: 1 };
        assert!(GameLink::submit(&connecting, seat, Command::Ready, origin));
    })
    .await
    .unwrap();
    let mut cleared = None;
    for _ in 0..60 * 600 {
        host.clock.advance(1).await;
        for feed in published.try_iter() {
            if let Feed::Events { tick, events, .. } = feed
                && events
                    .iter()
                    .any(|event| matches!(event, Event::WaveCleared { .. }))
            {
                cleared = Some(tick);
            }
        }
        if cleared.is_some() {
            break;
        }
    }
    let cleared = cleared.expect("a wave cleared within ten minutes of play");
    let info = host.get(session).unwrap();
    assert!(info.outcome.is_none(), "the game went on: {info:?}");
    // The save after the step that cleared the board (the persistence
    // writer keeps wall-clock time: it writes within a few rounds).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let checkpoint = database.load_checkpoint(session.0).await.unwrap();
        if checkpoint.as_ref().is_some_and(|c| c.tick == cleared + 1) {
            break;
        }
        let tick = checkpoint.map(|c| c.tick);
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint at tick {}: {tick:?}",
            cleared + 1
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let written = persister.shutdown(Duration::from_secs(10)).await;
    assert_eq!(written.unwritten_sessions, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_session_resumes_exactly_on_a_new_host() {
    let content = content();
    let database = embedded_database().await;
    let (host, persister) = start_persisting_host(content.clone(), 10, &database, "first");
    let ended = host.create(bots("small", 2)).await.unwrap();
    let drained = host.create(bots("reference", 4)).await.unwrap();
    let mut lobby = bots("highlands", 1);
    lobby.max_players = 2;
    let lobby = host.create(lobby).await.unwrap();
    host.run_until(10, |host| {
        host.get(ended.id).is_some_and(|info| info.tick > 5)
    })
    .await;
    let info = host.end(ended.id).await.unwrap();
    assert_eq!(info.end_reason, Some("ended_by_admin"));
    assert!(matches!(host.end(ended.id).await, Err(HostError::NotFound)));
    host.run_until(100, |host| {
        host.get(drained.id).is_some_and(|info| info.tick > 90)
    })
    .await;
    let report = host.drain().await.unwrap();
    assert_eq!(
        report,
        DrainReport {
            sessions: 1,
            handed_over: 1,
            failed: 0
        },
        "the running session is handed over; the lobby just ends"
    );
    let written = persister.shutdown(Duration::from_secs(10)).await;
    assert_eq!(written.unwritten_sessions, 0);
    assert!(matches!(
        host.create(bots("small", 1)).await,
        Err(HostError::Draining)
    ));

    // The admin-ended session is history; the lobby never reached the store.
    let record = database.session(ended.id.0).await.unwrap().unwrap();
    assert_eq!(record.row.state, StoredState::Ended);
    assert_eq!(record.end_reason.as_deref(), Some("ended_by_admin"));
    assert!(database.session(lobby.id.0).await.unwrap().is_none());

    // The drained session's checkpoint is the state it stopped in, and its
    // log from the start replays to that very state.
    let checkpoint = database
        .load_checkpoint(drained.id.0)
        .await
        .unwrap()
        .unwrap();
    assert!(checkpoint.tick > 90);
    let (_, log) = crate::stores::recorded_log(&database, &content, drained.id)
        .await
        .unwrap();
    let replayed = log.replay(content.clone()).unwrap();
    assert_eq!(replayed.tick(), checkpoint.tick);
    assert_eq!(replayed.state_hash(), checkpoint.state_hash);

    // A restarted server (a new host on the same database) resumes it.
    let (host, persister) = start_persisting_host(content.clone(), 10, &database, "second");
    let adopted = adopt_orphans(&host, &database, "second").await;
    assert_eq!(adopted, 1);
    host.run_until(40, |host| {
        host.get(drained.id).is_some_and(|info| {
            info.state == SessionState::Running && info.tick > checkpoint.tick + 30
        })
    })
    .await;
    let record = database.session(drained.id.0).await.unwrap().unwrap();
    assert_eq!(
        (record.owner_instance.as_deref(), record.owner_epoch),
        (Some("second"), 2),
        "the new owner claimed it under a new epoch"
    );
    host.drain().await.unwrap();
    let written = persister.shutdown(Duration::from_secs(10)).await;
    assert_eq!(written.unwritten_sessions, 0);
}

/// A server restarted on edited assets (or one that reloaded them) resumes
/// a saved session on the content it started with, read back from the
/// database, while new sessions get the new content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_resumes_on_its_own_content_after_the_assets_changed() {
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let first = crate::content::Loaded::read(&assets).unwrap();
    let database = embedded_database().await;
    crate::content::ContentVersions::new(database.clone())
        .record(&first)
        .await
        .unwrap();
    let (host, persister) = start_persisting_host(first.content.clone(), 10, &database, "first");
    let session = host.create(bots("small", 2)).await.unwrap();
    host.run_until(100, |host| {
        host.get(session.id).is_some_and(|info| info.tick > 60)
    })
    .await;
    host.drain().await.unwrap();
    let written = persister.shutdown(Duration::from_secs(10)).await;
    assert_eq!(written.unwritten_sessions, 0);

    // The designer makes arrows dearer; the server restarts on that.
    let edited = std::env::temp_dir().join(format!("rampart-edited-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&edited);
    rampart_tests::copy_dir(&assets, &edited);
    let towers = std::fs::read_to_string(edited.join("towers.toml")).unwrap();
    std::fs::write(
        edited.join("towers.toml"),
        towers.replacen("cost = 50", "cost = 65", 1),
    )
    .unwrap();
    let second = crate::content::Loaded::read(&edited).unwrap();
    assert_ne!(second.content.version, first.content.version);
    let (host, persister) = start_persisting_host(second.content.clone(), 10, &database, "second");
    let adopted = adopt_orphans(&host, &database, "second").await;
    assert_eq!(adopted, 1, "the session of the old content is resumed");
    let fresh = host.create(bots("small", 2)).await.unwrap();
    host.run_until(100, |host| {
        host.get(session.id).is_some_and(|info| info.tick > 90)
    })
    .await;
    let resumed = host.get(session.id).unwrap();
    assert_eq!(
        resumed.content_version,
        ContentVersion(first.content.version)
    );
    assert_eq!(
        fresh.content_version,
        ContentVersion(second.content.version)
    );
    host.drain().await.unwrap();
    persister.shutdown(Duration::from_secs(10)).await;
    let _ = std::fs::remove_dir_all(&edited);
}
