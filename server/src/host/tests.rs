//! The host in process: sessions with bots tick on the clock, one crashing
//! session leaves the others ticking, capacity and validation refuse
//! clearly, and a drain hands every session over.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// Keeps hand-overs in memory so the test can see them.
#[derive(Clone, Default)]
struct Remembered(Arc<Mutex<Vec<HandOverRecord>>>);

impl HandOver for Remembered {
    fn hand_over(&mut self, record: &HandOverRecord) -> Result<(), HandOverError> {
        self.0.lock().unwrap().push(record.clone());
        Ok(())
    }
}

fn start_host(max_sessions: usize) -> (HostHandle, Remembered) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let content = Arc::new(rampart_sim::content::load_dir(&dir).unwrap());
    let config = HostConfig {
        max_sessions,
        tick_hz: 60,
        idle_timeout: Duration::from_secs(300),
        overrun_budget_pct: 80,
        ended_kept: 100,
        snapshot_hz: 20,
        reconnect_grace: Duration::from_secs(60),
    };
    let store = Remembered::default();
    (
        HostHandle::spawn(content, config, Box::new(store.clone()), None).unwrap(),
        store,
    )
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

/// Waits (up to 5 s) for the host's published view to satisfy `done`: it is
/// published after the tick that applied a request.
pub(crate) async fn wait_for(mut done: impl FnMut() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached in 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_session_is_isolated() {
    let (host, _) = start_host(10);
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
    wait_for(|| host.get(ids[2]).is_some_and(|info| info.tick > 10)).await;
    host.inject_panic(ids[0]).await;
    wait_for(|| host.status().crashed == 1).await;
    let crashed = host.get(ids[0]).unwrap();
    assert_eq!(
        (crashed.state, crashed.end_reason),
        (SessionState::Ended, Some("crashed"))
    );
    let before = host.get(ids[1]).unwrap().tick;
    wait_for(|| host.get(ids[1]).unwrap().tick > before + 30).await;
    assert_eq!(host.status().running, 2, "the other sessions keep ticking");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_and_validation_refuse_clearly() {
    let (host, _) = start_host(2);
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

    let (host, _) = start_host(5);
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
    let (host, _) = start_host(5);
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
    host.connected(info.id, player).await;
    wait_for(|| {
        host.get(info.id)
            .is_some_and(|info| info.state == SessionState::Running && info.players == 1)
    })
    .await;
    let mut notices = host.subscribe(info.id).await.unwrap();
    host.submit(info.id, player, Command::Ready).await.unwrap();
    let accepted = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(SessionNotice::Events { events, .. }) = notices.recv().await
                && events.iter().any(|event| {
                    matches!(
                        event,
                        Event::CommandResult {
                            player: PlayerId(1),
                            result: Ok(()),
                            ..
                        }
                    )
                })
            {
                return;
            }
        }
    })
    .await;
    assert!(
        accepted.is_ok(),
        "the person's Ready is answered on the session's notices"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ending_and_draining_hand_sessions_over() {
    let (host, store) = start_host(10);
    let first = host.create(bots("small", 2)).await.unwrap();
    let second = host.create(bots("reference", 4)).await.unwrap();
    host.create(bots("highlands", 2)).await.unwrap();
    let ended = host.end(first.id).await.unwrap();
    assert_eq!(ended.end_reason, Some("ended_by_admin"));
    assert!(matches!(host.end(first.id).await, Err(HostError::NotFound)));
    wait_for(|| host.get(second.id).is_some_and(|info| info.tick > 5)).await;
    let report = host.drain().await.unwrap();
    assert_eq!(
        report,
        DrainReport {
            sessions: 2,
            handed_over: 2,
            failed: 0
        }
    );
    let records = store.0.lock().unwrap().clone();
    assert_eq!(
        records.len(),
        3,
        "the admin-ended session and both drained ones"
    );
    // A handed-over log rebuilds the session exactly.
    let record = records
        .iter()
        .find(|record| record.id == second.id)
        .unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let content = Arc::new(rampart_sim::content::load_dir(&dir).unwrap());
    let log = rampart_sim::log::CommandLog::parse(&record.log, &content).unwrap();
    let mut replayed = log.replay(content).unwrap();
    assert_eq!(replayed.state_hash(), record.state_hash);
    assert!(matches!(
        host.create(bots("small", 1)).await,
        Err(HostError::Draining)
    ));
    assert!(
        matches!(host.join(second.id, "carol").await, Err(HostError::Stopped)),
        "the tick thread is gone"
    );
}
