//! The server under Agones, against a fake SDK sidecar that keeps to the
//! real one's REST contract (`rampart_tests::agones`): the real sidecar
//! needs a Kubernetes API server, which these machines cannot run.
//!
//! Ready comes after every listener is bound; Health every 2 s; the
//! `sessions` and `players` counters follow the host; the addresses in join
//! answers come from the GameServer; SIGTERM drains, then Shutdown; and
//! without `AGONES_SDK_HTTP_PORT` nothing is called at all.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rampart_tests::agones::{FakeSidecar, GameServerSpec, SidecarPort};
use rampart_tests::player::{Player, run_until};
use rampart_tests::server::Server;
use rampart_tests::stores::TestStores;
use rampart_tests::wait_until;
use serde_json::json;

const TOKEN: &str = "agones-admin";

/// The GameServer's address: another loopback IP than the one the server
/// would advertise by itself, so a join answer naming it can only have
/// read it from the GameServer.
const GAME_SERVER_IP: &str = "127.0.0.2";

/// Free UDP and TCP ports on the GameServer's IP for the UDP socket, the
/// WebSocket and the HTTP API, as Agones' "Passthrough" policy gives them
/// (container port = host port), so the test can reach them.
fn free_ports() -> (u16, u16, u16) {
    let udp = std::net::UdpSocket::bind((GAME_SERVER_IP, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tcp = || {
        std::net::TcpListener::bind((GAME_SERVER_IP, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    (udp, tcp(), tcp())
}

struct Pod {
    server: Server,
    sidecar: FakeSidecar,
    udp: u16,
    ws: u16,
    http: u16,
}

/// A server under Agones whose sidecar starts `late` after it.
fn pod(late: Duration, extra: &[&str]) -> Pod {
    let sdk_port = SidecarPort::any();
    let (udp, ws, http) = free_ports();
    let addr = |port: u16| format!("{GAME_SERVER_IP}:{port}");
    let (udp_addr, ws_addr, http_addr) = (addr(udp), addr(ws), addr(http));
    let spec = GameServerSpec {
        address: GAME_SERVER_IP.to_owned(),
        ports: vec![
            ("udp-0".to_owned(), udp),
            ("ws".to_owned(), ws),
            ("http".to_owned(), http),
        ],
        counters: vec![("sessions".to_owned(), 10), ("players".to_owned(), 80)],
        watch_on_ready: vec![http_addr.parse().unwrap(), ws_addr.parse().unwrap()],
    };
    let sdk_port_text = sdk_port.number().to_string();
    let mut args = vec![
        "--udp-addr",
        &udp_addr,
        "--ws-addr",
        &ws_addr,
        "--http-addr",
        &http_addr,
        "--udp-sockets",
        "1",
        // What the server would advertise without Agones.
        "--public-ip",
        "127.0.0.9",
        "--max-sessions",
        "20",
        "--admin-token",
        TOKEN,
        "--drain-seconds",
        "15",
    ];
    args.extend_from_slice(extra);
    let starting = std::thread::scope(|scope| {
        let server = scope
            .spawn(|| Server::start_with_env(&args, &[("AGONES_SDK_HTTP_PORT", &sdk_port_text)]));
        std::thread::sleep(late);
        let sidecar = FakeSidecar::start(sdk_port, spec);
        (server.join().unwrap(), sidecar)
    });
    let (server, sidecar) = starting;
    Pod {
        server,
        sidecar,
        udp,
        ws,
        http,
    }
}

#[test]
fn under_agones_the_server_is_ready_after_binding_healthy_counted_and_shut_down_after_a_drain() {
    // The sidecar starts 1.5 s after the server, as it may in a pod.
    let mut pod = pod(Duration::from_millis(1500), &[]);
    let sidecar = &pod.sidecar;
    wait_until(Duration::from_secs(10), "Ready", || {
        sidecar.state() == "Ready"
    });
    let ready = sidecar.calls_to("/ready");
    assert_eq!(ready.len(), 1, "Ready is said once");
    assert_eq!(
        ready[0].listening,
        [true, true],
        "the HTTP API and the WebSocket listener accept connections when Ready is said"
    );
    assert_eq!(ready[0].body, json!({}));
    let first_game_server = sidecar.calls_to("/gameserver")[0].at;
    assert!(
        first_game_server <= ready[0].at,
        "addresses are read before Ready"
    );
    let labels = sidecar.labels();
    assert_eq!(
        labels.get("version").map(String::as_str),
        Some(env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        labels.get("map-small").map(String::as_str),
        Some("true"),
        "{labels:?}"
    );
    assert!(labels.contains_key("content"), "{labels:?}");

    // Capacities are set, then counts follow sessions opening and ending.
    wait_until(Duration::from_secs(5), "capacities", || {
        sidecar
            .counter("sessions")
            .is_some_and(|c| c.capacity == 20)
            && sidecar
                .counter("players")
                .is_some_and(|c| c.capacity == 160)
    });
    let server = &pod.server;
    let created: Vec<String> = (0..2)
        .map(|_| {
            let reply = server.post(
                "/v1/sessions",
                &json!({"map": "small", "max_players": 2, "bots": 2}),
                Some(TOKEN),
            );
            assert_eq!(reply.status, 201, "{}", reply.body);
            reply.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    wait_until(
        Duration::from_secs(5),
        "two sessions and four players counted",
        || {
            sidecar.counter("sessions").map(|c| c.count) == Some(2)
                && sidecar.counter("players").map(|c| c.count) == Some(4)
        },
    );
    let patches = sidecar.calls_to("/v1beta1/counters/sessions");
    assert!(
        patches.iter().all(|call| call.method == "PATCH"
            && call
                .body
                .as_object()
                .unwrap()
                .values()
                .all(|v| v.is_string())),
        "int64 values go as JSON strings: {patches:?}"
    );
    // An allocation made it Allocated; once its last session ends it says
    // Ready again, so the fleet can scale it down or roll it.
    sidecar.set_state("Allocated");
    let ended = server.delete(&format!("/v1/sessions/{}", created[0]), Some(TOKEN));
    assert_eq!(ended.status, 200, "{}", ended.body);
    wait_until(
        Duration::from_secs(5),
        "the ended session uncounted",
        || {
            sidecar.counter("sessions").map(|c| c.count) == Some(1)
                && sidecar.counter("players").map(|c| c.count) == Some(2)
        },
    );
    assert_eq!(sidecar.state(), "Allocated", "not empty yet");
    let ended = server.delete(&format!("/v1/sessions/{}", created[1]), Some(TOKEN));
    assert_eq!(ended.status, 200, "{}", ended.body);
    wait_until(Duration::from_secs(5), "Ready again when empty", || {
        sidecar.state() == "Ready" && sidecar.counter("sessions").map(|c| c.count) == Some(0)
    });
    assert_eq!(sidecar.calls_to("/ready").len(), 2);

    // A player is told the GameServer's addresses, and plays through them.
    let join = Player::join(
        server,
        "/v1/join",
        &json!({"name": "ada", "map": "small", "max_players": 1}),
    );
    let udp: SocketAddr = format!("{GAME_SERVER_IP}:{}", pod.udp).parse().unwrap();
    assert_eq!(
        join.udp_addresses,
        [udp],
        "not 127.0.0.9, the configured public_ip"
    );
    assert!(
        join.ws_url
            .starts_with(&format!("ws://{GAME_SERVER_IP}:{}/ws?ticket=", pod.ws)),
        "{}",
        join.ws_url
    );
    let mut players = vec![
        Player::connect(join.clone(), false),
        Player::connect(join_again(server), true),
    ];
    play_a_second(
        &mut players,
        "both transports get snapshots through the advertised addresses",
    );

    // Health every 2 s.
    std::thread::sleep(Duration::from_secs(5));
    let health: Vec<Instant> = sidecar
        .calls_to("/health")
        .iter()
        .map(|call| call.at)
        .collect();
    assert!(health.len() >= 3, "{} health pings", health.len());
    for gap in health.windows(2).skip(1).map(|pair| pair[1] - pair[0]) {
        assert!(
            gap > Duration::from_millis(1500) && gap < Duration::from_millis(2600),
            "health pings every 2 s, not {gap:?}"
        );
    }

    // SIGTERM: the drain hands every session over, then Shutdown.
    let signalled = Instant::now();
    pod.server.signal("TERM");
    let status = pod.server.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{:#?}",
        pod.server.logs()
    );
    let shutdown = pod.sidecar.calls_to("/shutdown");
    assert_eq!(shutdown.len(), 1);
    assert_eq!(
        pod.sidecar.calls_to("/ready").len(),
        2,
        "no Ready while draining, though the sessions left"
    );
    assert!(shutdown[0].at > signalled);
    assert_eq!(pod.sidecar.state(), "Shutdown");
    let logs = pod.server.logs();
    let stored = logs
        .iter()
        .position(|line| line.contains("every session's state is stored"))
        .expect("the drain stored every session");
    let said = logs
        .iter()
        .position(|line| line.contains("Agones: Shutdown"))
        .expect("Shutdown logged");
    assert!(
        stored < said,
        "Shutdown only after every session was handed over"
    );
    let _ = pod.http;
}

/// Plays until every player has seen a second of its game.
fn play_a_second(players: &mut [Player], what: &str) {
    assert!(
        run_until(
            players,
            Duration::from_secs(15),
            |_, _| {},
            |player| { player.client.world().tick > 30 }
        ),
        "{what}"
    );
}

/// A second seat in a new one-player session, for the WebSocket player.
fn join_again(server: &Server) -> rampart_net::client::JoinResponse {
    Player::join(
        server,
        "/v1/join",
        &json!({"name": "bo", "map": "small", "max_players": 1}),
    )
}

#[test]
fn without_the_variable_nothing_is_called() {
    // A sidecar on the default port: a server that probed it anyway would
    // be seen. (Skipped if something else holds the port.)
    let Ok(port) = SidecarPort::at(9358) else {
        eprintln!("skipped: 127.0.0.1:9358 is taken, so the default port cannot be watched");
        return;
    };
    let sidecar = FakeSidecar::start(
        port,
        GameServerSpec {
            address: "127.0.0.1".to_owned(),
            ports: Vec::new(),
            counters: vec![("sessions".to_owned(), 10)],
            watch_on_ready: Vec::new(),
        },
    );
    let mut server = Server::start(&["--admin-token", TOKEN, "--drain-seconds", "5"]);
    let reply = server.post(
        "/v1/sessions",
        &json!({"map": "small", "max_players": 1, "bots": 1}),
        Some(TOKEN),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    std::thread::sleep(Duration::from_secs(3));
    server.signal("TERM");
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(10))
            .and_then(|s| s.code()),
        Some(0)
    );
    assert!(sidecar.calls().is_empty(), "{:?}", sidecar.calls());
    assert!(!server.logs().iter().any(|line| line.contains("Agones")));
}

#[test]
fn another_instance_sends_players_to_the_game_servers_http_address() {
    let Some(stores) = TestStores::new("agones") else {
        return;
    };
    // Every instance of a fleet shares the key that signs reconnect tokens.
    let net_key = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";
    let fleet = |name: &'static str| {
        [
            "--database-url",
            stores.database_url.as_str(),
            "--redis-url",
            stores.redis_url.as_str(),
            "--redis-prefix",
            stores.redis_prefix.as_str(),
            "--instance-id",
            name,
            "--net-key",
            net_key,
        ]
    };
    let a = pod(Duration::ZERO, &fleet("agones-a"));
    let b = pod(Duration::ZERO, &fleet("agones-b"));
    let join = Player::join(
        &a.server,
        "/v1/join",
        &json!({"name": "ada", "map": "small", "max_players": 1}),
    );
    let mut players = vec![Player::connect(join.clone(), false)];
    play_a_second(&mut players, "the game runs on A");
    let expected = format!("http://{GAME_SERVER_IP}:{}/v1/join", a.http);
    let body = json!({"reconnect_token": join.reconnect_token});
    let started = Instant::now();
    let location = loop {
        let reply = b.server.post("/v1/join", &body, None);
        if reply.status == 307 {
            break reply.header("location").unwrap().to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "B never sent the player to A: {reply:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(location, expected, "A's GameServer address and http port");
}
