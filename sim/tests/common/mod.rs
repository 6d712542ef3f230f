//! Content built in code for tests, so each test states exactly the map and
//! numbers it depends on, plus the real assets for tests that want them.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use rampart_sim::content::*;
use rampart_sim::grid::{Cell, Grid, Tile};
use rampart_sim::{Session, SessionConfig};

/// Parses a map drawn with `#` blocked, `.` buildable, `=` road, `S` spawn, `G` goal.
pub fn grid(rows: &[&str]) -> Grid {
    let height = rows.len() as u16;
    let width = rows[0].len() as u16;
    let (mut tiles, mut spawns, mut goals) = (Vec::new(), Vec::new(), Vec::new());
    for (y, row) in rows.iter().enumerate() {
        for (x, ch) in row.chars().enumerate() {
            let cell = Cell::new(x as u16, y as u16);
            tiles.push(match ch {
                '#' => Tile::Blocked,
                '.' => Tile::Buildable,
                'S' => {
                    spawns.push(cell);
                    Tile::Path
                }
                'G' => {
                    goals.push(cell);
                    Tile::Path
                }
                _ => Tile::Path,
            });
        }
    }
    Grid::new(width, height, tiles, spawns, goals)
}

fn level(cost: u32) -> TowerLevel {
    TowerLevel {
        cost,
        range: 3.0,
        reload: 0.5,
        damage: 10.0,
        damage_type: DamageType::Physical,
        projectile_speed: 10.0,
        splash_radius: 0.0,
        slow: None,
        dot: None,
    }
}

/// One tower kind (`arrow`: cost 50, upgrades 40 and 60), one enemy kind,
/// and the given maps with three short finite waves each.
pub fn content(maps: Vec<(&str, Grid)>) -> Arc<Content> {
    content_with_gold(maps, 100)
}

/// As [`content`], with another starting gold.
pub fn content_with_gold(maps: Vec<(&str, Grid)>, start_gold: u32) -> Arc<Content> {
    let towers = vec![TowerKind {
        key: "arrow".into(),
        name: "Arrow".into(),
        targets: TargetFilter {
            ground: true,
            air: true,
        },
        flight: Flight::Homing,
        sell_refund: 0.5,
        levels: vec![level(50), level(40), level(60)],
    }];
    let enemies = vec![EnemyKind {
        key: "grunt".into(),
        name: "Grunt".into(),
        tribe: TribeId(0),
        hp: 30.0,
        armour: 0.0,
        speed: 1.0,
        bounty: 5,
        lives_cost: 1,
        flying: false,
        resist: Resistances::default(),
    }];
    let wave = Wave {
        duration: 10.0,
        groups: vec![SpawnGroup {
            enemy: EnemyKindId(0),
            count: 3,
            interval: 1.0,
            delay: 0.0,
            spawn: 0,
        }],
    };
    let maps = maps
        .into_iter()
        .map(|(key, grid)| MapDef {
            key: key.into(),
            name: key.into(),
            grid,
            start_gold,
            lives: 3,
            waves: WaveSet {
                prep_seconds: 5.0,
                early_call_bonus_per_second: 1.0,
                waves: vec![wave.clone(), wave.clone(), wave.clone()],
                endless: None,
            },
        })
        .collect();
    Arc::new(Content {
        towers,
        enemies,
        tribes: vec![Tribe {
            key: "test".into(),
            name: "Test".into(),
            enemies: vec![EnemyKindId(0)],
        }],
        maps,
        scenarios: Vec::new(),
        version: 1,
        rules: RulesCache::default(),
    })
}

/// A session on `map` of `content`.
pub fn session(content: &Arc<Content>, map: &str, players: u8) -> Session {
    let config = SessionConfig {
        map: map.into(),
        scenario: None,
        players,
        seed: 1,
        tick_hz: 30,
    };
    Session::new(content.clone(), &config).unwrap()
}

/// The repository's `assets/`, loaded.
pub fn assets() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    Arc::new(load_dir(&dir).unwrap())
}
