//! Sessions outliving their server: two real server processes on one
//! PostgreSQL and one Redis. A killed instance's sessions are adopted by the
//! other and finish there, bit-identical to an uninterrupted replay; a
//! drained instance's sessions move with zero lost ticks; a paused old owner
//! that wakes up is fenced out; a Redis outage costs the game nothing.
//! Players who ask the instance that does not run their session are sent
//! on to the one that does, or asked to retry while it changes owner.
//!
//! The tests run one at a time (they are timing-sensitive and each runs two
//! servers) and skip outside CI when PostgreSQL or Redis is missing.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rampart_net::protocol::{ByeReason, WireEvent};
use rampart_sim::Command as GameCommand;
use rampart_sim::grid::Cell;
use rampart_tests::player::{Player, run_until};
use rampart_tests::server::{Server, metric};
use rampart_tests::stores::{Proxy, TestStores};
use rampart_tests::{quick_assets, rampart_bin, wait_until};
use serde_json::json;

/// One fleet test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Every instance of a fleet shares the key that signs reconnect tokens.
const NET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

const TOKEN: &str = "fleet-admin";

/// Ticks per second of the servers (the default).
const TICK_HZ: u64 = 30;

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One instance of the fleet, on the default persistence settings.
fn instance(stores: &TestStores, assets: &Path, name: &str, redis_url: &str) -> Server {
    Server::start(&[
        "--assets",
        assets.to_str().unwrap(),
        "--database-url",
        &stores.database_url,
        "--redis-url",
        redis_url,
        "--redis-prefix",
        &stores.redis_prefix,
        "--instance-id",
        name,
        "--net-key",
        NET_KEY,
        "--admin-token",
        TOKEN,
    ])
}

/// Two sprint sessions of two players each (one UDP, one WebSocket), joined
/// on `server` and playing: each player readies and builds.
fn players_in_two_sessions(server: &Server) -> Vec<Player> {
    let body = json!({"map": "sprint", "max_players": 2});
    let mut players: Vec<Player> = (0..4)
        .map(|index| Player::connect(Player::join(server, "/v1/join", &body), index % 2 == 1))
        .collect();
    let sessions: std::collections::HashSet<_> = players
        .iter()
        .map(|player| player.seat().session_id.clone())
        .collect();
    assert_eq!(sessions.len(), 2, "matchmaking filled two sessions");
    assert!(
        run_until(
            &mut players,
            Duration::from_secs(15),
            |_, _| {},
            |player| player.client.world().tick > 30
        ),
        "the games did not start"
    );
    for player in &mut players {
        player.command(GameCommand::Ready);
    }
    players
}

/// Keeps the players building: every second or so a player asks for a
/// tower on its side of the road (refusals are commands too: they are
/// logged and replayed like any other).
fn keep_building(index: usize, player: &mut Player, sent_at: &mut HashMap<usize, Instant>) {
    let due = sent_at
        .get(&index)
        .is_none_or(|at| at.elapsed() > Duration::from_millis(900));
    if due && player.client.welcome().is_some() && !player.done() {
        let seat = u16::from(player.seat().player_id);
        let step = player.sent.len() as u16 + player.results.len() as u16;
        let kind = rampart_sim::content::TowerKindId(0);
        player.command(GameCommand::PlaceTower {
            kind,
            cell: Cell::new(1 + (step + 3 * seat) % 8, if seat == 0 { 1 } else { 3 }),
        });
        sent_at.insert(index, Instant::now());
    }
}

/// The last tick each player saw from its old server.
fn last_ticks(players: &[Player]) -> Vec<u64> {
    players
        .iter()
        .map(|player| player.checksums.keys().next_back().copied().unwrap_or(0))
        .collect()
}

/// Reconnects every player to `server` with its reconnect token, as a
/// client behind a load balancer would: until the session is adopted there,
/// `server` sends it to the old owner (307, refused while that one is dead
/// or gone) or asks it to retry (503 with `Retry-After`); never 404. Returns
/// how long that took.
fn reconnect_all(server: &Server, players: &mut Vec<Player>, limit: Duration) -> Duration {
    let started = Instant::now();
    let mut moved = Vec::new();
    for (index, player) in players.iter().enumerate() {
        let body = json!({"reconnect_token": player.seat().reconnect_token});
        let join = loop {
            let reply = server.post("/v1/join", &body, None);
            if reply.status == 200 {
                break serde_json::from_str(&reply.body).unwrap();
            }
            match reply.status {
                307 => assert!(reply.header("location").is_some(), "{reply:?}"),
                503 => assert_eq!(reply.header("retry-after"), Some("1"), "{reply:?}"),
                _ => panic!(
                    "player {index} rejoining: {reply:?}; logs: {:#?}",
                    tail(&server.logs())
                ),
            }
            assert!(
                started.elapsed() < limit,
                "session of player {index} not adopted within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        moved.push(Player::connect(join, index % 2 == 1));
    }
    let took = started.elapsed();
    *players = moved;
    took
}

/// The end of a server's log, for failure messages.
fn tail(logs: &[String]) -> &[String] {
    &logs[logs.len().saturating_sub(40)..]
}

/// The tick each session resumed at, from the adopter's log.
fn resumed_ticks(server: &Server) -> HashMap<String, u64> {
    server
        .logs()
        .iter()
        .filter(|line| line.contains("resumed a session whose owner is gone"))
        .filter_map(|line| {
            Some((
                field(line, "session")?,
                field(line, "resumed_tick")?.parse().ok()?,
            ))
        })
        .collect()
}

/// `name=value` from a log line.
fn field(line: &str, name: &str) -> Option<String> {
    let start = line.find(&format!("{name}="))? + name.len() + 1;
    let value = line[start..].split_whitespace().next()?;
    Some(value.trim_matches('"').to_owned())
}

/// Plays every player to the end of its game.
fn finish(players: &mut [Player], sent_at: &mut HashMap<usize, Instant>) {
    let finished = run_until(
        players,
        Duration::from_secs(90),
        |index, player| keep_building(index, player, sent_at),
        Player::done,
    );
    assert!(finished, "the games did not end");
    for (index, player) in players.iter().enumerate() {
        assert!(
            matches!(player.bye, Some(ByeReason::SessionEnded(_))),
            "player {index}: bye {:?}, error {:?}",
            player.bye,
            player.error
        );
        assert_eq!(player.client.stats().desyncs, 0, "player {index} desynced");
    }
}

/// Exports the session's final command log from the database and replays
/// it from the start: the replay must reach the state hash the last owner
/// recorded at the end (`rampart replay` exits 1 on a mismatch). Returns
/// the replay's outcome (`victory` or `defeat`).
fn assert_replays_to_final_hash(
    stores: &TestStores,
    assets: &Path,
    session: &str,
    dir: &Path,
) -> String {
    let exported = Command::new(rampart_bin())
        .args([
            "export-log",
            session,
            "--database-url",
            &stores.database_url,
        ])
        .args(["--assets", assets.to_str().unwrap()])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        exported.status.success(),
        "export-log: {}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let log = String::from_utf8(exported.stdout).unwrap();
    assert!(log.contains("\nend "), "a finished session's log: {log}");
    let file = dir.join(format!("{session}.log"));
    std::fs::write(&file, &log).unwrap();
    let replayed = Command::new(rampart_bin())
        .args([
            "replay",
            file.to_str().unwrap(),
            "--assets",
            assets.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        replayed.status.success(),
        "replay of {session} did not reach the recorded hash: {}{}",
        String::from_utf8_lossy(&replayed.stdout),
        String::from_utf8_lossy(&replayed.stderr)
    );
    String::from_utf8_lossy(&replayed.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-fleet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_killed_instances_sessions_are_adopted_and_finish_exactly() {
    let _serial = serial();
    let Some(stores) = TestStores::new("crash") else {
        return;
    };
    let assets = quick_assets("fleet-crash");
    let mut a = instance(&stores, &assets, "a", &stores.redis_url);
    let b = instance(&stores, &assets, "b", &stores.redis_url);
    let mut players = players_in_two_sessions(&a);
    let mut sent_at = HashMap::new();
    // Asked for A's session, B sends the player on to A, where it is full.
    let session = &players[0].seat().session_id;
    let invite = format!("/v1/sessions/{session}/join");
    let asked_b = b.post(&invite, &json!({}), None);
    assert_eq!(asked_b.status, 307, "{asked_b:?}");
    assert_eq!(
        asked_b.header("location"),
        Some(format!("http://{}{invite}", a.addr).as_str())
    );
    assert_eq!(a.post(&invite, &json!({}), None).status, 409);
    // A few seconds of play with commands on A, then A dies without a word.
    run_until(
        &mut players,
        Duration::from_secs(3),
        |index, player| keep_building(index, player, &mut sent_at),
        |_| false,
    );
    a.signal("KILL");
    a.wait_exit(Duration::from_secs(5)).unwrap();
    let seen_on_a = last_ticks(&players);
    let sessions: Vec<String> = players
        .iter()
        .map(|player| player.seat().session_id.clone())
        .collect();

    let took = reconnect_all(&b, &mut players, Duration::from_secs(10));
    eprintln!("adopted and reconnected {took:?} after the kill");
    let resumed = resumed_ticks(&b);
    for (index, session) in sessions.iter().enumerate() {
        let resumed_at = resumed[session];
        let lost = seen_on_a[index].saturating_sub(resumed_at);
        eprintln!(
            "player {index}: last tick seen on A {}, resumed at {resumed_at}: {lost} ticks lost",
            seen_on_a[index]
        );
        // At most one snapshot interval (1 s) plus the write-behind delay
        // (the commands' 100 ms hand-over and the writer's 100 ms flush).
        assert!(
            lost <= TICK_HZ + TICK_HZ / 5,
            "player {index}: {lost} ticks lost"
        );
    }
    let metrics = b.get("/metrics").body;
    assert_eq!(
        metric(&metrics, "rampart_sessions_adopted_total{source=\"redis\"}"),
        Some(2.0)
    );
    finish(&mut players, &mut sent_at);

    let dir = scratch("crash");
    let mut unique = sessions.clone();
    unique.sort();
    unique.dedup();
    let database = stores.database();
    for session in &unique {
        let info = b.get(&format!("/v1/sessions/{session}")).json();
        assert!(info["outcome"].is_string(), "{info}");
        // The end is written behind the game: wait for it, then replay.
        let id = u64::from_str_radix(session, 16).unwrap();
        let ended = Instant::now();
        let record = loop {
            let record = stores.block_on(database.session(id)).unwrap().unwrap();
            if record.row.state == rampart_persistence::RowState::Ended {
                break record;
            }
            assert!(
                ended.elapsed() < Duration::from_secs(5),
                "session {session} not recorded as ended; logs: {:#?}",
                tail(&b.logs())
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(record.owner_instance.as_deref(), Some("b"));
        assert_eq!(record.owner_epoch, 2);
        assert_eq!(record.end_reason.as_deref(), info["outcome"].as_str());
        assert_replays_to_final_hash(&stores, &assets, session, &dir);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_drained_instances_sessions_move_with_zero_lost_ticks() {
    let _serial = serial();
    let Some(stores) = TestStores::new("drain") else {
        return;
    };
    let assets = quick_assets("fleet-drain");
    let mut a = instance(&stores, &assets, "a", &stores.redis_url);
    let b = instance(&stores, &assets, "b", &stores.redis_url);
    let mut players = players_in_two_sessions(&a);
    let mut sent_at = HashMap::new();
    run_until(
        &mut players,
        Duration::from_secs(3),
        |index, player| keep_building(index, player, &mut sent_at),
        |_| false,
    );
    a.signal("TERM");
    // The players hear the goodbye, then find their sessions on B.
    run_until(
        &mut players,
        Duration::from_secs(10),
        |_, _| {},
        Player::done,
    );
    assert_eq!(
        a.wait_exit(Duration::from_secs(30)).and_then(|s| s.code()),
        Some(0)
    );
    let handed: HashMap<String, u64> = a
        .logs()
        .iter()
        .filter(|line| line.contains("session handed over"))
        .filter_map(|line| Some((field(line, "session")?, field(line, "tick")?.parse().ok()?)))
        .collect();
    assert_eq!(handed.len(), 2, "{:#?}", a.logs());
    let sessions: Vec<String> = players
        .iter()
        .map(|player| player.seat().session_id.clone())
        .collect();
    let took = reconnect_all(&b, &mut players, Duration::from_secs(10));
    eprintln!("drained sessions adopted and reconnected {took:?} after A's exit");
    let resumed = resumed_ticks(&b);
    for session in &sessions {
        assert_eq!(
            resumed[session], handed[session],
            "session {session} resumed exactly where A stopped it"
        );
    }
    finish(&mut players, &mut sent_at);
    // Once its end is written, a finished session's seat is gone for good.
    let body = json!({"reconnect_token": players[0].seat().reconnect_token});
    wait_until(
        Duration::from_secs(5),
        "a 410 for the ended session",
        || {
            let reply = b.post("/v1/join", &body, None);
            reply.status == 410 && reply.json()["error"] == "the session has ended"
        },
    );
    let dir = scratch("drain");
    let mut unique = sessions.clone();
    unique.sort();
    unique.dedup();
    for session in &unique {
        assert_replays_to_final_hash(&stores, &assets, session, &dir);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A rolling upgrade as Kubernetes does it: the new pod (B) comes up while
/// players are in their games on the old one (A), then A gets SIGTERM.
/// Each client goes back through the join API with its reconnect token as
/// soon as A says goodbye, is sent on or asked to retry until B has adopted
/// its session, and plays to the end there; every game ends as an
/// uninterrupted replay of its command log ends.
#[test]
fn a_rolling_upgrade_moves_every_player_to_the_new_pod_and_the_games_end_as_replayed() {
    let _serial = serial();
    let Some(stores) = TestStores::new("rolling") else {
        return;
    };
    let assets = quick_assets("fleet-rolling");
    let mut a = instance(&stores, &assets, "a", &stores.redis_url);
    let mut players = players_in_two_sessions(&a);
    let mut sent_at = HashMap::new();
    run_until(
        &mut players,
        Duration::from_secs(2),
        |index, player| keep_building(index, player, &mut sent_at),
        |_| false,
    );
    let b = instance(&stores, &assets, "b", &stores.redis_url);
    let sessions: Vec<String> = players
        .iter()
        .map(|player| player.seat().session_id.clone())
        .collect();
    a.signal("TERM");
    run_until(
        &mut players,
        Duration::from_secs(15),
        |_, _| {},
        Player::done,
    );
    for (index, player) in players.iter().enumerate() {
        assert!(
            player
                .events
                .iter()
                .any(|event| matches!(event, WireEvent::Draining))
                && player.bye.is_some(),
            "player {index} was told of the drain, then goodbye: {:?} ({:?})",
            player.bye,
            player.error
        );
    }
    let left: Vec<Instant> = players
        .iter()
        .map(|player| player.last_snapshot_at.unwrap())
        .collect();
    reconnect_all(&b, &mut players, Duration::from_secs(20));
    assert!(
        run_until(
            &mut players,
            Duration::from_secs(10),
            |_, _| {},
            |player| player.first_snapshot_at.is_some()
        ),
        "every player sees its game on B"
    );
    let mut away: Vec<Duration> = players
        .iter()
        .zip(&left)
        .map(|(player, left)| player.first_snapshot_at.unwrap() - *left)
        .collect();
    away.sort();
    eprintln!(
        "rolling upgrade: players away from their games: min {:?}, median {:?}, max {:?}",
        away[0],
        away[away.len() / 2],
        away[away.len() - 1]
    );
    assert_eq!(
        a.wait_exit(Duration::from_secs(30)).and_then(|s| s.code()),
        Some(0),
        "the old pod drains cleanly"
    );
    for (player, session) in players.iter().zip(&sessions) {
        assert_eq!(&player.seat().session_id, session, "back in the same game");
    }
    finish(&mut players, &mut sent_at);
    // The exported log is the final one once each end is written (the
    // seat then answers 410).
    for player in &players {
        let body = json!({"reconnect_token": player.seat().reconnect_token});
        wait_until(Duration::from_secs(5), "the end written", || {
            b.post("/v1/join", &body, None).status == 410
        });
    }
    let dir = scratch("rolling");
    for (index, player) in players.iter().enumerate() {
        let replayed = assert_replays_to_final_hash(&stores, &assets, &sessions[index], &dir);
        let seen = match player.outcome() {
            Some(true) => "victory",
            Some(false) => "defeat",
            None => "undecided",
        };
        assert_eq!(seen, replayed, "player {index} saw the replay's outcome");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Creates `count` bot-only sessions on `server`.
fn bot_sessions(server: &Server, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let reply = server.post(
                "/v1/sessions",
                &json!({"map": "reference", "max_players": 2, "bots": 2}),
                Some(TOKEN),
            );
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.json()["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_paused_old_owner_cannot_overwrite_the_new_owners_state() {
    let _serial = serial();
    let Some(stores) = TestStores::new("fence") else {
        return;
    };
    let assets = quick_assets("fleet-fence");
    let a = instance(&stores, &assets, "a", &stores.redis_url);
    let b = instance(&stores, &assets, "b", &stores.redis_url);
    let sessions = bot_sessions(&a, 2);
    let path = |session: &str| format!("/v1/sessions/{session}");
    wait_until(Duration::from_secs(10), "sessions ticking", || {
        a.get(&path(&sessions[0])).json()["tick"].as_u64().unwrap() > 60
    });
    // A freezes (a long GC pause, a stuck VM): its leases lapse and B adopts.
    a.signal("STOP");
    let adopted = Instant::now();
    while !sessions
        .iter()
        .all(|session| b.get(&path(session)).status == 200)
    {
        assert!(
            adopted.elapsed() < Duration::from_secs(10),
            "adoption by B not within 10 s; logs: {:#?}",
            tail(&b.logs())
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let database = stores.database();
    let id = |session: &str| u64::from_str_radix(session, 16).unwrap();
    // B writes its first checkpoint under the new epoch at once.
    wait_until(Duration::from_secs(5), "B's checkpoints", || {
        sessions.iter().all(|session| {
            stores
                .block_on(database.load_checkpoint(id(session)))
                .unwrap()
                .is_some_and(|checkpoint| checkpoint.epoch == 2)
        })
    });
    // A wakes up still believing it owns them: every write it tries is
    // refused, and it stops running them.
    a.signal("CONT");
    wait_until(Duration::from_secs(10), "A stopping the sessions", || {
        sessions
            .iter()
            .all(|session| a.get(&path(session)).json()["end_reason"] == "moved")
    });
    let metrics = a.get("/metrics").body;
    assert!(
        metric(&metrics, "rampart_persist_dropped_total{reason=\"fenced\"}").unwrap_or(0.0) >= 2.0,
        "A's refused writes are counted"
    );
    let hot = stores.hot();
    for session in &sessions {
        let record = stores
            .block_on(database.session(id(session)))
            .unwrap()
            .unwrap();
        assert_eq!(record.owner_instance.as_deref(), Some("b"));
        assert_eq!(record.owner_epoch, 2);
        let checkpoint = stores
            .block_on(database.load_checkpoint(id(session)))
            .unwrap()
            .unwrap();
        assert_eq!(checkpoint.epoch, 2, "the database holds B's state");
        let state = stores.block_on(hot.load(id(session))).unwrap().unwrap();
        assert_eq!(state.epoch, 2, "Redis holds B's state");
        assert_eq!(
            stores
                .block_on(hot.lease_holder(id(session)))
                .unwrap()
                .as_deref(),
            Some("b")
        );
        // And B goes on ticking it.
        let before = b.get(&path(session)).json()["tick"].as_u64().unwrap();
        wait_until(Duration::from_secs(5), "B ticking", || {
            b.get(&path(session)).json()["tick"].as_u64().unwrap() > before + 30
        });
    }
}

#[test]
fn a_redis_outage_costs_the_game_nothing_and_the_hot_state_catches_up() {
    let _serial = serial();
    let Some(stores) = TestStores::new("outage") else {
        return;
    };
    let assets = quick_assets("fleet-outage");
    let upstream = stores
        .redis_url
        .trim_start_matches("redis://")
        .trim_end_matches('/');
    let proxy = Proxy::start(upstream);
    let a = instance(
        &stores,
        &assets,
        "a",
        &format!("redis://127.0.0.1:{}", proxy.port),
    );
    let sessions = bot_sessions(&a, 10);
    let path = |session: &str| format!("/v1/sessions/{session}");
    wait_until(Duration::from_secs(10), "sessions ticking", || {
        a.get(&path(&sessions[0])).json()["tick"].as_u64().unwrap() > 60
    });
    let overruns = |text: &str| metric(text, "rampart_tick_overruns_total").unwrap_or(0.0);
    let before = overruns(&a.get("/metrics").body);

    proxy.cut();
    let mut saw_down = false;
    let mut saw_backlog = false;
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(6) {
        let metrics = a.get("/metrics").body;
        saw_down |= metric(&metrics, "rampart_store_up{store=\"redis\"}") == Some(0.0);
        saw_backlog |= metric(&metrics, "rampart_persist_pending_sessions").unwrap_or(0.0) > 0.0;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(saw_down, "the breaker shows Redis down in /metrics");
    assert!(saw_backlog, "the unwritten sessions show in /metrics");
    let ready = a.get("/ready").json();
    assert_eq!(ready["stores"]["redis"], false, "{ready}");
    assert_eq!(ready["ready"], true, "games go on: {ready}");
    let during = overruns(&a.get("/metrics").body);
    assert_eq!(during, before, "no tick overran during the outage");

    proxy.restore();
    let restored_ticks: Vec<u64> = sessions
        .iter()
        .map(|session| a.get(&path(session)).json()["tick"].as_u64().unwrap())
        .collect();
    let hot = stores.hot();
    wait_until(Duration::from_secs(15), "the hot state catching up", || {
        sessions
            .iter()
            .zip(&restored_ticks)
            .all(|(session, &tick)| {
                let id = u64::from_str_radix(session, 16).unwrap();
                stores
                    .block_on(hot.load(id))
                    .ok()
                    .flatten()
                    .and_then(|state| state.snapshot)
                    .is_some_and(|snapshot| snapshot.tick >= tick)
            })
    });
    let metrics = a.get("/metrics").body;
    assert_eq!(
        metric(&metrics, "rampart_store_up{store=\"redis\"}"),
        Some(1.0)
    );
    assert_eq!(a.get("/ready").json()["stores"]["redis"], true);
}
