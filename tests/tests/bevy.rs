//! rampart-bevy end to end: a Bevy app with `RampartClientPlugin` plays a
//! whole game on a real server (and takes its seat back after its
//! connection is cut), and `SimPlugin` replays command logs to the hashes
//! `rampart replay` and the server reach.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy_app::{App, Update};
use bevy_ecs::prelude::*;
use bevy_ecs::system::RunSystemOnce;
use bevy_state::prelude::*;
use bevy_time::{Time, TimePlugin, TimeUpdateStrategy, Virtual};
use rampart_bevy::prelude::*;
use rampart_bevy::{SimSession, world::Seat};
use rampart_sim::Content;
use rampart_sim::grid::Tile;
use rampart_sim::log::CommandLog;
use rampart_tests::server::{Server, temp_data_dir};
use rampart_tests::stores::Proxy;
use rampart_tests::{quick_assets, run_rampart, workspace_root};

fn content(assets: &Path) -> Arc<Content> {
    Arc::new(rampart_sim::content::load_dir(assets).unwrap())
}

/// `rampart args`' standard output.
fn rampart(args: &[&str]) -> String {
    String::from_utf8(run_rampart(args).stdout).unwrap()
}

/// A headless app stepping `SimPlugin` as fast as it can: every update runs
/// 64 ticks.
fn offline_app(plugin: SimPlugin) -> App {
    let mut app = App::new();
    app.add_plugins(TimePlugin)
        .add_plugins(plugin)
        .insert_resource(TimeUpdateStrategy::FixedTimesteps(64));
    app.world_mut()
        .resource_mut::<Time<Virtual>>()
        .set_max_delta(Duration::from_secs(60));
    app
}

/// Runs an offline app until its session has finished.
fn run_offline(app: &mut App) {
    for _ in 0..100_000 {
        app.update();
        if app.world().resource::<SimSession>().finished() {
            // One more frame: the state transition to `Ended` applies.
            app.update();
            return;
        }
    }
    panic!("the offline session did not finish");
}

/// What both a client and a replay can see of a finished game, trajectories
/// aside (their restarts depend on when a tracker looked).
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    wave: u32,
    lives: u32,
    outcome: Option<Outcome>,
    seats: Vec<Seat>,
    towers: BTreeMap<TowerId, (PlayerId, TowerKindId, u8, Cell)>,
}

fn seen(app: &mut App) -> Seen {
    let world = app.world_mut();
    let towers = world
        .query::<(&Tower, &GridCell)>()
        .iter(world)
        .map(|(tower, cell)| (tower.id, (tower.owner, tower.kind, tower.level, cell.0)))
        .collect();
    Seen {
        wave: world.resource::<Wave>().0,
        lives: world.resource::<Lives>().0,
        outcome: world.resource::<MatchOutcome>().0,
        seats: world.resource::<Seats>().0.clone(),
        towers,
    }
}

#[test]
fn sim_plugin_replays_a_log_to_the_hash_rampart_replay_reaches() {
    let log = std::env::temp_dir().join(format!("rampart-bevy-replay-{}.log", std::process::id()));
    let log_arg = log.to_str().unwrap();
    rampart(&[
        "simulate",
        "--map",
        "small",
        "--seed",
        "3",
        "--players",
        "2",
        "--record",
        log_arg,
    ]);
    let replayed: serde_json::Value =
        serde_json::from_str(&rampart(&["replay", log_arg, "--json"])).unwrap();
    let content = content(&workspace_root().join("assets"));
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::remove_file(&log).unwrap();
    let log = CommandLog::parse(&text, &content).unwrap();

    let mut app = offline_app(SimPlugin::replay(content, log).unwrap());
    run_offline(&mut app);

    let hash = app.world_mut().resource_mut::<SimSession>().state_hash();
    assert_eq!(
        format!("{hash:016x}"),
        replayed["state_hash"].as_str().unwrap()
    );
    let seen = seen(&mut app);
    assert_eq!(u64::from(seen.wave), replayed["wave"].as_u64().unwrap());
    assert_eq!(u64::from(seen.lives), replayed["lives"].as_u64().unwrap());
    assert_eq!(
        seen.outcome.map_or("undecided", Outcome::name),
        replayed["outcome"].as_str().unwrap()
    );
    assert_eq!(
        seen.towers.len() as u64,
        replayed["towers"].as_u64().unwrap()
    );
    let state = app
        .world()
        .resource::<State<ConnectionState>>()
        .get()
        .clone();
    assert!(
        matches!(state, ConnectionState::Ended(EndCause::SessionEnded(_))),
        "a decided replay ends the state: {state:?}"
    );
}

/// The test's player: builds arrow towers beside the road one at a time
/// while gold lasts, readies, and calls every wave early so the game ends
/// soon.
#[derive(Resource)]
struct Plan {
    kind: TowerKindId,
    cost: u32,
    sites: Vec<Cell>,
    next: usize,
    waiting: Option<CommandId>,
    readied: bool,
    /// Call every wave early (set once the test has seen what it needed).
    hurry: bool,
    answers: Vec<CommandAnswered>,
    events: Vec<SessionEvent>,
}

impl Plan {
    fn new(content: &Content, map: &str) -> Self {
        let grid = &content.map(map).unwrap().grid;
        let road = |x: i32, y: i32| {
            grid.contains(x, y) && grid.tile(Cell::new(x as u16, y as u16)) == Tile::Path
        };
        let sites = (0..grid.len())
            .map(|index| grid.cell(index))
            .filter(|&cell| grid.tile(cell) == Tile::Buildable)
            .filter(|cell| {
                let (x, y) = (i32::from(cell.x), i32::from(cell.y));
                road(x - 1, y) || road(x + 1, y) || road(x, y - 1) || road(x, y + 1)
            })
            .collect();
        let kind = content.tower_id("arrow").unwrap();
        Plan {
            kind,
            cost: content.tower(kind).levels[0].cost,
            sites,
            next: 0,
            waiting: None,
            readied: false,
            hurry: false,
            answers: Vec::new(),
            events: Vec::new(),
        }
    }
}

fn build(
    mut plan: ResMut<Plan>,
    mut commands: GameCommands,
    seats: Res<Seats>,
    seat: Res<LocalSeat>,
) {
    if plan.waiting.is_some() {
        return;
    }
    let gold = seat
        .0
        .and_then(|seat| seats.get(seat))
        .map_or(0, |seat| seat.gold);
    if gold >= plan.cost && plan.next < plan.sites.len() {
        let site = plan.sites[plan.next];
        plan.next += 1;
        plan.waiting = Some(commands.place_tower(plan.kind, site));
    } else if !plan.readied {
        plan.readied = true;
        commands.ready();
    }
}

fn listen(
    mut plan: ResMut<Plan>,
    mut answered: MessageReader<CommandAnswered>,
    mut events: MessageReader<SessionEvent>,
    mut commands: GameCommands,
) {
    for answer in answered.read() {
        if plan.waiting == Some(answer.id) {
            plan.waiting = None;
        }
        plan.answers.push(*answer);
    }
    for event in events.read() {
        if let WireEvent::WaveStarted { .. } = event.event
            && plan.hurry
        {
            commands.call_next_wave();
        }
        plan.events.push(*event);
    }
}

fn client_app(server: &Server, transport: Transport, plan: Plan, map: &str) -> App {
    let mut plugin = RampartClientPlugin::new(
        format!("http://{}", server.addr),
        JoinTarget::Match {
            map: Some(map.into()),
            max_players: Some(1),
        },
    );
    plugin.settings.transport = transport;
    plugin.settings.name = Some("bevy".into());
    let mut app = App::new();
    app.add_plugins(TimePlugin)
        .add_plugins(plugin)
        .insert_resource(plan)
        .add_systems(
            Update,
            (listen, build.run_if(in_state(ConnectionState::Playing))).chain(),
        );
    app
}

fn state(app: &App) -> ConnectionState {
    app.world()
        .resource::<State<ConnectionState>>()
        .get()
        .clone()
}

/// Updates the app every couple of milliseconds until `done` or `limit`.
fn run_until(app: &mut App, limit: Duration, what: &str, done: impl Fn(&mut App) -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        app.update();
        if done(app) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not within {limit:?}; state {:?}",
            state(app)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn my_towers(app: &mut App) -> Vec<TowerId> {
    let Some(seat) = app.world().resource::<LocalSeat>().0 else {
        return Vec::new();
    };
    let world = app.world_mut();
    let mut towers: Vec<TowerId> = world
        .query::<&Tower>()
        .iter(world)
        .filter(|tower| tower.owner == seat)
        .map(|tower| tower.id)
        .collect();
    towers.sort();
    towers
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_bevy_client_plays_a_whole_game_rejoins_after_a_cut_and_agrees_with_the_server() {
    let assets = workspace_root().join("assets");
    let content = content(&assets);
    let data = temp_data_dir("bevy-game");
    let data_arg = data.to_str().unwrap().to_owned();
    let ws = format!("127.0.0.1:{}", free_port());
    let proxy = Proxy::start(&ws);
    let public_ws = format!("ws://127.0.0.1:{}", proxy.port);
    let server = Server::start(&[
        "--data-dir",
        &data_arg,
        "--tick-hz",
        "60",
        "--ws-addr",
        &ws,
        "--public-ws-url",
        &public_ws,
    ]);
    let mut app = client_app(
        &server,
        Transport::WebSocket,
        Plan::new(&content, "small"),
        "small",
    );

    run_until(&mut app, Duration::from_secs(20), "playing", |app| {
        state(app) == ConnectionState::Playing
    });
    let session = app.world().resource::<SessionInfo>().session;
    assert_eq!(app.world().resource::<SessionInfo>().map, "small");

    // Mid-game, with towers up and waves running, the connection is cut.
    run_until(
        &mut app,
        Duration::from_secs(60),
        "towers and waves",
        |app| app.world().resource::<Wave>().0 >= 2 && my_towers(app).len() >= 2,
    );
    let before = my_towers(&mut app);
    proxy.cut();
    run_until(
        &mut app,
        Duration::from_secs(20),
        "noticing the cut",
        |app| state(app) == ConnectionState::Reconnecting,
    );
    // A rejoin meets the cut too and keeps trying.
    let cut_until = Instant::now() + Duration::from_millis(1500);
    run_until(&mut app, Duration::from_secs(5), "the cut's end", |_| {
        Instant::now() >= cut_until
    });
    assert_eq!(state(&app), ConnectionState::Reconnecting);
    proxy.restore();
    run_until(
        &mut app,
        Duration::from_secs(20),
        "taking the seat back",
        |app| state(app) == ConnectionState::Playing,
    );
    assert_eq!(app.world().resource::<SessionInfo>().session, session);
    let after = my_towers(&mut app);
    assert!(
        before.iter().all(|tower| after.contains(tower)),
        "towers built before the cut are still this seat's: {before:?} then {after:?}"
    );
    // The rest of the game, quickly: every wave called as it starts.
    app.world_mut().resource_mut::<Plan>().hurry = true;
    app.world_mut()
        .run_system_once(|mut commands: GameCommands| commands.call_next_wave())
        .unwrap();

    run_until(
        &mut app,
        Duration::from_secs(240),
        "the game's end",
        |app| matches!(state(app), ConnectionState::Ended(_)),
    );
    let ConnectionState::Ended(EndCause::SessionEnded(reason)) = state(&app) else {
        panic!("the game should end as a session: {:?}", state(&app));
    };
    let client = seen(&mut app);
    let outcome = client.outcome.expect("the mirrored world is decided");
    assert_eq!(reason.label(), outcome.name());
    let plan = app.world().resource::<Plan>();
    assert!(
        plan.events.iter().any(|event| event.event
            == WireEvent::GameOver {
                victory: outcome == Outcome::Victory
            }),
        "the game-over event arrived"
    );
    assert!(
        plan.answers.iter().any(|answer| answer.result.is_ok()),
        "commands were answered by their ids"
    );
    let final_tick = app.world().resource::<WorldClock>().tick;

    // The server writes a game's end (its final checkpoint, then its
    // results) behind the game; the match history shows it once both are
    // in the database.
    let deadline = Instant::now() + Duration::from_secs(10);
    let session_label = format!("{session:016x}");
    while !server
        .get("/v1/maps/small/matches")
        .json()
        .as_array()
        .unwrap()
        .iter()
        .any(|line| line["session_id"] == session_label.as_str())
    {
        assert!(
            Instant::now() < deadline,
            "the game's end is not recorded after 10 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // The server's record of the game: its command log and final state hash.
    let exported = rampart(&["export-log", &session_label, "--data-dir", &data_arg]);
    let log = CommandLog::parse(&exported, &content).unwrap();
    let end = log.end.unwrap();
    assert_eq!(
        end.ticks, final_tick,
        "the server's final checkpoint is the tick the client saw the game decided"
    );
    let mut replay = offline_app(SimPlugin::replay(content, log).unwrap());
    run_offline(&mut replay);
    assert_eq!(
        replay.world_mut().resource_mut::<SimSession>().state_hash(),
        end.state_hash,
        "the server's game replays to its recorded final state hash"
    );
    assert_eq!(
        seen(&mut replay),
        client,
        "the client saw the server's final world"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn a_bevy_client_over_udp_builds_and_change_detection_tells_the_truth() {
    let assets = quick_assets("bevy-udp");
    let content = content(&assets);
    let server = Server::start(&["--assets", assets.to_str().unwrap()]);
    let mut plan = Plan::new(&content, "sprint");
    // Two towers only, and no ready: the test watches a quiet board.
    plan.sites.truncate(2);
    plan.readied = true;
    let mut app = client_app(&server, Transport::Udp, plan, "sprint");
    run_until(&mut app, Duration::from_secs(20), "two towers", |app| {
        my_towers(app).len() == 2
    });
    let answers = &app.world().resource::<Plan>().answers;
    assert_eq!(answers.len(), 2);
    assert!(answers.iter().all(|answer| answer.result.is_ok()));
    assert_ne!(answers[0].id, answers[1].id);

    // Snapshots keep coming; towers that did not change are not marked
    // changed, nor are gold and lives.
    app.world_mut().insert_resource(Changes::default());
    app.add_systems(Update, count_changes);
    // A system's first run sees everything as changed; count from its second.
    app.update();
    app.world_mut().insert_resource(Changes::default());
    let tick = app.world().resource::<WorldClock>().tick;
    run_until(&mut app, Duration::from_secs(10), "more snapshots", |app| {
        app.world().resource::<WorldClock>().tick > tick + 60
    });
    let changes = app.world().resource::<Changes>();
    assert_eq!(changes.towers, 0, "no tower changed");
    assert_eq!(changes.lives, 0, "lives did not change");
    assert!(changes.clock > 3, "the clock did");

    // A refused command comes back typed, with its id.
    let id = app
        .world_mut()
        .run_system_once(|mut commands: GameCommands| {
            commands.place_tower(TowerKindId(0), Cell::new(0, 0))
        })
        .unwrap();
    run_until(&mut app, Duration::from_secs(10), "the refusal", |app| {
        app.world()
            .resource::<Plan>()
            .answers
            .iter()
            .any(|answer| answer.id == id)
    });
    let answer = *app
        .world()
        .resource::<Plan>()
        .answers
        .iter()
        .find(|answer| answer.id == id)
        .unwrap();
    assert!(
        matches!(
            answer.result,
            Err(CommandFailure::Refused(WireRejection::Game(
                Rejection::CellNotBuildable | Rejection::OutOfBounds
            )))
        ),
        "{answer:?}"
    );

    app.world_mut().write_message(LeaveGame);
    app.update();
    app.update();
    assert_eq!(state(&app), ConnectionState::Ended(EndCause::Left));
}

#[derive(Resource, Default)]
struct Changes {
    towers: usize,
    lives: usize,
    clock: usize,
}

fn count_changes(
    mut changes: ResMut<Changes>,
    towers: Query<(), Changed<Tower>>,
    lives: Res<Lives>,
    clock: Res<WorldClock>,
) {
    changes.towers += towers.iter().count();
    changes.lives += usize::from(lives.is_changed());
    changes.clock += usize::from(clock.is_changed());
}
