//! What a client that draws needs of the loaded content, which the wire
//! names only by index (docs/PROTOCOL.md section 10): `GET /v1/content`
//! (tower kinds with their levels, enemy kinds, the maps) and
//! `GET /v1/maps/{key}/grid` (a map's tiles, spawns and goals). Both come
//! from the content this process loaded, not the database, so they answer
//! on a server without records and always match the sessions it hosts.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use rampart_sim::content::{Content, Flight, MapDef, TowerKind};
use rampart_sim::grid::{Cell, Tile};
use serde::Serialize;

use super::{ApiError, AppState};

/// `GET /v1/content`.
#[derive(Serialize)]
pub(super) struct ContentView {
    /// The content version, 16 hex digits (as `Welcome` carries it).
    version: String,
    /// Tower kinds in index order.
    towers: Vec<TowerView>,
    /// Enemy kinds in index order.
    enemies: Vec<EnemyView>,
    /// Every map, without its tiles.
    maps: Vec<MapSummary>,
}

#[derive(Serialize)]
struct TowerView {
    key: String,
    name: String,
    /// `homing` or `ballistic`.
    flight: &'static str,
    ground: bool,
    air: bool,
    /// Share of what was spent that selling returns.
    sell_refund: f32,
    /// Level 0 is the tower as built; each next entry is an upgrade.
    levels: Vec<LevelView>,
}

#[derive(Serialize)]
struct LevelView {
    cost: u32,
    /// In cells, from the tower's cell centre.
    range: f32,
    /// Seconds between shots.
    reload: f32,
    damage: f32,
    splash_radius: f32,
}

#[derive(Serialize)]
struct EnemyView {
    key: String,
    name: String,
    flying: bool,
    hp: f32,
    speed: f32,
}

#[derive(Serialize)]
struct MapSummary {
    key: String,
    name: String,
    width: u16,
    height: u16,
    start_gold: u32,
    lives: u32,
    waves: usize,
}

/// `GET /v1/maps/{key}/grid`.
#[derive(Serialize)]
pub(super) struct GridView {
    key: String,
    width: u16,
    height: u16,
    /// One string per row, top first, one character per cell: `#` blocked,
    /// `.` buildable, `=` walk only, `S` a spawn, `G` a goal (as in the
    /// map files).
    rows: Vec<String>,
    spawns: Vec<[u16; 2]>,
    goals: Vec<[u16; 2]>,
}

pub(super) async fn content(State(state): State<AppState>) -> Json<ContentView> {
    Json(ContentView::new(&state.host.content()))
}

pub(super) async fn grid(
    State(state): State<AppState>,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<GridView>, ApiError> {
    let Ok(Path(key)) = key else {
        return Err(ApiError::not_found());
    };
    state
        .host
        .content()
        .map(&key)
        .map(|map| Json(GridView::new(map)))
        .ok_or_else(ApiError::not_found)
}

impl ContentView {
    fn new(content: &Content) -> Self {
        Self {
            version: format!("{:016x}", content.version),
            towers: content.towers.iter().map(TowerView::new).collect(),
            enemies: content
                .enemies
                .iter()
                .map(|enemy| EnemyView {
                    key: enemy.key.clone(),
                    name: enemy.name.clone(),
                    flying: enemy.flying,
                    hp: enemy.hp,
                    speed: enemy.speed,
                })
                .collect(),
            maps: content
                .maps
                .iter()
                .map(|map| MapSummary {
                    key: map.key.clone(),
                    name: map.name.clone(),
                    width: map.grid.width(),
                    height: map.grid.height(),
                    start_gold: map.start_gold,
                    lives: map.lives,
                    waves: map.waves.waves.len(),
                })
                .collect(),
        }
    }
}

impl TowerView {
    fn new(tower: &TowerKind) -> Self {
        Self {
            key: tower.key.clone(),
            name: tower.name.clone(),
            flight: match tower.flight {
                Flight::Homing => "homing",
                Flight::Ballistic => "ballistic",
            },
            ground: tower.targets.ground,
            air: tower.targets.air,
            sell_refund: tower.sell_refund,
            levels: tower
                .levels
                .iter()
                .map(|level| LevelView {
                    cost: level.cost,
                    range: level.range,
                    reload: level.reload,
                    damage: level.damage,
                    splash_radius: level.splash_radius,
                })
                .collect(),
        }
    }
}

impl GridView {
    fn new(map: &MapDef) -> Self {
        let grid = &map.grid;
        let cells = |cells: &[Cell]| cells.iter().map(|cell| [cell.x, cell.y]).collect();
        let rows = (0..grid.height())
            .map(|y| {
                (0..grid.width())
                    .map(|x| {
                        let cell = Cell::new(x, y);
                        if grid.spawns().contains(&cell) {
                            'S'
                        } else if grid.goals().contains(&cell) {
                            'G'
                        } else {
                            match grid.tile(cell) {
                                Tile::Blocked => '#',
                                Tile::Buildable => '.',
                                Tile::Path => '=',
                            }
                        }
                    })
                    .collect()
            })
            .collect();
        Self {
            key: map.key.clone(),
            width: grid.width(),
            height: grid.height(),
            rows,
            spawns: cells(grid.spawns()),
            goals: cells(grid.goals()),
        }
    }
}
