//! `net_bandwidth`: wire bytes per client per second, headers included, on
//! the reference session with 8 real clients (half UDP, half WebSocket) at
//! the default 20 Hz snapshot rate, measured by the clients themselves; and
//! the size of a full snapshot a player gets on joining mid-game.
//!
//! It starts a release server, creates the reference session (8 seats, 50
//! towers, endless waves) through the admin API, seats 8 network players in
//! it, lets the game reach its steady state (about 100 enemies: 4 minutes),
//! measures, then reconnects one player to see its join snapshot.
//!
//! With `--spectators`, two spectators watch the same session over
//! WebSocket through the same window: one on the Rust client library, one
//! on the TypeScript client (`clients/ts/bench/watch-bandwidth.mjs` under
//! Node; build it first with `npm ci && npm run build` in `clients/ts`). They
//! receive the same snapshots, so their bytes per second say whether the
//! TypeScript client speaks the wire as thriftily as the Rust one.
//!
//! ```text
//! cargo run --release -p rampart-benches --bin net_bandwidth
//! cargo run --release -p rampart-benches --bin net_bandwidth -- --spectators
//! ```

use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use rampart_net::client::ClientStats;
use rampart_sim::Command;
use rampart_tests::player::{Player, run_until};
use rampart_tests::server::Server;
use serde_json::json;

/// Bandwidth of the reference session over the network.
#[derive(Parser)]
struct Args {
    /// Seconds to let the session reach its steady state.
    #[arg(long, default_value_t = 240)]
    warmup_seconds: u64,
    /// Seconds measured.
    #[arg(long, default_value_t = 60)]
    measure_seconds: u64,
    /// Snapshots per second.
    #[arg(long, default_value_t = 20)]
    snapshot_hz: u32,
    /// Also measure a Rust and a TypeScript spectator over WebSocket.
    #[arg(long)]
    spectators: bool,
}

/// How long the TypeScript spectator waits after its welcome before it
/// counts (its first, full snapshot is not the steady state).
const SPECTATOR_SETTLE: Duration = Duration::from_secs(2);

const TOKEN: &str = "bandwidth-admin";
const PLAYERS: usize = 8;

fn main() {
    let args = Args::parse();
    let snapshot_hz = args.snapshot_hz.to_string();
    let server = Server::start(&["--admin-token", TOKEN, "--snapshot-hz", &snapshot_hz]);
    let created = server.post(
        "/v1/sessions",
        &json!({"map": "reference", "scenario": "reference", "max_players": PLAYERS, "seed": 7, "private": true}),
        Some(TOKEN),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.json()["id"].as_str().unwrap_or_default().to_owned();
    let mut players: Vec<Player> = (0..PLAYERS)
        .map(|index| {
            let join = Player::join(&server, &format!("/v1/sessions/{id}/join"), &json!({}));
            Player::connect(join, index % 2 == 1)
        })
        .collect();
    let mut ready = [false; PLAYERS];
    let warm = run_until(
        &mut players,
        Duration::from_secs(args.warmup_seconds),
        |index, player| {
            if !ready[index] && player.client.welcome().is_some() {
                player.command(Command::Ready);
                ready[index] = true;
            }
        },
        |_| false,
    );
    assert!(!warm, "the warm-up cannot end early");
    assert!(
        players.iter().all(|player| !player.done()),
        "a player dropped during the warm-up"
    );

    // The spectators join now and settle, as the TypeScript one does
    // before it counts; the measured window is the same for all.
    let (mut watchers, node) = if args.spectators {
        let place = Player::spectate(&server, &id, &json!({}), Some(TOKEN));
        let node = typescript_spectator(&server, &id, args.measure_seconds);
        (vec![Player::watch(&place, true)], Some(node))
    } else {
        (Vec::new(), None)
    };
    let settled = Instant::now() + SPECTATOR_SETTLE;
    while args.spectators && Instant::now() < settled {
        for player in players.iter_mut().chain(&mut watchers) {
            player.pump();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let watched: Vec<ClientStats> = watchers
        .iter()
        .map(|player| player.client.stats())
        .collect();
    let before: Vec<ClientStats> = players.iter().map(|player| player.client.stats()).collect();
    let started = Instant::now();
    let mut enemy_samples = 0u64;
    let mut enemy_total = 0u64;
    let deadline = started + Duration::from_secs(args.measure_seconds);
    while Instant::now() < deadline {
        for player in players.iter_mut().chain(&mut watchers) {
            player.pump();
        }
        enemy_total += players[0].client.world().enemies.len() as u64;
        enemy_samples += 1;
        std::thread::sleep(Duration::from_millis(2));
    }
    let seconds = started.elapsed().as_secs_f64();
    let after: Vec<ClientStats> = players.iter().map(|player| player.client.stats()).collect();

    println!(
        "reference session, {PLAYERS} clients, {} Hz snapshots, {seconds:.0} s after a {} s warm-up, {:.0} enemies on average",
        args.snapshot_hz,
        args.warmup_seconds,
        enemy_total as f64 / enemy_samples.max(1) as f64
    );
    println!("| client | transport | down B/s | up B/s | snapshots/s | desyncs |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    let mut totals = [(0.0, 0.0, 0usize); 2];
    for (index, (early, late)) in before.iter().zip(&after).enumerate() {
        let websocket = index % 2 == 1;
        let down = (late.bytes_in - early.bytes_in) as f64 / seconds;
        let up = (late.bytes_out - early.bytes_out) as f64 / seconds;
        let snapshots = (late.snapshots - early.snapshots) as f64 / seconds;
        println!(
            "| {index} | {} | {down:.0} | {up:.0} | {snapshots:.1} | {} |",
            if websocket { "ws" } else { "udp" },
            late.desyncs
        );
        let total = &mut totals[usize::from(websocket)];
        total.0 += down;
        total.1 += up;
        total.2 += 1;
    }
    for (name, (down, up, count)) in ["udp", "ws"].iter().zip(totals) {
        let count = count.max(1) as f64;
        println!(
            "mean {name}: {:.0} B/s down, {:.0} B/s up per client",
            down / count,
            up / count
        );
    }

    if let (Some(rust), Some(node)) = (watchers.first(), node) {
        let early = watched[0];
        let late = rust.client.stats();
        let down = (late.bytes_in - early.bytes_in) as f64 / seconds;
        let up = (late.bytes_out - early.bytes_out) as f64 / seconds;
        println!(
            "spectator, Rust client, ws: {down:.0} B/s down, {up:.0} B/s up, {} desyncs",
            late.desyncs
        );
        let output = node
            .wait_with_output()
            .expect("the TypeScript spectator ran");
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the TypeScript spectator failed: {report}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let typescript: serde_json::Value =
            serde_json::from_str(report.trim()).expect("its JSON report");
        let ts_down = typescript["down"].as_f64().unwrap_or_default();
        println!(
            "spectator, TypeScript client (Node), ws: {ts_down:.0} B/s down, {:.0} B/s up, {} desyncs: {:+.1}% down against the Rust client",
            typescript["up"].as_f64().unwrap_or_default(),
            typescript["desyncs"],
            (ts_down / down - 1.0) * 100.0
        );
    }

    // A player who joins now gets the whole world in one full snapshot.
    let token = players[0].seat().reconnect_token.clone();
    drop(players.remove(0));
    let join = Player::join(&server, "/v1/join", &json!({"reconnect_token": token}));
    let mut late = vec![Player::connect(join, false)];
    let arrived = run_until(
        &mut late,
        Duration::from_secs(10),
        |_, _| {},
        |player| player.client.stats().snapshots > 0,
    );
    assert!(arrived, "no snapshot after rejoining");
    let stats = late[0].client.stats();
    println!(
        "join snapshot: {} B for {} enemies, {} towers, {} projectiles",
        stats.largest_snapshot,
        late[0].client.world().enemies.len(),
        late[0].client.world().towers.len(),
        late[0].client.world().projectiles.len()
    );
}

/// Starts the TypeScript spectator under Node; it reports as JSON on stdout.
fn typescript_spectator(server: &Server, session: &str, seconds: u64) -> Child {
    let script = rampart_tests::workspace_root().join("clients/ts/bench/watch-bandwidth.mjs");
    Process::new("node")
        .arg("--experimental-websocket")
        .arg(&script)
        .arg(format!("http://{}", server.addr))
        .arg(session)
        .arg(seconds.to_string())
        .arg(TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run node (clients/ts must be built: npm ci && npm run build)")
}
