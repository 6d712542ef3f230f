//! A headless Bevy client: opens a one-seat game on a rampart server,
//! builds arrow towers beside the road, readies, calls waves early, and
//! prints the wave and lives as it plays, until the game ends.
//!
//! ```text
//! cargo run -p rampart-server -- --tick-hz 60 &        # a server on :8080
//! cargo run -p rampart-bevy --example headless -- http://127.0.0.1:8080 small
//! ```
//!
//! Arguments: the server's HTTP address, the map, and `ws` to connect over
//! WebSocket instead of UDP. The map's cells come from `assets/` (a game
//! ships the content it was built with; the welcome names its version).
//!
//! `bevy::MinimalPlugins` is `TaskPoolPlugin`, `FrameCountPlugin`,
//! `TimePlugin` and `ScheduleRunnerPlugin`; this example adds the same
//! plugins from their own crates (less the frame counter), because the
//! `bevy` umbrella crate needs a newer Rust than this workspace builds
//! with. A game on `bevy` writes `.add_plugins(MinimalPlugins)` (or
//! `DefaultPlugins`).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bevy_app::{App, AppExit, ScheduleRunnerPlugin, TaskPoolPlugin, Update};
use bevy_ecs::prelude::*;
use bevy_state::prelude::*;
use bevy_time::TimePlugin;
use rampart_bevy::prelude::*;

/// Where towers go: buildable cells beside the road, nearest the spawn
/// first, and the kind to build.
#[derive(Resource)]
struct Plan {
    kind: TowerKindId,
    cost: u32,
    sites: Vec<Cell>,
    next: usize,
    waiting: Option<CommandId>,
    readied: bool,
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let server = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8080".into());
    let map = args.next().unwrap_or_else(|| "small".into());
    let websocket = args.next().as_deref() == Some("ws");
    let plan = match plan(&map) {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    // A game of its own, one seat: a lobby with free seats does not tick
    // (commands wait in it, unanswered) until other players fill it.
    let target = JoinTarget::Match {
        map: Some(map.clone()),
        max_players: Some(1),
    };
    let mut client = RampartClientPlugin::new(server, target);
    client.settings.name = Some("headless".into());
    if websocket {
        client.settings.transport = Transport::WebSocket;
    }
    let exit = App::new()
        .add_plugins((
            TaskPoolPlugin::default(),
            TimePlugin,
            ScheduleRunnerPlugin::run_loop(Duration::from_secs_f64(1.0 / 60.0)),
        ))
        .add_plugins(client)
        .insert_resource(plan)
        .add_systems(
            Update,
            (build, report).run_if(in_state(ConnectionState::Playing)),
        )
        .add_systems(Update, (answers, events))
        .add_systems(OnEnter(ConnectionState::Reconnecting), || {
            println!("connection lost; taking the seat back")
        })
        .add_systems(Update, stop_at_end)
        .run();
    if exit.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Arrow towers on every buildable cell that touches the road.
fn plan(map: &str) -> Result<Plan, String> {
    let content = rampart_sim::content::load_dir(Path::new("assets"))
        .map_err(|error| format!("loading assets/: {error}"))?;
    let kind = content
        .tower_id("arrow")
        .ok_or("the content has no `arrow` tower")?;
    let grid = &content
        .map(map)
        .ok_or_else(|| format!("the content has no map `{map}`"))?
        .grid;
    let road = |x: i32, y: i32| {
        grid.contains(x, y)
            && grid.tile(Cell::new(x as u16, y as u16)) == rampart_sim::grid::Tile::Path
    };
    let sites = (0..grid.len())
        .map(|index| grid.cell(index))
        .filter(|&cell| grid.tile(cell) == rampart_sim::grid::Tile::Buildable)
        .filter(|cell| {
            let (x, y) = (i32::from(cell.x), i32::from(cell.y));
            road(x - 1, y) || road(x + 1, y) || road(x, y - 1) || road(x, y + 1)
        })
        .collect();
    Ok(Plan {
        kind,
        cost: content.tower(kind).levels[0].cost,
        sites,
        next: 0,
        waiting: None,
        readied: false,
    })
}

/// One tower at a time while gold lasts, then ready.
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

fn answers(mut plan: ResMut<Plan>, mut answered: MessageReader<CommandAnswered>) {
    for answer in answered.read() {
        if plan.waiting == Some(answer.id) {
            plan.waiting = None;
        }
        if let Err(failure) = answer.result {
            println!("{:?} refused: {failure}", answer.command);
        }
    }
}

fn events(mut events: MessageReader<SessionEvent>, mut commands: GameCommands) {
    for event in events.read() {
        match event.event {
            WireEvent::WaveStarted { wave, .. } => {
                println!("tick {}: wave {wave} started", event.tick);
                commands.call_next_wave();
            }
            WireEvent::GameOver { victory } => {
                println!("game over: {}", if victory { "victory" } else { "defeat" });
            }
            _ => {}
        }
    }
}

fn report(wave: Res<Wave>, lives: Res<Lives>, towers: Query<&Tower, Added<Tower>>) {
    if wave.is_changed() || lives.is_changed() {
        println!("wave {}, lives {}", wave.0, lives.0);
    }
    for tower in &towers {
        println!("tower {} built by {}", tower.id, tower.owner);
    }
}

fn stop_at_end(state: Res<State<ConnectionState>>, mut exit: MessageWriter<AppExit>) {
    if let ConnectionState::Ended(cause) = state.get() {
        println!("{cause}");
        exit.write(match cause {
            EndCause::SessionEnded(_) => AppExit::Success,
            _ => AppExit::error(),
        });
    }
}
