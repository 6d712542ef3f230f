//! `maps/*.toml` and the Moving AI `.map` files they import: a map's grid,
//! drawn in the file or imported with its spawns and goals listed, and the
//! checks that every spawn can walk to a goal. `reaches_goal` is shared with
//! scenarios, whose towers must leave those paths open.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::RangeInclusive;

use toml::Spanned;
use toml::de::DeValue;

use super::Loader;
use super::walker::{Cx, Diagnostic, Source, Tab, to_u16};
use crate::content::movingai::{MovingAiError, parse_movingai_map};
use crate::grid::{Cell, Grid, Tile};
use crate::path::FlowField;

/// Smallest and largest map side in cells.
const MAP_SIDE: RangeInclusive<usize> = 4..=1024;
/// Most spawns or goals on one map (a group's `spawn` is a `u8`).
pub(super) const MAX_ENDPOINTS: usize = 64;

/// A map as drawn or imported, before its waves are attached.
pub(super) struct MapDraft {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) grid: Option<Grid>,
    pub(super) start_gold: u32,
    pub(super) lives: u32,
}

impl Loader {
    /// One map file, its grid drawn or imported from one of `movingai`
    /// (whose names it adds to `imported`, so unused imports are reported).
    pub(super) fn map(
        &mut self,
        source: &Source,
        movingai: &BTreeMap<&str, &Source>,
        imported: &mut BTreeSet<String>,
    ) -> MapDraft {
        let key = source.stem();
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("map `{key}`"),
        };
        cx.known_keys(
            &tab,
            &[
                "name",
                "start_gold",
                "lives",
                "grid",
                "import",
                "spawns",
                "goals",
            ],
        );
        let name = cx.name(&tab);
        let start_gold = cx.integer(&tab, "start_gold", 0..=1_000_000, None) as u32;
        let lives = cx.integer(&tab, "lives", 1..=1_000_000, None) as u32;
        let grid = match (root.get("grid"), root.get("import")) {
            (Some(grid), None) => {
                for key in ["spawns", "goals"] {
                    if let Some(value) = root.get(key) {
                        cx.error(
                            value.span().start,
                            format!("`{key}` is only for imported maps; draw S and G in `grid`"),
                        );
                    }
                }
                drawn_grid(&mut cx, grid)
            }
            (None, Some(_)) => {
                let (file, at) = cx.string(&tab, "import", true).unwrap_or_default();
                match movingai.get(file.as_str()) {
                    Some(map_source) => {
                        imported.insert(file.clone());
                        match parse_movingai_map(&map_source.text) {
                            Ok(grid) => imported_grid(&mut cx, &tab, grid),
                            Err(error) => {
                                let (line, column, message) = match error {
                                    MovingAiError::Syntax {
                                        line,
                                        column,
                                        message,
                                    } => (line, column, message),
                                    MovingAiError::Io { source, .. } => (1, 1, source.to_string()),
                                };
                                cx.report.push(Diagnostic {
                                    file: map_source.rel.clone(),
                                    line: line.max(1),
                                    column: column.max(1),
                                    message,
                                });
                                None
                            }
                        }
                    }
                    None => {
                        cx.error(at, format!("`import` = \"{file}\": no such file in maps/ (a Moving AI .map file)"));
                        None
                    }
                }
            }
            (Some(_), Some(import)) => {
                cx.error(
                    import.span().start,
                    "a map has either `grid` or `import`, not both",
                );
                None
            }
            (None, None) => {
                cx.error(
                    0,
                    format!("missing required key `grid` (or `import`) in map `{key}`"),
                );
                None
            }
        };
        if let Some(grid) = &grid {
            let field = goal_field(grid, &grid.walkable_mask());
            let at = root
                .get("grid")
                .or(root.get("spawns"))
                .map_or(0, |v| v.span().start);
            let shortest = cx.rules.min_path_cells;
            for (index, spawn) in grid.spawns().iter().enumerate() {
                match field.route_length(grid.index(*spawn)) {
                    None => cx.error(
                        at,
                        format!(
                            "spawn {index} at ({}, {}) has no path to any goal",
                            spawn.x, spawn.y
                        ),
                    ),
                    Some(length) if length < shortest => cx.warn(
                        at,
                        format!(
                            "spawn {index} at ({}, {}) walks only {length:.1} cells to the \
                             nearest goal (under {shortest}): towers have little road to \
                             work on",
                            spawn.x, spawn.y
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        MapDraft {
            key,
            name,
            grid,
            start_gold,
            lives,
        }
    }
}

/// Byte offset in the file of each character of a multi-line string value,
/// when the source spells the string literally (no escapes); otherwise every
/// character is blamed on the start of the value.
fn string_offsets(
    source: &Source,
    value: &Spanned<DeValue<'_>>,
    text: &str,
) -> impl Fn(usize) -> usize {
    let span = value.span();
    let raw = source.text.get(span.clone()).unwrap_or("");
    let mut start = None;
    for quote in ["'''", "\"\"\"", "'", "\""] {
        if let Some(rest) = raw.strip_prefix(quote) {
            let skip = if quote.len() == 3 {
                if rest.starts_with("\r\n") {
                    2
                } else {
                    usize::from(rest.starts_with('\n'))
                }
            } else {
                0
            };
            if rest[skip..].starts_with(text) {
                start = Some(span.start + quote.len() + skip);
            }
            break;
        }
    }
    let fallback = span.start;
    move |offset| start.map_or(fallback, |s| s + offset)
}

fn drawn_grid(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>) -> Option<Grid> {
    let Some(text) = value.get_ref().as_str() else {
        cx.wrong_type(value, "grid", "a multi-line string of rows");
        return None;
    };
    let at = string_offsets(cx.source, value, text);
    // Rows with the byte offset each starts at inside `text`.
    let mut rows: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        rows.push((offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += line.len() + 1;
    }
    while rows.last().is_some_and(|(_, row)| row.trim().is_empty()) {
        rows.pop();
    }
    let height = rows.len();
    let width = rows.first().map_or(0, |(_, row)| row.chars().count());
    let mut ok = true;
    if !MAP_SIDE.contains(&height) || !MAP_SIDE.contains(&width) {
        cx.error(
            value.span().start,
            format!(
                "grid is {width}x{height}; width and height must each be {}..={}",
                MAP_SIDE.start(),
                MAP_SIDE.end()
            ),
        );
        ok = false;
    }
    let mut tiles = Vec::with_capacity(width * height);
    let (mut spawns, mut goals) = (Vec::new(), Vec::new());
    for (y, (row_start, row)) in rows.iter().enumerate() {
        let count = row.chars().count();
        if count != width {
            // Still read the row so its spawns and goals count: one short
            // row should not also report a missing goal.
            cx.error(
                at(*row_start),
                format!(
                    "grid row {} has {count} cells; the first row has {width}",
                    y + 1
                ),
            );
            ok = false;
        }
        for (x, (byte, ch)) in row.char_indices().enumerate() {
            let cell = Cell::new(to_u16(x), to_u16(y));
            let tile = match ch {
                '#' => Tile::Blocked,
                '.' => Tile::Buildable,
                '=' => Tile::Path,
                'S' => {
                    spawns.push(cell);
                    Tile::Path
                }
                'G' => {
                    goals.push(cell);
                    Tile::Path
                }
                other => {
                    cx.error(
                        at(row_start + byte),
                        format!("unknown grid character {other:?}; use # . = S G"),
                    );
                    ok = false;
                    Tile::Blocked
                }
            };
            tiles.push(tile);
        }
    }
    ok &= endpoint_counts(cx, value.span().start, spawns.len(), goals.len());
    ok.then(|| Grid::new(to_u16(width), to_u16(height), tiles, spawns, goals))
}

fn endpoint_counts(cx: &mut Cx<'_>, at: usize, spawns: usize, goals: usize) -> bool {
    let mut ok = true;
    for (what, count) in [("spawn", spawns), ("goal", goals)] {
        if count == 0 {
            cx.error(at, format!("map has no {what}"));
            ok = false;
        } else if count > MAX_ENDPOINTS {
            cx.error(
                at,
                format!("map has {count} {what}s; at most {MAX_ENDPOINTS}"),
            );
            ok = false;
        }
    }
    ok
}

/// Adds the file's `spawns` and `goals` to an imported grid; they become
/// path cells so no tower can sit on them.
fn imported_grid(cx: &mut Cx<'_>, tab: &Tab<'_, '_>, grid: Grid) -> Option<Grid> {
    if !MAP_SIDE.contains(&usize::from(grid.width()))
        || !MAP_SIDE.contains(&usize::from(grid.height()))
    {
        let at = tab.table.get("import").map_or(0, |v| v.span().start);
        cx.error(
            at,
            format!(
                "imported grid is {}x{}; sides must be 4..=1024",
                grid.width(),
                grid.height()
            ),
        );
        return None;
    }
    let mut tiles = grid.tiles().to_vec();
    let mut ok = true;
    let mut lists = [Vec::new(), Vec::new()];
    for (list, key) in lists.iter_mut().zip(["spawns", "goals"]) {
        let Some((array, _)) = cx.array(tab, key, true) else {
            ok = false;
            continue;
        };
        for item in array.iter() {
            let Some((x, y, at)) = cx.cell(item, key) else {
                ok = false;
                continue;
            };
            if !grid.contains(x as i32, y as i32) {
                cx.error(
                    at,
                    format!(
                        "({x}, {y}) is outside the {}x{} grid",
                        grid.width(),
                        grid.height()
                    ),
                );
                ok = false;
                continue;
            }
            let cell = Cell::new(x as u16, y as u16);
            let index = grid.index(cell);
            if tiles[index] == Tile::Blocked {
                cx.error(at, format!("({x}, {y}) is blocked terrain"));
                ok = false;
            } else if tiles[index] == Tile::Path {
                cx.error(at, format!("({x}, {y}) is already a spawn or goal"));
                ok = false;
            }
            tiles[index] = Tile::Path;
            list.push(cell);
        }
    }
    let [spawns, goals] = lists;
    ok &= endpoint_counts(cx, tab.at, spawns.len(), goals.len());
    ok.then(|| Grid::new(grid.width(), grid.height(), tiles, spawns, goals))
}

/// Which cells can walk to some goal, by the movement rules the game uses:
/// the simulation's own flow field, so content and play never disagree.
pub(super) fn reaches_goal(grid: &Grid, walkable: &[bool]) -> Vec<bool> {
    let field = goal_field(grid, walkable);
    (0..grid.len())
        .map(|index| field.reachable(index))
        .collect()
}

/// The walkers' flow field toward the map's goals over `walkable`.
fn goal_field(grid: &Grid, walkable: &[bool]) -> FlowField {
    let goals: Vec<usize> = grid
        .goals()
        .iter()
        .map(|goal| grid.index(*goal))
        .filter(|&goal| walkable[goal])
        .collect();
    let mut field = FlowField::new(grid.width(), grid.height());
    field.compute(walkable, &goals);
    field
}
