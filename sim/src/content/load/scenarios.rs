//! `scenarios/*.toml`: scripted starting positions on a map. Each tower must
//! stand on a free buildable cell at a level its kind has, and leave every
//! spawn a path to a goal, as a placement in play would.

use super::Loader;
use super::maps::reaches_goal;
use super::walker::{Source, Tab, to_u16};
use crate::content::{MapDef, Scenario, ScenarioTower, TowerKind, TowerKindId};
use crate::grid::{Cell, Grid, Tile};

impl Loader {
    /// One scenario, its map and tower kinds resolved against those loaded.
    pub(super) fn scenario(
        &mut self,
        source: &Source,
        towers: &[TowerKind],
        maps: &[MapDef],
    ) -> Scenario {
        let key = source.stem();
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("scenario `{key}`"),
        };
        cx.known_keys(&tab, &["map", "players", "start_gold", "lives", "tower"]);
        let map = cx.string(&tab, "map", true).and_then(|(name, at)| {
            let found = maps.iter().find(|m| m.key == name);
            if found.is_none() {
                cx.error(at, format!("unknown map `{name}`"));
            }
            found
        });
        let players = cx.integer(&tab, "players", 1..=8, None) as u8;
        let start_gold = tab
            .table
            .get("start_gold")
            .map(|_| cx.integer(&tab, "start_gold", 0..=1_000_000_000, None) as u32);
        let lives = tab
            .table
            .get("lives")
            .map(|_| cx.integer(&tab, "lives", 1..=1_000_000_000, None) as u32);
        // Map cells taken so far, to reject a second tower on one cell and to
        // check that the towers leave every spawn a way out.
        let grid = map.map(|m| &m.grid).filter(|g| !g.is_empty());
        let mut walkable = grid.map(Grid::walkable_mask).unwrap_or_default();
        // A spawn the map itself cuts off is the map's problem, reported
        // there; only blame towers for spawns that could reach a goal.
        let open_spawns: Vec<bool> = grid.map_or(Vec::new(), |g| {
            let reached = reaches_goal(g, &walkable);
            g.spawns().iter().map(|s| reached[g.index(*s)]).collect()
        });
        let mut placed = Vec::new();
        for tower in cx.tables(&tab, "tower", 0, 100_000, |i| format!("tower {}", i + 1)) {
            cx.known_keys(&tower, &["player", "kind", "x", "y", "level"]);
            let player_value = tower.table.get("player");
            let player = cx.integer(&tower, "player", 0..=7, None);
            if let Some(value) = player_value
                && player >= i64::from(players)
                && players > 0
            {
                cx.error(
                    value.span().start,
                    format!("player {player} does not exist: players are 0..{players}"),
                );
            }
            let kind = cx.string(&tower, "kind", true).and_then(|(name, at)| {
                let found = towers.iter().position(|t| t.key == name);
                if found.is_none() {
                    cx.error(at, format!("unknown tower kind `{name}`"));
                }
                found
            });
            let x = cx.integer(&tower, "x", 0..=i64::from(u16::MAX), None);
            let y = cx.integer(&tower, "y", 0..=i64::from(u16::MAX), None);
            let level = cx.integer(&tower, "level", 0..=255, Some(0));
            if let Some(kind) = kind {
                let levels = towers[kind].levels.len();
                if level as usize >= levels && levels > 0 {
                    let at = tower
                        .table
                        .get("level")
                        .map_or(tower.at, |v| v.span().start);
                    cx.error(
                        at,
                        format!(
                            "tower `{}` has levels 0..={}, not {level}",
                            towers[kind].key,
                            levels - 1
                        ),
                    );
                }
            }
            let cell = Cell::new(x as u16, y as u16);
            if let Some(grid) = grid {
                let at = tower.table.get("x").map_or(tower.at, |v| v.span().start);
                if !grid.contains(x as i32, y as i32) {
                    cx.error(
                        at,
                        format!(
                            "({x}, {y}) is outside the {}x{} map",
                            grid.width(),
                            grid.height()
                        ),
                    );
                } else if grid.tile(cell) != Tile::Buildable {
                    cx.error(at, format!("({x}, {y}) is not a buildable cell"));
                } else if !walkable[grid.index(cell)] {
                    cx.error(at, format!("({x}, {y}) already has a tower"));
                } else {
                    walkable[grid.index(cell)] = false;
                    let reached = reaches_goal(grid, &walkable);
                    if let Some(spawn) = grid
                        .spawns()
                        .iter()
                        .zip(&open_spawns)
                        .position(|(s, open)| *open && !reached[grid.index(*s)])
                    {
                        cx.error(
                            at,
                            format!("a tower at ({x}, {y}) would cut every path from spawn {spawn} to the goals"),
                        );
                        walkable[grid.index(cell)] = true;
                    }
                }
            }
            placed.push(ScenarioTower {
                player: player as u8,
                kind: TowerKindId(to_u16(kind.unwrap_or(0))),
                cell,
                level: level as u8,
            });
        }
        Scenario {
            key,
            map: map.map(|m| m.key.clone()).unwrap_or_default(),
            players,
            start_gold,
            lives,
            towers: placed,
        }
    }
}
