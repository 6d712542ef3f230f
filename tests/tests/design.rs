//! `rampart render` and `rampart balance` end to end, as a designer runs
//! them: pictures of a map and of a recorded game (still and animated),
//! and a balance run on the reference map and scenario that gives the same
//! JSON twice and writes charts with a series per variant.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rampart_tests::run_rampart as rampart;

/// A fresh directory under the system's temporary directory.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-design-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Decodes a PNG and checks it is a real picture: the size asked for, and
/// more than a handful of colours.
fn check_png(path: &Path) -> tiny_skia::Pixmap {
    let pixmap = tiny_skia::Pixmap::decode_png(&std::fs::read(path).unwrap())
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let mut colours: Vec<&[u8]> = pixmap.data().chunks(4).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(
        colours.len() > 8,
        "{} has only {} colours",
        path.display(),
        colours.len()
    );
    pixmap
}

fn svg_groups(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let document = roxmltree::Document::parse(&text)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    document
        .descendants()
        .filter(|node| node.has_tag_name("g"))
        .filter_map(|node| node.attribute("id").map(str::to_owned))
        .collect()
}

#[test]
fn render_draws_a_map_and_a_recorded_game() {
    let dir = scratch("render");
    let (png, svg) = (dir.join("reference.png"), dir.join("reference.svg"));
    rampart(&[
        "render",
        "--map",
        "reference",
        "--scenario",
        "reference",
        "--cell",
        "8",
        "--out",
        arg(&png),
        "--out",
        arg(&svg),
    ]);
    let pixmap = check_png(&png);
    assert_eq!((pixmap.width(), pixmap.height()), (400, 420));
    let groups = svg_groups(&svg);
    for layer in [
        "tiles", "heat", "arrows", "fliers", "markers", "ranges", "towers",
    ] {
        assert!(
            groups.iter().any(|id| id == layer),
            "no `{layer}` in {groups:?}"
        );
    }

    let log = dir.join("game.log");
    rampart(&[
        "simulate",
        "--map",
        "small",
        "--seed",
        "2",
        "--ticks",
        "2400",
        "--record",
        arg(&log),
    ]);
    let still = dir.join("tick.png");
    let output = rampart(&[
        "render",
        "--log",
        arg(&log),
        "--tick",
        "1500",
        "--hide",
        "arrows",
        "--out",
        arg(&still),
    ]);
    assert!(String::from_utf8_lossy(&output.stdout).contains("picture written"));
    check_png(&still);

    let animation = dir.join("game.apng");
    let output = rampart(&[
        "render",
        "--log",
        arg(&log),
        "--animate",
        "600:1200",
        "--every",
        "100",
        "--out",
        arg(&animation),
    ]);
    assert!(
        String::from_utf8_lossy(&output.stdout).starts_with("7 frames"),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let bytes = std::fs::read(&animation).unwrap();
    assert!(
        bytes.windows(4).any(|chunk| chunk == b"acTL"),
        "an animated PNG"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A CI-sized balance run of the reference map and scenario: 5 variants of
/// cannon damage, 2 games each, lives cut to 50 so the endless waves break
/// through (the full 200-game run is timed in docs/BENCHMARKS.md).
fn balance(out: &Path) -> String {
    let output = rampart(&[
        "balance",
        "--map",
        "reference",
        "--scenario",
        "reference",
        "--set",
        "scenarios.reference.lives=50",
        "--vary",
        "towers.cannon.level.0.damage=0.8:1.2:5",
        "--games",
        "2",
        "--ticks",
        "9000",
        "--json",
        "--out",
        arg(out),
    ]);
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn balance_is_deterministic_and_charts_every_variant() {
    let dir = scratch("balance");
    let first = balance(&dir.join("first"));
    let second = balance(&dir.join("second"));
    assert_eq!(first, second, "the same run gives the same JSON");
    assert_eq!(
        std::fs::read(dir.join("first/report.json")).unwrap(),
        first.as_bytes(),
        "report.json is what --json prints"
    );
    let report: serde_json::Value = serde_json::from_str(&first).unwrap();
    let variants = report["variants"].as_array().unwrap();
    assert_eq!(variants.len(), 5);
    assert_eq!(report["games"].as_array().unwrap().len(), 10);
    let damages: Vec<&str> = variants
        .iter()
        .map(|variant| variant["changes"][1][1].as_str().unwrap())
        .collect();
    assert_eq!(damages, ["24", "27", "30", "33", "36"]);
    for variant in variants {
        assert_eq!(variant["changes"][0][1], "50");
        assert_eq!(variant["games"], 2);
        let lost: f64 = variant["lives_lost_per_wave"]
            .as_array()
            .unwrap()
            .iter()
            .map(|lives| lives.as_f64().unwrap())
            .sum();
        assert!(lost > 0.0, "the endless waves break through: {variant}");
        assert!(!variant["over_time"].as_array().unwrap().is_empty());
        assert!(!variant["leaks_by_enemy"].as_array().unwrap().is_empty());
    }

    let charts = dir.join("first");
    for csv in ["variants", "games", "waves", "over_time", "leaks"] {
        let text = std::fs::read_to_string(charts.join(format!("{csv}.csv"))).unwrap();
        assert!(text.lines().count() > 5, "{csv}.csv has rows");
    }
    for chart in ["lives_per_wave", "gold", "kills"] {
        let svg = charts.join(format!("{chart}.svg"));
        let text = std::fs::read_to_string(&svg).unwrap();
        let document = roxmltree::Document::parse(&text).unwrap();
        for variant in 0..5 {
            let id = format!("series-{variant}");
            let series = document
                .descendants()
                .find(|node| node.attribute("id") == Some(id.as_str()))
                .unwrap_or_else(|| panic!("{chart}: no {id}"));
            let line = series
                .children()
                .find(|node| node.has_tag_name("polyline"))
                .unwrap();
            let points = line.attribute("points").unwrap().split(' ').count();
            assert!(points >= 3, "{chart} {id} has {points} points");
        }
        check_png(&charts.join(format!("{chart}.png")));
    }
    for chart in ["win_rate", "game_length", "leaks"] {
        assert!(svg_groups(&charts.join(format!("{chart}.svg"))).contains(&"series-0".to_owned()));
        check_png(&charts.join(format!("{chart}.png")));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
