//! Pictures of a game: a golden image of a small map mid-game (every layer
//! drawn), the same scene as SVG with one group per layer, and an animated
//! PNG that decodes to its frames. The content is a copy kept with the
//! tests (`tests/content`), so tuning `assets/` does not move the golden.
//!
//! The golden is compared pixel by pixel, each channel within
//! [`TOLERANCE`]: tiny-skia's anti-aliasing may round differently on
//! another CPU's SIMD path, never by more. `RAMPART_BLESS=1` rewrites it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rampart_design::{BoardLayer, BoardStyle, Scene, apng, board_picture, png, svg};
use rampart_sim::bots::{BotGame, BotStyle};
use rampart_sim::content::load_dir;
use rampart_sim::{Session, SessionConfig, Snapshot};

/// Largest difference allowed in any channel of any pixel.
const TOLERANCE: u8 = 2;

/// A tick of the fixture game with towers, enemies and projectiles about.
const TICK: u64 = 700;

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// The small map played by one builder bot, seed 3.
fn game() -> BotGame {
    let content = Arc::new(load_dir(&here().join("content")).unwrap());
    let config = SessionConfig {
        map: "small".into(),
        scenario: None,
        players: 1,
        seed: 3,
        tick_hz: 30,
    };
    BotGame::new(Session::new(content, &config).unwrap(), BotStyle::Builder)
}

/// The fixture game at `tick` and its picture at 8 pixels a cell.
fn picture_at(tick: u64) -> (Snapshot, Scene) {
    let mut game = game();
    while !game.finished(tick) {
        game.think(|_| {});
        game.step();
    }
    let mut snapshot = Snapshot::default();
    game.session_mut().snapshot(&mut snapshot);
    let style = BoardStyle {
        cell: 8,
        ..BoardStyle::default()
    };
    let scene = board_picture(game.session(), &snapshot, &style);
    (snapshot, scene)
}

#[test]
fn the_small_map_mid_game_matches_its_golden_image() {
    let (snapshot, scene) = picture_at(TICK);
    assert!(
        !snapshot.towers.is_empty() && !snapshot.enemies.is_empty(),
        "tick {TICK} should show towers and enemies: {} towers, {} enemies",
        snapshot.towers.len(),
        snapshot.enemies.len()
    );
    let bytes = png(&scene).unwrap();
    let golden = here().join("golden").join("small_mid_game.png");
    if std::env::var_os("RAMPART_BLESS").is_some() {
        std::fs::write(&golden, &bytes).unwrap();
    }
    let expected = tiny_skia::Pixmap::decode_png(&std::fs::read(&golden).unwrap_or_default())
        .unwrap_or_else(|error| {
            panic!(
                "{}: {error}; run with RAMPART_BLESS=1 to write it",
                golden.display()
            )
        });
    let actual = tiny_skia::Pixmap::decode_png(&bytes).unwrap();
    assert_eq!(
        (actual.width(), actual.height()),
        (expected.width(), expected.height()),
        "picture size"
    );
    let differing = actual
        .data()
        .chunks(4)
        .zip(expected.data().chunks(4))
        .filter(|(a, e)| {
            a.iter()
                .zip(e.iter())
                .any(|(a, e)| a.abs_diff(*e) > TOLERANCE)
        })
        .count();
    if differing > 0 {
        let path = std::env::temp_dir().join("rampart-small_mid_game.actual.png");
        std::fs::write(&path, &bytes).unwrap();
        panic!(
            "{differing} pixels differ from {} by more than {TOLERANCE}; this run's picture is {}",
            golden.display(),
            path.display()
        );
    }
}

#[test]
fn the_svg_parses_and_holds_every_layer() {
    let (snapshot, scene) = picture_at(TICK);
    let text = svg(&scene);
    let document = roxmltree::Document::parse(&text).unwrap();
    let root = document.root_element();
    assert_eq!(root.tag_name().name(), "svg");
    assert_eq!(root.attribute("width"), Some("160"));
    for layer in BoardLayer::ALL {
        let group = document
            .descendants()
            .find(|node| node.has_tag_name("g") && node.attribute("id") == Some(layer.id()))
            .unwrap_or_else(|| panic!("no group `{}`", layer.id()));
        let shapes = group.children().filter(|node| node.is_element()).count();
        assert!(shapes > 0, "layer `{}` is empty", layer.id());
    }
    let group = |id: &str| {
        document
            .descendants()
            .find(|node| node.attribute("id") == Some(id))
            .unwrap()
    };
    // One range circle per tower, two health-bar rectangles per enemy, one
    // dot per projectile, one square per cell.
    let count = |id: &str, tag: &str| {
        group(id)
            .children()
            .filter(|node| node.has_tag_name(tag))
            .count()
    };
    assert_eq!(count("ranges", "circle"), snapshot.towers.len());
    assert_eq!(count("enemies", "rect"), 2 * snapshot.enemies.len());
    assert_eq!(count("projectiles", "circle"), snapshot.projectiles.len());
    assert_eq!(count("tiles", "rect"), 20 * 16);
    assert!(
        group("caption").children().any(|node| node
            .text()
            .is_some_and(|text| text.contains(&format!("tick {TICK}")))),
        "the caption names the tick"
    );
}

#[test]
fn hidden_layers_are_left_out() {
    let mut game = game();
    let mut snapshot = Snapshot::default();
    game.session_mut().snapshot(&mut snapshot);
    let style = BoardStyle {
        cell: 8,
        layers: vec![BoardLayer::Tiles, BoardLayer::Markers],
    };
    let scene = board_picture(game.session(), &snapshot, &style);
    let ids: Vec<&str> = scene.layers.iter().map(|layer| layer.id.as_str()).collect();
    assert_eq!(ids, ["tiles", "markers"]);
}

#[test]
fn an_animation_decodes_to_its_frames() {
    let frames: Vec<Scene> = [600, 900, 1_200]
        .into_iter()
        .map(|tick| picture_at(tick).1)
        .collect();
    let bytes = apng(&frames, 80).unwrap();
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .unwrap();
    let control = reader.info().animation_control.unwrap();
    assert_eq!(control.num_frames, 3);
    let (width, height) = (frames[0].width, frames[0].height);
    // Compose the frames as a viewer does (each stores the rectangle that
    // changed, transparent where unchanged, blended over the last; nothing
    // is disposed) and compare with the pictures.
    let mut canvas = vec![0; (width * height * 4) as usize];
    let mut buffer = vec![0; reader.output_buffer_size().unwrap()];
    for frame in &frames {
        let info = reader.next_frame(&mut buffer).unwrap();
        let control = reader.info().frame_control.unwrap();
        let row = (info.width * 4) as usize;
        for y in 0..info.height {
            let from = (y as usize) * row;
            let to = (((control.y_offset + y) * width + control.x_offset) * 4) as usize;
            let source = buffer[from..from + row].chunks(4);
            for (target, source) in canvas[to..to + row].chunks_mut(4).zip(source) {
                // Pixels are opaque or, where unchanged, fully transparent.
                if source[3] != 0 {
                    target.copy_from_slice(source);
                }
            }
        }
        let expected = rampart_design::raster::rasterize(frame).unwrap();
        let expected: Vec<u8> = expected
            .pixels()
            .iter()
            .flat_map(|pixel| {
                let color = pixel.demultiply();
                [color.red(), color.green(), color.blue(), color.alpha()]
            })
            .collect();
        assert!(
            canvas == expected,
            "a composed frame differs from its picture"
        );
    }
    let last = reader.info().frame_control.unwrap();
    assert!(
        last.width < width || last.height < height,
        "the last frame stores only what changed"
    );
}
