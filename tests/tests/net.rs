//! Game clients end to end: real server processes, real UDP and WebSocket
//! sockets on 127.0.0.1, the client library, whole games.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::{TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use rampart_net::protocol::{AbuseKind, ByeReason, EndReason, WireEvent, WireRejection};
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::{Command, TowerId};
use rampart_tests::player::{Player, run_until};
use rampart_tests::quick_assets;
use rampart_tests::server::{Server, metric};
use serde_json::json;

fn data_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rampart-net-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.to_str().unwrap().to_owned()
}

/// A server on the quick `sprint` content.
fn sprint_server(name: &str, extra: &[&str]) -> Server {
    let assets = quick_assets(name);
    let data = data_dir(name);
    let mut args = vec!["--assets", assets.to_str().unwrap(), "--data-dir", &data];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// One player seated by `POST /v1/join` with `body`, connected, welcomed.
fn welcomed_player(server: &Server, body: &serde_json::Value, websocket: bool) -> Vec<Player> {
    let join = Player::join(server, "/v1/join", body);
    let mut players = vec![Player::connect(join, websocket)];
    assert!(
        run_until(
            &mut players,
            Duration::from_secs(10),
            |_, _| {},
            |player| { player.client.welcome().is_some() }
        ),
        "no welcome"
    );
    players
}

fn arrow(assets: &std::path::Path) -> TowerKindId {
    let content = rampart_sim::content::load_dir(assets).unwrap();
    content.tower_id("arrow").unwrap()
}

fn place(kind: TowerKindId, x: u16, y: u16) -> Command {
    Command::PlaceTower {
        kind,
        cell: Cell::new(x, y),
    }
}

/// Ticks seen by more than one player must show the same world, and every
/// snapshot each applied matched the server's checksum.
fn assert_same_worlds(players: &[Player]) {
    let mut by_tick: BTreeMap<u64, (usize, u32)> = BTreeMap::new();
    let mut shared = 0;
    for (index, player) in players.iter().enumerate() {
        let stats = player.client.stats();
        assert_eq!(stats.desyncs, 0, "player {index} desynced");
        assert_eq!(
            stats.rejected_snapshots, 0,
            "player {index} rejected snapshots"
        );
        for (&tick, &checksum) in &player.checksums {
            match by_tick.get(&tick) {
                Some(&(other, expected)) => {
                    shared += 1;
                    assert_eq!(
                        checksum, expected,
                        "tick {tick}: player {index} and {other} differ"
                    );
                }
                None => {
                    by_tick.insert(tick, (index, checksum));
                }
            }
        }
    }
    assert!(shared > 100, "players shared only {shared} ticks");
}

#[test]
fn four_players_over_udp_and_websocket_play_to_the_end() {
    let server = sprint_server("four", &[]);
    let kind = arrow(&quick_assets("four-content"));
    let body = json!({"name": "p", "map": "sprint", "max_players": 4});
    let joins: Vec<_> = (0..4)
        .map(|_| Player::join(&server, "/v1/join", &body))
        .collect();
    let session = joins[0].session_id.clone();
    assert!(
        joins.iter().all(|join| join.session_id == session),
        "matchmaking filled one session"
    );
    let mut seats: Vec<u8> = joins.iter().map(|join| join.player_id).collect();
    seats.sort_unstable();
    assert_eq!(seats, [0, 1, 2, 3]);
    let mut players: Vec<Player> = joins
        .into_iter()
        .enumerate()
        .map(|(index, join)| Player::connect(join, index >= 2))
        .collect();

    // Each player builds two towers beside the road, readies, and player 0
    // calls the second wave early.
    let mut stage = [0u8; 4];
    let finished = run_until(
        &mut players,
        Duration::from_secs(120),
        |index, player| match stage[index] {
            0 if player.client.welcome().is_some() => {
                let seat = u16::from(player.seat().player_id);
                player.command(place(kind, 1 + 2 * seat, 1));
                player.command(place(kind, 2 + 2 * seat, 3));
                stage[index] = 1;
            }
            1 if player.results.len() == 2 => {
                player.command(Command::Ready);
                stage[index] = 2;
            }
            2 if index == 0
                && player
                    .events
                    .iter()
                    .any(|event| matches!(event, WireEvent::WaveStarted { wave: 1, .. })) =>
            {
                player.command(Command::CallNextWave);
                stage[index] = 3;
            }
            _ => {}
        },
        Player::done,
    );
    assert!(finished, "the game did not end in time");

    let outcome = players[0].outcome().expect("game over event");
    let info = server.get(&format!("/v1/sessions/{session}")).json();
    let expected = if outcome { "victory" } else { "defeat" };
    assert_eq!(info["outcome"], expected);
    for (index, player) in players.iter().enumerate() {
        assert_eq!(
            player.outcome(),
            Some(outcome),
            "player {index}: bye {:?}, error {:?}",
            player.bye,
            player.error
        );
        let reason = if outcome {
            EndReason::Victory
        } else {
            EndReason::Defeat
        };
        assert_eq!(
            player.bye,
            Some(ByeReason::SessionEnded(reason)),
            "player {index}"
        );
        assert_eq!(player.client.world().outcome, if outcome { 1 } else { 2 });
        assert!(
            player.sent.is_empty(),
            "player {index} has unanswered commands"
        );
        for seq in 0..2 {
            assert_eq!(
                player.results[&seq],
                Ok(()),
                "player {index} placement {seq}"
            );
        }
        assert_eq!(player.results[&2], Ok(()), "player {index} ready");
        assert_eq!(
            player.client.world().towers.len(),
            8,
            "player {index} sees every tower"
        );
        let stats = player.client.stats();
        assert!(stats.snapshots > 100, "player {index}");
        if index < 2 {
            // Over UDP each new world is acknowledged (several applied in
            // one update share an ack), and the delta chain the acks anchor
            // never breaks.
            assert!(
                stats.acks_sent * 2 >= stats.snapshots && stats.acks_sent <= stats.snapshots,
                "player {index} acknowledged {} of {} snapshots",
                stats.acks_sent,
                stats.snapshots
            );
        } else {
            // A WebSocket delivers in order: the server deltas against what
            // it wrote, so the client acknowledges only sliced worlds and
            // keeps the connection alive, and no delta misses its base.
            assert!(
                stats.acks_sent * 10 <= stats.snapshots,
                "player {index} acknowledged {} of {} snapshots",
                stats.acks_sent,
                stats.snapshots
            );
            assert_eq!(stats.rejected_snapshots, 0, "player {index}");
        }
        assert!(
            stats.full_snapshots <= 2,
            "player {index}: {} full snapshots",
            stats.full_snapshots
        );
        let (down, up) = player.client.bytes_per_second();
        assert!(down > 0.0 && up > 0.0, "player {index} measured no traffic");
    }
    assert_eq!(players[0].results[&3], Ok(()), "the early call");
    assert_same_worlds(&players);

    let metrics = server.get("/metrics").body;
    for transport in ["udp", "ws"] {
        let series =
            format!("rampart_net_bytes_total{{direction=\"out\",transport=\"{transport}\"}}");
        assert!(
            metric(&metrics, &series).unwrap_or(0.0) > 0.0,
            "{series} missing"
        );
    }
}

#[test]
fn a_dropped_player_reconnects_with_its_token_and_keeps_its_towers() {
    let server = sprint_server("reconnect", &[]);
    let kind = arrow(&quick_assets("reconnect-content"));
    let join = Player::join(
        &server,
        "/v1/join",
        &json!({"map": "sprint", "max_players": 1}),
    );
    let reconnect_token = join.reconnect_token.clone();
    let seat = join.player_id;
    let mut players = vec![Player::connect(join, false)];
    let mut stage = 0;
    let placed = run_until(
        &mut players,
        Duration::from_secs(30),
        |_, player| {
            if stage == 0 && player.client.welcome().is_some() {
                player.command(place(kind, 2, 1));
                player.command(place(kind, 4, 3));
                stage = 1;
            }
        },
        |player| {
            player.results.len() == 2
                && player
                    .events
                    .iter()
                    .any(|event| matches!(event, WireEvent::WaveStarted { .. }))
                && player.client.world().towers.len() == 2
        },
    );
    assert!(placed, "towers not placed and wave not started");
    let before = players.pop().unwrap();
    let towers_before: Vec<u32> = before
        .client
        .world()
        .towers
        .iter()
        .map(|tower| tower.id)
        .collect();
    let gold_before = before.client.world().players[usize::from(seat)].gold;
    // The socket dies without a goodbye, mid-game.
    drop(before);

    let again = Player::join(
        &server,
        "/v1/join",
        &json!({"reconnect_token": reconnect_token}),
    );
    assert_eq!(again.player_id, seat, "the same seat");
    let mut players = vec![Player::connect(again, true)];
    let back = run_until(
        &mut players,
        Duration::from_secs(10),
        |_, _| {},
        |player| player.client.stats().snapshots > 0,
    );
    assert!(back, "no snapshot after reconnecting");
    let player = &players[0];
    assert!(
        player.client.stats().full_snapshots >= 1,
        "a reconnect starts from a full snapshot"
    );
    let world = player.client.world();
    let towers_after: Vec<u32> = world
        .towers
        .iter()
        .filter(|tower| tower.owner == seat)
        .map(|tower| tower.id)
        .collect();
    assert_eq!(towers_after, towers_before, "towers intact");
    assert!(
        world.players[usize::from(seat)].gold >= gold_before,
        "gold intact"
    );
    // The reconnected player can still act and the game still ends.
    let upgrade = players[0].command(Command::UpgradeTower {
        tower: TowerId(towers_before[0]),
    });
    let ended = run_until(
        &mut players,
        Duration::from_secs(90),
        |_, _| {},
        Player::done,
    );
    assert!(ended, "the game did not end");
    assert!(players[0].results.contains_key(&upgrade));
    assert!(players[0].outcome().is_some());
}

#[test]
fn a_seat_is_lost_after_the_grace_period() {
    let server = sprint_server("grace", &["--reconnect-grace-seconds", "1"]);
    let join = Player::join(
        &server,
        "/v1/join",
        &json!({"map": "sprint", "max_players": 2}),
    );
    let token = join.reconnect_token.clone();
    let mut players = vec![Player::connect(join, false)];
    assert!(run_until(
        &mut players,
        Duration::from_secs(10),
        |_, _| {},
        |player| player.client.welcome().is_some()
    ));
    players[0].client.disconnect();
    std::thread::sleep(Duration::from_millis(2500));
    let reply = server.post("/v1/join", &json!({"reconnect_token": token}), None);
    assert_eq!(reply.status, 410, "{}", reply.body);
    let forged = server.post("/v1/join", &json!({"reconnect_token": "x.y.z"}), None);
    assert_eq!(forged.status, 401, "{}", forged.body);
}

#[test]
fn player_tokens_are_required_and_bind_the_seat_when_auth_is_on() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let server = sprint_server(
        "auth",
        &["--auth-jwt-secret", "s3cret", "--auth-issuer", "test"],
    );
    let token = |sub: &str| {
        let claims =
            json!({"sub": sub, "iss": "test", "exp": jsonwebtoken::get_current_timestamp() + 600});
        let key = EncodingKey::from_secret(b"s3cret").unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).unwrap()
    };
    let body = json!({"map": "sprint", "max_players": 2});
    assert_eq!(server.post("/v1/join", &body, None).status, 401);
    assert_eq!(
        server.post("/v1/join", &body, Some("not-a-jwt")).status,
        401
    );
    let alice = server.post("/v1/join", &body, Some(&token("alice")));
    assert_eq!(alice.status, 200, "{}", alice.body);
    let alice = alice.json();
    let again = server.post(
        &format!(
            "/v1/sessions/{}/join",
            alice["session_id"].as_str().unwrap()
        ),
        &json!({}),
        Some(&token("alice")),
    );
    assert_eq!(
        again.json()["player_id"],
        alice["player_id"],
        "alice gets her own seat back"
    );
    let reconnect = json!({"reconnect_token": alice["reconnect_token"]});
    assert_eq!(
        server
            .post("/v1/join", &reconnect, Some(&token("bob")))
            .status,
        403
    );
    assert_eq!(
        server
            .post("/v1/join", &reconnect, Some(&token("alice")))
            .status,
        200
    );
}

/// A small deterministic generator for garbage.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// Garbage at every door: random, truncated and oversized datagrams,
/// WebSocket upgrades without or with forged tickets, valid connections
/// that send random frames, and a client that sends malformed messages.
fn throw_garbage(server: &Server, udp: std::net::SocketAddr, ws_url: &str) {
    let mut noise = Noise(0x9e37_79b9_7f4a_7c15);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for round in 0..3000 {
        let len = match round % 10 {
            0 => 1400 + (noise.next() % 3000) as usize,
            1 => 0,
            _ => (noise.next() % 1300) as usize,
        };
        let mut datagram = noise.bytes(len);
        if let Some(first) = datagram.first_mut() {
            // Most netcode packet types, so some get past the first check.
            *first %= 8;
        }
        let _ = socket.send_to(&datagram, udp);
        if round % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let ws_host = ws_url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for attempt in 0..20 {
        let url = if attempt % 2 == 0 {
            format!("ws://{ws_host}/ws")
        } else {
            format!("ws://{ws_host}/ws?ticket=eyJhbGciOiJIUzI1NiJ9.e30.forged")
        };
        assert!(
            tungstenite::connect(url.as_str()).is_err(),
            "upgrade without a valid ticket"
        );
    }
    // Raw bytes that are not even HTTP.
    for _ in 0..10 {
        if let Ok(mut stream) = TcpStream::connect(&ws_host) {
            let _ = stream.write_all(&noise.bytes(200));
        }
    }
    // Valid connections sending random frames: each ends up dropped.
    for _ in 0..5 {
        let join = Player::join(
            server,
            "/v1/join",
            &json!({"map": "small", "max_players": 2}),
        );
        let (mut socket, _) = tungstenite::connect(join.ws_url.as_str()).unwrap();
        for frame in 0..200 {
            let message = match frame % 20 {
                0 => tungstenite::Message::text("hello"),
                19 => tungstenite::Message::binary(noise.bytes(5000)),
                _ => {
                    let len = (noise.next() % 1400) as usize;
                    tungstenite::Message::binary(noise.bytes(len))
                }
            };
            if socket.send(message).is_err() {
                break;
            }
        }
        // A replayed ticket is closed at once.
        if let Ok((mut replayed, _)) = tungstenite::connect(join.ws_url.as_str()) {
            if let tungstenite::stream::MaybeTlsStream::Plain(stream) = replayed.get_ref() {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
            }
            let closed = (0..20)
                .any(|_| matches!(replayed.read(), Err(_) | Ok(tungstenite::Message::Close(_))));
            assert!(closed, "a replayed ticket was served");
        }
    }
}

#[test]
fn garbage_at_every_door_leaves_games_and_health_alone() {
    let server = sprint_server("fuzz", &[]);
    let kind = arrow(&quick_assets("fuzz-content"));
    let join = Player::join(
        &server,
        "/v1/join",
        &json!({"map": "sprint", "max_players": 1}),
    );
    let udp = join.udp_addresses[0];
    let ws_url = join.ws_url.clone();
    let mut players = vec![Player::connect(join, false)];

    // A connected client that sends malformed messages is cut off alone.
    let rogue = Player::join(
        &server,
        "/v1/join",
        &json!({"map": "small", "max_players": 2}),
    );
    players.push(Player::connect(rogue, false));

    let ended = std::thread::scope(|scope| {
        let thrower = scope.spawn(|| throw_garbage(&server, udp, &ws_url));
        let mut stage = [0; 2];
        let ended = run_until(
            &mut players,
            Duration::from_secs(120),
            |index, player| {
                if stage[index] == 0 && player.client.welcome().is_some() {
                    if index == 0 {
                        player.command(place(kind, 3, 1));
                        player.command(place(kind, 5, 3));
                        player.command(Command::Ready);
                    } else {
                        for _ in 0..30 {
                            let _ = player.client.send_raw(&[0xff, 0xfe, 0x01, 0x02]);
                        }
                    }
                    stage[index] = 1;
                }
            },
            Player::done,
        );
        thrower.join().unwrap();
        ended
    });
    assert!(ended, "the game did not finish under garbage");
    assert!(players[0].outcome().is_some(), "the game ended normally");
    assert!(matches!(players[0].bye, Some(ByeReason::SessionEnded(_))));
    assert_eq!(players[0].client.stats().desyncs, 0);
    assert!(players[0].client.stats().snapshots > 50);
    assert_eq!(players[1].bye, Some(ByeReason::Abuse(AbuseKind::Malformed)));
    assert_eq!(server.get("/health").status, 200);
    // Metrics are published about once a second.
    std::thread::sleep(Duration::from_millis(1200));
    let metrics = server.get("/metrics").body;
    for reason in [
        "malformed",
        "oversized",
        "malformed_disconnect",
        "invalid_ticket",
    ] {
        let series = format!("rampart_net_dropped_total{{reason=\"{reason}\"}}");
        assert!(
            metric(&metrics, &series).unwrap_or(0.0) >= 1.0,
            "{series} not counted:\n{metrics}"
        );
    }
}

#[test]
fn a_flooding_client_is_rate_limited_then_disconnected() {
    let server = sprint_server(
        "flood",
        &["--command-rate-per-second", "5", "--command-burst", "5"],
    );
    let mut players = welcomed_player(&server, &json!({"map": "sprint", "max_players": 2}), true);
    let started = Instant::now();
    let mut sent = 0;
    while !players[0].done() && started.elapsed() < Duration::from_secs(10) {
        // The server closes the socket after its goodbye: a command
        // written after that may meet the reset before the goodbye is read.
        if players[0].try_command(Command::CallNextWave).is_err() {
            break;
        }
        sent += 1;
        players[0].pump();
        std::thread::sleep(Duration::from_millis(1));
    }
    run_until(
        &mut players[..1],
        Duration::from_secs(5),
        |_, _| {},
        Player::done,
    );
    let limited = players[0]
        .results
        .values()
        .filter(|result| **result == Err(WireRejection::RateLimited))
        .count();
    assert!(limited > 0, "no command was rate limited out of {sent}");
    assert_eq!(players[0].bye, Some(ByeReason::Abuse(AbuseKind::Flood)));
}

#[test]
fn sigterm_tells_connected_players_and_says_goodbye() {
    let mut server = sprint_server("drain", &[]);
    let mut players = welcomed_player(&server, &json!({"map": "sprint", "max_players": 2}), true);
    server.signal("TERM");
    assert!(run_until(
        &mut players,
        Duration::from_secs(10),
        |_, _| {},
        Player::done
    ));
    assert!(
        players[0].events.contains(&WireEvent::Draining),
        "told of the drain"
    );
    assert_eq!(players[0].bye, Some(ByeReason::ServerShutdown));
    let status = server
        .wait_exit(Duration::from_secs(10))
        .and_then(|status| status.code());
    assert_eq!(status, Some(0));
}

/// Pumps `players` (their connections live only while pumped) until `done`
/// holds or `limit` passes.
fn pump_until(players: &mut [Player], limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        for player in players.iter_mut() {
            player.pump();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The session's record as `GET /v1/sessions/{id}` shows it.
fn session_info(server: &Server, session: &str) -> serde_json::Value {
    server.get(&format!("/v1/sessions/{session}")).json()
}

#[test]
fn a_spectator_sees_the_players_worlds_takes_no_seat_and_cannot_act() {
    let server = sprint_server(
        "spectate",
        &["--admin-token", "adm", "--max-spectators", "1"],
    );
    let kind = arrow(&quick_assets("spectate-content"));
    let created = server.post(
        "/v1/sessions",
        &json!({"map": "sprint", "max_players": 2, "bots": 1}),
        Some("adm"),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let session = created.json()["id"].as_str().unwrap().to_owned();
    // A spectator may watch a lobby: it fills no seat, so the game waits
    // for the player (over UDP here, the netcode token's role byte).
    let watching = Player::spectate(&server, &session, &json!({}), None);
    assert_eq!(watching.session_id, session);
    let mut players = vec![Player::watch(&watching, false)];
    pump_until(
        &mut players,
        Duration::from_secs(10),
        "the spectator counted",
        || session_info(&server, &session)["spectators"] == 1,
    );
    assert_eq!(session_info(&server, &session)["state"], "lobby");
    let full = server.post(
        &format!("/v1/sessions/{session}/spectate"),
        &json!({}),
        None,
    );
    assert_eq!(full.status, 409, "one spectator at most: {}", full.body);

    let join = Player::join(&server, &format!("/v1/sessions/{session}/join"), &json!({}));
    players.push(Player::connect(join, true));
    let mut stage = [0u8; 2];
    let finished = run_until(
        &mut players,
        Duration::from_secs(120),
        |index, player| match (index, stage[index]) {
            (0, 0) if player.client.welcome().is_some() => {
                player.command(place(kind, 3, 1));
                player.command(Command::Ready);
                stage[0] = 1;
            }
            (1, 0) if player.client.welcome().is_some() => {
                player.command(place(kind, 1, 1));
                player.command(Command::Ready);
                stage[1] = 1;
            }
            _ => {}
        },
        Player::done,
    );
    assert!(finished, "the game did not end in time");
    let (watcher, player) = (&players[0], &players[1]);
    assert_eq!(
        watcher.client.welcome().unwrap().player,
        None,
        "welcomed without a seat"
    );
    assert!(player.client.welcome().unwrap().player.is_some(), "a seat");
    assert_eq!(
        watcher.results.values().collect::<Vec<_>>(),
        [&Err(WireRejection::Spectating); 2],
        "both commands refused as a spectator's"
    );
    assert!(player.results.contains_key(&0), "the player was answered");
    assert!(
        watcher
            .events
            .iter()
            .any(|event| matches!(event, WireEvent::TowerPlaced { .. })),
        "the spectator hears the events"
    );
    assert_eq!(watcher.outcome(), player.outcome(), "both saw the end");
    assert!(matches!(watcher.bye, Some(ByeReason::SessionEnded(_))));
    assert_same_worlds(&players);

    assert_eq!(session_info(&server, &session)["bots"], 1);
    let metrics = server.get("/metrics").body;
    let refused = |reason: &str| {
        metric(
            &metrics,
            &format!("rampart_spectators_refused_total{{reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(refused("full"), Some(1.0));
    assert_eq!(refused("command"), Some(2.0));
}

#[test]
fn private_sessions_need_an_invite_or_the_admin_and_spectators_keep_nothing_alive() {
    let server = sprint_server(
        "spectate-private",
        &["--admin-token", "adm", "--idle-timeout-seconds", "2"],
    );
    let created = server.post(
        "/v1/sessions",
        &json!({"map": "sprint", "max_players": 1, "private": true}),
        Some("adm"),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let session = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/sessions/{session}/spectate");
    let join = Player::join(&server, &format!("/v1/sessions/{session}/join"), &json!({}));
    let invite = join.spectate_invite.clone();

    let uninvited = server.post(&path, &json!({}), None);
    assert_eq!(uninvited.status, 403, "{}", uninvited.body);
    let forged = server.post(&path, &json!({"invite": join.reconnect_token}), None);
    assert_eq!(forged.status, 403, "a reconnect token is no invite");
    let unknown = server.post("/v1/sessions/00000000000000ff/spectate", &json!({}), None);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    let typo = server.post(&path, &json!({"invitation": invite}), None);
    assert_eq!(typo.status, 400, "unknown fields are refused");
    Player::spectate(&server, &session, &json!({}), Some("adm"));
    let watching = Player::spectate(&server, &session, &json!({"invite": invite}), None);

    let mut players = vec![Player::connect(join, true), Player::watch(&watching, true)];
    assert!(run_until(
        &mut players,
        Duration::from_secs(10),
        |_, _| {},
        |player| player.client.stats().snapshots > 5
    ));
    pump_until(
        &mut players,
        Duration::from_secs(10),
        "both counted",
        || {
            let info = session_info(&server, &session);
            info["players"] == 1 && info["spectators"] == 1
        },
    );
    pump_until(&mut players, Duration::from_secs(5), "the gauge", || {
        metric(&server.get("/metrics").body, "rampart_spectators") == Some(1.0)
    });

    // The player leaves; the spectator watching does not keep the session
    // from idling out, and hears why it ended.
    players[0].client.disconnect();
    let mut watcher = players.split_off(1);
    assert!(
        run_until(
            &mut watcher,
            Duration::from_secs(20),
            |_, _| {},
            Player::done
        ),
        "the session did not idle out"
    );
    assert_eq!(
        watcher[0].bye,
        Some(ByeReason::SessionEnded(EndReason::Idle))
    );
    assert_eq!(session_info(&server, &session)["end_reason"], "idle");
    let ended = server.post(&path, &json!({}), Some("adm"));
    assert_eq!(ended.status, 410, "{}", ended.body);
    let metrics = server.get("/metrics").body;
    assert_eq!(
        metric(
            &metrics,
            "rampart_spectators_refused_total{reason=\"forbidden\"}"
        ),
        Some(2.0)
    );
}
