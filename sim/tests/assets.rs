//! The shipped `assets/` directory must always load: these tests pin the
//! properties other parts of rampart (benchmarks, the reference session)
//! rely on.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rampart_sim::content::{Content, load_dir};
use rampart_sim::grid::Tile;

fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

fn content() -> Content {
    match load_dir(&assets_dir()) {
        Ok(content) => content,
        Err(error) => panic!("assets/ does not validate:\n{error}"),
    }
}

#[test]
fn reference_map_is_the_benchmark_shape() {
    let content = content();
    let map = content.map("reference").unwrap();
    assert_eq!((map.grid.width(), map.grid.height()), (50, 50));
    let blocked = map
        .grid
        .tiles()
        .iter()
        .filter(|t| **t == Tile::Blocked)
        .count();
    assert_eq!(blocked, 500);
    assert_eq!(map.grid.spawns().len(), 1);
    assert_eq!(map.grid.goals().len(), 1);
    let buildable = map
        .grid
        .tiles()
        .iter()
        .filter(|t| **t == Tile::Buildable)
        .count();
    assert!(buildable > 1900, "{buildable} buildable cells");
    assert!(
        map.waves.endless.is_some(),
        "the reference session must never run out of waves"
    );
}

#[test]
fn has_a_large_map_and_a_finite_small_one() {
    let content = content();
    assert!(content.maps.len() >= 3);
    assert!(
        content
            .maps
            .iter()
            .any(|m| m.grid.width() >= 128 && m.grid.height() >= 128 && m.grid.spawns().len() >= 2)
    );
    let small = content.map("small").unwrap();
    assert!(small.waves.endless.is_none());
    assert!(small.waves.waves.len() >= 8);
}

#[test]
fn tribes_and_enemies_are_varied() {
    let content = content();
    assert!(content.tribes.len() >= 2);
    for tribe in &content.tribes {
        assert!(
            tribe.enemies.len() >= 3,
            "tribe {} has too few kinds",
            tribe.key
        );
        for id in &tribe.enemies {
            assert_eq!(
                content.tribes[usize::from(content.enemy(*id).tribe.0)].key,
                tribe.key
            );
        }
    }
    assert!(content.enemies.iter().any(|e| e.flying));
    assert!(content.enemies.iter().any(|e| e.armour >= 5.0));
    assert!(
        content.enemies.windows(2).all(|w| w[0].key < w[1].key),
        "enemies sorted by key"
    );
}

#[test]
fn towers_cover_the_classic_roles() {
    let content = content();
    assert!(content.towers.len() >= 5);
    assert!(
        content.towers.iter().all(|t| t.levels.len() >= 2),
        "every tower has an upgrade"
    );
    assert!(
        content
            .towers
            .iter()
            .any(|t| t.levels.iter().any(|l| l.splash_radius > 0.0))
    );
    assert!(
        content
            .towers
            .iter()
            .any(|t| t.levels.iter().any(|l| l.slow.is_some()))
    );
    assert!(
        content
            .towers
            .iter()
            .any(|t| t.levels.iter().any(|l| l.dot.is_some()))
    );
    assert!(content.towers.iter().any(|t| t.targets.air));
    assert!(
        content.towers.windows(2).all(|w| w[0].key < w[1].key),
        "towers sorted by key"
    );
}

#[test]
fn reference_scenario_has_fifty_towers_for_eight_players() {
    let content = content();
    let scenario = content.scenario("reference").unwrap();
    assert_eq!(scenario.map, "reference");
    assert_eq!(scenario.players, 8);
    assert_eq!(scenario.towers.len(), 50);
    for player in 0..8 {
        assert!(
            scenario.towers.iter().any(|t| t.player == player),
            "player {player} has no tower"
        );
    }
    assert!(scenario.lives.unwrap() >= 1_000_000);
    let kinds: std::collections::BTreeSet<_> = scenario.towers.iter().map(|t| t.kind).collect();
    assert!(kinds.len() >= 5);
    assert!(scenario.towers.iter().any(|t| t.level > 0));
}

#[test]
fn version_is_stable_across_loads() {
    assert_eq!(content().version, content().version);
}

/// Copies `assets/` to a fresh directory so a test can add or break files.
fn scratch_copy(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-assets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&assets_dir(), &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn every_file_is_read_and_strays_are_reported() {
    let dir = scratch_copy("stray");
    // A file the loader would otherwise skip must be reported, not ignored.
    std::fs::write(dir.join("maps/notes.txt"), "todo").unwrap();
    std::fs::write(dir.join("tribe_elves.toml"), "name = \"Elves\"").unwrap();
    let error = load_dir(&dir).unwrap_err().to_string();
    assert!(
        error.contains("maps/notes.txt:1:1: unexpected file"),
        "{error}"
    );
    assert!(
        error.contains("tribe_elves.toml:1:1: unexpected file"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();

    // Every content file counts towards the version: touching any changes it.
    let base = content().version;
    let mut files = Vec::new();
    collect(&assets_dir(), &mut files);
    for file in files.iter().filter(|f| !f.ends_with("README.md")) {
        let dir = scratch_copy("touch");
        let rel = file.strip_prefix(assets_dir()).unwrap();
        let mut bytes = std::fs::read(dir.join(rel)).unwrap();
        bytes.extend_from_slice(b"\n");
        std::fs::write(dir.join(rel), bytes).unwrap();
        let touched = load_dir(&dir).unwrap();
        assert_ne!(
            touched.version,
            base,
            "{} does not count towards the version",
            rel.display()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}
