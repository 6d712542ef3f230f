//! One test per validation rule: each breaks a minimal valid content set in
//! one place and pins the file, line, column and wording of the report.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use super::*;
use crate::grid::{Cell, Tile};

const TOWERS: &str = r#"[arrow]
name = "Arrow"
targets = ["ground"]
flight = "homing"
sell_refund = 0.5

[[arrow.level]]
cost = 10
range = 3
reload = 1
damage = 5
damage_type = "physical"
projectile_speed = 10
"#;

const ORCS: &str = r#"name = "Orcs"

[enemy.grunt]
name = "Grunt"
hp = 10
speed = 1
bounty = 1
"#;

const MAP: &str = r#"name = "Tiny"
start_gold = 100
lives = 10
grid = """
######
S.#..#
#....G
######
"""
"#;

const WAVES: &str = r#"prep_seconds = 5
early_call_bonus_per_second = 1

[[wave]]
duration = 10

[[wave.group]]
enemy = "grunt"
count = 3
interval = 1
"#;

const SCENARIO: &str = r#"map = "tiny"
players = 2

[[tower]]
player = 1
kind = "arrow"
x = 4
y = 1
"#;

/// Writes the minimal content set with `changes` applied (an empty text
/// deletes the file) into a fresh directory named after the test.
fn write(test: &str, changes: &[(&str, &str)]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-load-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut files = vec![
        ("towers.toml", TOWERS),
        ("tribes/orcs.toml", ORCS),
        ("maps/tiny.toml", MAP),
        ("waves/tiny.toml", WAVES),
        ("scenarios/demo.toml", SCENARIO),
    ];
    for (path, text) in changes {
        files.retain(|(p, _)| p != path);
        files.push((path, text));
    }
    for (path, text) in files {
        if text.is_empty() {
            continue;
        }
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    dir
}

fn diagnostics(test: &str, changes: &[(&str, &str)]) -> Vec<Diagnostic> {
    let dir = write(test, changes);
    let result = load_dir(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    match result {
        Err(ContentError::Invalid(diagnostics)) => diagnostics,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("content unexpectedly valid"),
    }
}

/// Asserts exactly one diagnostic, at `file:line:column`, containing `text`.
#[track_caller]
fn single(test: &str, changes: &[(&str, &str)], file: &str, line: u32, column: u32, text: &str) {
    let found = diagnostics(test, changes);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_at(&found[0], file, line, column, text);
}

#[track_caller]
fn assert_at(diagnostic: &Diagnostic, file: &str, line: u32, column: u32, text: &str) {
    assert_eq!(
        (
            diagnostic.file.as_path(),
            diagnostic.line,
            diagnostic.column
        ),
        (Path::new(file), line, column),
        "{diagnostic}"
    );
    assert!(
        diagnostic.message.contains(text),
        "`{}` lacks `{text}`",
        diagnostic.message
    );
}

#[test]
fn minimal_content_loads() {
    let dir = write("minimal", &[]);
    let content = load_dir(&dir).unwrap();
    let again = load_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(content.version, again.version);
    assert_eq!(content.towers[0].key, "arrow");
    assert_eq!(content.enemies[0].key, "grunt");
    let map = content.map("tiny").unwrap();
    assert_eq!((map.grid.width(), map.grid.height()), (6, 4));
    assert_eq!(map.grid.spawns(), &[Cell::new(0, 1)]);
    assert_eq!(map.grid.goals(), &[Cell::new(5, 2)]);
    assert_eq!(map.grid.tile(Cell::new(1, 1)), Tile::Buildable);
    assert_eq!(map.grid.tile(Cell::new(0, 1)), Tile::Path);
    assert_eq!(map.waves.waves[0].groups[0].count, 3);
    let scenario = content.scenario("demo").unwrap();
    assert_eq!(scenario.towers[0].cell, Cell::new(4, 1));
    assert_eq!(scenario.towers[0].player, 1);
}

#[test]
fn version_changes_with_any_byte() {
    let a = write("version_a", &[]);
    let b = write(
        "version_b",
        &[("waves/tiny.toml", &WAVES.replace("count = 3", "count = 4"))],
    );
    let (va, vb) = (load_dir(&a).unwrap().version, load_dir(&b).unwrap().version);
    std::fs::remove_dir_all(&a).unwrap();
    std::fs::remove_dir_all(&b).unwrap();
    assert_ne!(va, vb);
}

#[test]
fn unknown_key_points_at_the_key() {
    let towers = TOWERS.replace("reload = 1\n", "reload = 1\n  colour = \"red\"\n");
    single(
        "unknown",
        &[("towers.toml", &towers)],
        "towers.toml",
        11,
        3,
        "unknown key `colour` in level 0 of tower `arrow`",
    );
}

#[test]
fn missing_key_points_at_the_table() {
    let orcs = ORCS.replace("hp = 10\n", "");
    single(
        "missing",
        &[("tribes/orcs.toml", &orcs)],
        "tribes/orcs.toml",
        3,
        1,
        "missing required key `hp` in enemy `grunt`",
    );
    let waves = WAVES.replace("prep_seconds = 5\n", "");
    single(
        "missing_root",
        &[("waves/tiny.toml", &waves)],
        "waves/tiny.toml",
        1,
        1,
        "missing required key `prep_seconds`",
    );
}

#[test]
fn out_of_range_points_at_the_value() {
    let orcs = ORCS.replace("speed = 1", "speed = 50");
    single(
        "range",
        &[("tribes/orcs.toml", &orcs)],
        "tribes/orcs.toml",
        6,
        9,
        "`speed` = 50 is out of range 0.1..=20",
    );
    let towers = TOWERS.replace("sell_refund = 0.5", "sell_refund = 1.5");
    single(
        "range_refund",
        &[("towers.toml", &towers)],
        "towers.toml",
        5,
        15,
        "`sell_refund` = 1.5 is out of range 0..=1",
    );
}

#[test]
fn wrong_type_points_at_the_value() {
    let orcs = ORCS.replace("hp = 10", "hp = \"lots\"");
    single(
        "type",
        &[("tribes/orcs.toml", &orcs)],
        "tribes/orcs.toml",
        5,
        6,
        "`hp` must be a number, found string",
    );
    let waves = WAVES.replace("count = 3", "count = 2.5");
    single(
        "type_int",
        &[("waves/tiny.toml", &waves)],
        "waves/tiny.toml",
        9,
        9,
        "`count` must be a whole number",
    );
}

#[test]
fn dangling_references_point_at_the_name() {
    let waves = WAVES.replace("enemy = \"grunt\"", "enemy = \"gruntt\"");
    single(
        "dangling_enemy",
        &[("waves/tiny.toml", &waves)],
        "waves/tiny.toml",
        8,
        9,
        "unknown enemy kind `gruntt`",
    );
    let scenario = SCENARIO.replace("kind = \"arrow\"", "kind = \"laser\"");
    single(
        "dangling_tower",
        &[("scenarios/demo.toml", &scenario)],
        "scenarios/demo.toml",
        6,
        8,
        "unknown tower kind `laser`",
    );
    let scenario = SCENARIO.replace("map = \"tiny\"", "map = \"huge\"");
    single(
        "dangling_map",
        &[("scenarios/demo.toml", &scenario)],
        "scenarios/demo.toml",
        1,
        7,
        "unknown map `huge`",
    );
    let waves = WAVES.replace("interval = 1\n", "interval = 1\nspawn = 1\n");
    single(
        "dangling_spawn",
        &[("waves/tiny.toml", &waves)],
        "waves/tiny.toml",
        11,
        9,
        "spawn 1 does not exist",
    );
}

#[test]
fn waves_and_maps_come_in_pairs() {
    single(
        "no_waves",
        &[("waves/tiny.toml", "")],
        "maps/tiny.toml",
        1,
        1,
        "map `tiny` has no waves file",
    );
    single(
        "no_map",
        &[("waves/other.toml", WAVES)],
        "waves/other.toml",
        1,
        1,
        "no map `other`",
    );
}

#[test]
fn ragged_grid_row_is_reported() {
    let map = MAP.replace("#....G", "#...G");
    single(
        "ragged",
        &[("maps/tiny.toml", &map)],
        "maps/tiny.toml",
        7,
        1,
        "grid row 3 has 5 cells; the first row has 6",
    );
}

#[test]
fn unknown_grid_character_has_its_column() {
    let map = MAP.replace("#....G", "#..x.G");
    single(
        "grid_char",
        &[("maps/tiny.toml", &map)],
        "maps/tiny.toml",
        7,
        4,
        "unknown grid character 'x'",
    );
}

#[test]
fn grid_size_and_endpoints_are_checked() {
    let map = MAP.replace("######\nS.#..#\n", "S.#..#\n");
    single(
        "grid_small",
        &[("maps/tiny.toml", &map)],
        "maps/tiny.toml",
        4,
        8,
        "grid is 6x3",
    );
    let map = MAP.replace("....G", ".....");
    let found = diagnostics("grid_goal", &[("maps/tiny.toml", &map)]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_at(&found[0], "maps/tiny.toml", 4, 8, "map has no goal");
}

#[test]
fn spawn_without_path_is_reported() {
    let map = MAP.replace("#....G", "#.#..G");
    single(
        "no_path",
        &[("maps/tiny.toml", &map)],
        "maps/tiny.toml",
        4,
        8,
        "spawn 0 at (0, 1) has no path to any goal",
    );
}

#[test]
fn diagonal_steps_do_not_cut_corners() {
    // (1,1) -> (2,2) is diagonal past two blocked cells: not a path.
    let map = MAP.replace("S.#..#\n#....G", "S.#..#\n##...G");
    single(
        "corner",
        &[("maps/tiny.toml", &map)],
        "maps/tiny.toml",
        4,
        8,
        "has no path to any goal",
    );
}

#[test]
fn duplicate_keys_are_reported() {
    let orcs = ORCS.replace("hp = 10\n", "hp = 10\nhp = 12\n");
    single(
        "dup_toml",
        &[("tribes/orcs.toml", &orcs)],
        "tribes/orcs.toml",
        6,
        1,
        "duplicate key",
    );
    let undead =
        "name = \"Undead\"\n\n[enemy.grunt]\nname = \"Grunt\"\nhp = 1\nspeed = 1\nbounty = 1\n";
    single(
        "dup_enemy",
        &[("tribes/undead.toml", undead)],
        "tribes/undead.toml",
        3,
        8,
        "duplicate enemy kind `grunt` (first declared at tribes/orcs.toml:3:8)",
    );
}

#[test]
fn scenario_towers_must_leave_a_path() {
    let blocking = format!("{SCENARIO}\n[[tower]]\nplayer = 0\nkind = \"arrow\"\nx = 2\ny = 2\n");
    single(
        "blocking",
        &[("scenarios/demo.toml", &blocking)],
        "scenarios/demo.toml",
        13,
        5,
        "would cut every path from spawn 0",
    );
}

#[test]
fn scenario_towers_must_stand_on_buildable_cells_at_real_levels() {
    let on_wall = SCENARIO.replace("x = 4\ny = 1", "x = 2\ny = 1");
    single(
        "on_wall",
        &[("scenarios/demo.toml", &on_wall)],
        "scenarios/demo.toml",
        7,
        5,
        "(2, 1) is not a buildable cell",
    );
    let outside = SCENARIO.replace("x = 4\ny = 1", "x = 40\ny = 1");
    single(
        "outside",
        &[("scenarios/demo.toml", &outside)],
        "scenarios/demo.toml",
        7,
        5,
        "outside the 6x4 map",
    );
    let level = SCENARIO.replace("y = 1\n", "y = 1\nlevel = 2\n");
    single(
        "level",
        &[("scenarios/demo.toml", &level)],
        "scenarios/demo.toml",
        9,
        9,
        "has levels 0..=0, not 2",
    );
    let player = SCENARIO.replace("player = 1", "player = 2");
    single(
        "player",
        &[("scenarios/demo.toml", &player)],
        "scenarios/demo.toml",
        5,
        10,
        "player 2 does not exist",
    );
}

#[test]
fn syntax_errors_are_positioned() {
    let orcs = ORCS.replace("speed = 1", "speed = ");
    let found = diagnostics("syntax", &[("tribes/orcs.toml", &orcs)]);
    assert!(
        found.iter().any(|d| d.file == Path::new("tribes/orcs.toml")
            && d.line == 6
            && d.message.starts_with("TOML syntax")),
        "{found:#?}"
    );
}

#[test]
fn columns_count_characters_not_bytes() {
    let towers = TOWERS.replace("name = \"Arrow\"", "name = \"Pfeil – Turm\"  oops = 1");
    let found = diagnostics("columns", &[("towers.toml", &towers)]);
    // `oops` is the 24th character of the line but starts at byte 26.
    assert!(
        found.iter().any(|d| d.line == 2 && d.column == 24),
        "{found:#?}"
    );
}

#[test]
fn every_problem_of_every_file_is_collected() {
    let towers = TOWERS
        .replace("reload = 1", "reload = 100")
        .replace("flight = \"homing\"", "flight = \"lobbed\"");
    let waves = WAVES.replace("enemy = \"grunt\"", "enemy = \"ogre\"");
    let found = diagnostics(
        "many",
        &[
            ("towers.toml", &towers),
            ("waves/tiny.toml", &waves),
            ("junk.txt", "x"),
        ],
    );
    assert_eq!(found.len(), 4, "{found:#?}");
    assert_at(&found[0], "junk.txt", 1, 1, "unexpected file");
    assert_at(
        &found[1],
        "towers.toml",
        4,
        10,
        "`flight` = \"lobbed\" is not one of: homing, ballistic",
    );
    assert_at(
        &found[2],
        "towers.toml",
        10,
        10,
        "`reload` = 100 is out of range",
    );
    assert_at(
        &found[3],
        "waves/tiny.toml",
        8,
        9,
        "unknown enemy kind `ogre`",
    );
    let text = ContentError::Invalid(found).to_string();
    assert!(
        text.starts_with("4 content problems\njunk.txt:1:1: unexpected file"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn imported_maps_take_spawns_and_goals() {
    let arena = "type octile\nheight 4\nwidth 5\nmap\n@@@@@\n@...@\n@.@.@\n@@@@@\n";
    let map = "name = \"Imp\"\nstart_gold = 1\nlives = 1\nimport = \"imp.map\"\nspawns = [[1, 1]]\ngoals = [[3, 2]]\n";
    let dir = write(
        "import",
        &[
            ("maps/imp.map", arena),
            ("maps/imp.toml", map),
            ("waves/imp.toml", WAVES),
        ],
    );
    let content = load_dir(&dir).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let grid = &content.map("imp").unwrap().grid;
    assert_eq!(grid.spawns(), &[Cell::new(1, 1)]);
    assert_eq!(grid.tile(Cell::new(1, 1)), Tile::Path);
    assert_eq!(grid.tile(Cell::new(2, 1)), Tile::Buildable);

    let bad = map.replace("goals = [[3, 2]]", "goals = [[2, 2]]");
    single(
        "import_blocked",
        &[
            ("maps/imp.map", arena),
            ("maps/imp.toml", &bad),
            ("waves/imp.toml", WAVES),
        ],
        "maps/imp.toml",
        6,
        10,
        "(2, 2) is blocked terrain",
    );
    let broken = arena.replace("@.@.@", "@.X.@");
    single(
        "import_broken",
        &[
            ("maps/imp.map", &broken),
            ("maps/imp.toml", map),
            ("waves/imp.toml", WAVES),
        ],
        "maps/imp.map",
        7,
        3,
        "unknown terrain character",
    );
    single(
        "import_unused",
        &[("maps/imp.map", arena)],
        "maps/imp.map",
        1,
        1,
        "no map imports this file",
    );
}
