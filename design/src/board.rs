//! Pictures of a board: the map's tiles, spawns and goals, where ground
//! enemies walk (the flow field as a distance heat map and arrows) and
//! where fliers fly, towers with their ranges, and the state of a game at a
//! tick (enemies with health bars, projectiles). One function draws them
//! all from a session and its snapshot, so a map at tick 0 and a game in
//! progress are the same picture at different times.

use rampart_sim::grid::{Cell, Tile};
use rampart_sim::{Session, Snapshot};

use crate::scene::{Anchor, Color, Layer, Scene, Shape, Stroke, palette};

/// One layer of a board picture, bottom to top; each is an SVG group with
/// its [`BoardLayer::id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum BoardLayer {
    /// Blocked, buildable and path cells.
    Tiles,
    /// Walking distance to the nearest goal, near warm and far cold.
    Heat,
    /// The direction a ground enemy walks from each cell.
    Arrows,
    /// Fliers' straight lines from each spawn to the nearest goal.
    Fliers,
    /// Spawns and goals.
    Markers,
    /// Each tower's reach.
    Ranges,
    /// Towers, coloured by kind, with a pip per level.
    Towers,
    /// Enemies with health bars.
    Enemies,
    /// Projectiles in flight.
    Projectiles,
    /// The caption: map, tick, wave, lives.
    Caption,
}

impl BoardLayer {
    /// Every layer, bottom first.
    pub const ALL: [BoardLayer; 10] = [
        BoardLayer::Tiles,
        BoardLayer::Heat,
        BoardLayer::Arrows,
        BoardLayer::Fliers,
        BoardLayer::Markers,
        BoardLayer::Ranges,
        BoardLayer::Towers,
        BoardLayer::Enemies,
        BoardLayer::Projectiles,
        BoardLayer::Caption,
    ];

    /// The layer's SVG group id and command-line name.
    pub fn id(self) -> &'static str {
        match self {
            BoardLayer::Tiles => "tiles",
            BoardLayer::Heat => "heat",
            BoardLayer::Arrows => "arrows",
            BoardLayer::Fliers => "fliers",
            BoardLayer::Markers => "markers",
            BoardLayer::Ranges => "ranges",
            BoardLayer::Towers => "towers",
            BoardLayer::Enemies => "enemies",
            BoardLayer::Projectiles => "projectiles",
            BoardLayer::Caption => "caption",
        }
    }

    /// The layer with this id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|layer| layer.id() == id)
    }
}

/// How a board is drawn.
#[derive(Clone, Debug, PartialEq)]
pub struct BoardStyle {
    /// Pixels per cell.
    pub cell: u32,
    /// Layers drawn, any order.
    pub layers: Vec<BoardLayer>,
}

impl Default for BoardStyle {
    fn default() -> Self {
        Self {
            cell: 16,
            layers: BoardLayer::ALL.to_vec(),
        }
    }
}

/// Height of the caption strip under the map.
const CAPTION: u32 = 20;

const BLOCKED: Color = Color::rgb(0x3b, 0x3b, 0x42);
const BUILDABLE: Color = Color::rgb(0x9c, 0xc0, 0x7c);
const PATH: Color = Color::rgb(0xd8, 0xc4, 0x9a);
const GRID_LINE: Color = Color::rgb(0x00, 0x00, 0x00).alpha(28);
const SPAWN: Color = Color::rgb(0xd6, 0x27, 0x28);
const GOAL: Color = Color::rgb(0x1f, 0x4e, 0xb4);
const ARROW: Color = Color::rgb(0x20, 0x20, 0x20).alpha(150);
const FLIER: Color = Color::rgb(0x17, 0xa0, 0xd8);
const WALKER: Color = Color::rgb(0x80, 0x1a, 0x1a);
const HEALTH: Color = Color::rgb(0x2c, 0xc4, 0x3c);
const WOUND: Color = Color::rgb(0xc4, 0x2c, 0x2c);
const PROJECTILE: Color = Color::rgb(0xff, 0xe0, 0x30);
const INK: Color = Color::rgb(0xf0, 0xf0, 0xf0);
const BACKGROUND: Color = Color::rgb(0x18, 0x18, 0x1c);

/// Draws `session`'s board as it stands (terrain, towers, flow field) with
/// the moving things of `snapshot`, which must be the session's current
/// snapshot.
pub fn board_picture(session: &Session, snapshot: &Snapshot, style: &BoardStyle) -> Scene {
    let board = session.board();
    let (width, height) = (u32::from(board.width()), u32::from(board.height()));
    let px = style.cell as f32;
    let mut scene = Scene::new(
        width * style.cell,
        height * style.cell + CAPTION,
        BACKGROUND,
    );
    let content = session.content();
    let map = content
        .map(&session.config().map)
        .expect("a session's map is in its content");
    let grid = &map.grid;
    let shows = |layer: BoardLayer| style.layers.contains(&layer);
    let centre = |cell: Cell| {
        (
            (f32::from(cell.x) + 0.5) * px,
            (f32::from(cell.y) + 0.5) * px,
        )
    };
    let cells =
        || (0..board.height()).flat_map(move |y| (0..board.width()).map(move |x| Cell::new(x, y)));

    if shows(BoardLayer::Tiles) {
        let layer = scene.layer(BoardLayer::Tiles.id());
        for cell in cells() {
            let fill = match grid.tile(cell) {
                Tile::Blocked => BLOCKED,
                Tile::Buildable => BUILDABLE,
                Tile::Path => PATH,
            };
            layer.push(square(cell, px, 0.0, Some(fill), None));
        }
        for line in 1..width {
            let x = line as f32 * px;
            layer.push(line_shape(
                (x, 0.0),
                (x, height as f32 * px),
                GRID_LINE,
                1.0,
            ));
        }
        for line in 1..height {
            let y = line as f32 * px;
            layer.push(line_shape((0.0, y), (width as f32 * px, y), GRID_LINE, 1.0));
        }
    }
    if shows(BoardLayer::Heat) {
        let farthest = cells()
            .filter_map(|cell| board.distance_to_goal(cell))
            .fold(0.0_f32, f32::max)
            .max(1.0);
        let layer = scene.layer(BoardLayer::Heat.id());
        for cell in cells() {
            if let Some(distance) = board.distance_to_goal(cell) {
                layer.push(square(
                    cell,
                    px,
                    0.0,
                    Some(heat(distance / farthest).alpha(140)),
                    None,
                ));
            }
        }
    }
    if shows(BoardLayer::Arrows) {
        let layer = scene.layer(BoardLayer::Arrows.id());
        for cell in cells() {
            if let Some(next) = board.next_step(cell) {
                push_arrow(layer, centre(cell), centre(next), px);
            }
        }
    }
    if shows(BoardLayer::Fliers) {
        let layer = scene.layer(BoardLayer::Fliers.id());
        for &spawn in grid.spawns() {
            let from = centre(spawn);
            let nearest = grid.goals().iter().min_by(|a, b| {
                distance_squared(from, centre(**a)).total_cmp(&distance_squared(from, centre(**b)))
            });
            if let Some(&goal) = nearest {
                layer.push(line_shape(from, centre(goal), FLIER.alpha(200), px / 8.0));
            }
        }
    }
    if shows(BoardLayer::Markers) {
        let layer = scene.layer(BoardLayer::Markers.id());
        let marks = grid
            .spawns()
            .iter()
            .map(|&cell| (cell, SPAWN, "S"))
            .chain(grid.goals().iter().map(|&cell| (cell, GOAL, "G")));
        for (cell, color, letter) in marks {
            layer.push(square(
                cell,
                px,
                px / 10.0,
                Some(color),
                Some(Stroke {
                    color: INK,
                    width: 1.0,
                }),
            ));
            if style.cell >= 12 {
                let (x, y) = centre(cell);
                layer.push(Shape::Text {
                    x,
                    y: y + 4.0,
                    text: letter.to_owned(),
                    size: 8.0,
                    color: INK,
                    anchor: Anchor::Middle,
                });
            }
        }
    }
    if shows(BoardLayer::Ranges) {
        let layer = scene.layer(BoardLayer::Ranges.id());
        for tower in &snapshot.towers {
            let kind = content.tower(tower.kind);
            let range = kind.levels[usize::from(tower.level)].range;
            let (x, y) = centre(tower.cell);
            let color = palette(usize::from(tower.kind.0));
            layer.push(Shape::Circle {
                x,
                y,
                radius: range * px,
                fill: Some(color.alpha(24)),
                stroke: Some(Stroke {
                    color: color.alpha(160),
                    width: 1.0,
                }),
            });
        }
    }
    if shows(BoardLayer::Towers) {
        let layer = scene.layer(BoardLayer::Towers.id());
        for tower in &snapshot.towers {
            let color = palette(usize::from(tower.kind.0));
            layer.push(square(
                tower.cell,
                px,
                px / 8.0,
                Some(color),
                Some(Stroke {
                    color: BACKGROUND,
                    width: 1.0,
                }),
            ));
            let (x, y) = centre(tower.cell);
            for pip in 0..=tower.level {
                layer.push(Shape::Circle {
                    x: x + (f32::from(pip) - f32::from(tower.level) / 2.0) * px / 4.0,
                    y,
                    radius: px / 10.0,
                    fill: Some(INK),
                    stroke: None,
                });
            }
        }
    }
    if shows(BoardLayer::Enemies) {
        let layer = scene.layer(BoardLayer::Enemies.id());
        for enemy in &snapshot.enemies {
            let (x, y) = (enemy.position.x * px, enemy.position.y * px);
            layer.push(Shape::Circle {
                x,
                y,
                radius: px * 0.3,
                fill: Some(if enemy.flying { FLIER } else { WALKER }),
                stroke: Some(Stroke {
                    color: INK,
                    width: 1.0,
                }),
            });
            let bar = px * 0.8;
            let health = if enemy.max_hp > 0.0 {
                (enemy.hp / enemy.max_hp).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let top = y - px * 0.55;
            layer.push(bar_shape(x - bar / 2.0, top, bar, px / 8.0, WOUND));
            layer.push(bar_shape(
                x - bar / 2.0,
                top,
                bar * health,
                px / 8.0,
                HEALTH,
            ));
        }
    }
    if shows(BoardLayer::Projectiles) {
        let layer = scene.layer(BoardLayer::Projectiles.id());
        for projectile in &snapshot.projectiles {
            layer.push(Shape::Circle {
                x: projectile.position.x * px,
                y: projectile.position.y * px,
                radius: (px / 8.0).max(1.5),
                fill: Some(PROJECTILE),
                stroke: None,
            });
        }
    }
    if shows(BoardLayer::Caption) {
        let state = format!(
            "tick {}  wave {}  lives {}  enemies {}",
            snapshot.tick,
            snapshot.wave,
            snapshot.lives,
            snapshot.enemies.len()
        );
        // The map's name goes first when the caption has room for it.
        let named = format!("{}  {state}", map.name);
        let room = (scene.width as f32 - 8.0) / 8.0;
        let text = if named.len() as f32 <= room {
            named
        } else {
            state
        };
        scene.layer(BoardLayer::Caption.id()).push(Shape::Text {
            x: 4.0,
            y: (height * style.cell + CAPTION - 6) as f32,
            text,
            size: 8.0,
            color: INK,
            anchor: Anchor::Start,
        });
    }
    scene
}

/// A short arrow from `from` towards `to`, about a half cell long.
fn push_arrow(layer: &mut Layer, from: (f32, f32), to: (f32, f32), px: f32) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length = (dx * dx + dy * dy).sqrt();
    if length == 0.0 {
        return;
    }
    let (ux, uy) = (dx / length, dy / length);
    let half = px * 0.3;
    let tail = (from.0 - ux * half, from.1 - uy * half);
    let tip = (from.0 + ux * half, from.1 + uy * half);
    let head = px * 0.18;
    let back = (tip.0 - ux * head, tip.1 - uy * head);
    layer.push(line_shape(tail, back, ARROW, (px / 16.0).max(1.0)));
    layer.push(Shape::Polygon {
        points: vec![
            tip,
            (back.0 - uy * head * 0.6, back.1 + ux * head * 0.6),
            (back.0 + uy * head * 0.6, back.1 - ux * head * 0.6),
        ],
        fill: ARROW,
    });
}

/// A cell's square, inset by `inset` pixels on each side.
fn square(cell: Cell, px: f32, inset: f32, fill: Option<Color>, stroke: Option<Stroke>) -> Shape {
    Shape::Rect {
        x: f32::from(cell.x) * px + inset,
        y: f32::from(cell.y) * px + inset,
        width: px - 2.0 * inset,
        height: px - 2.0 * inset,
        fill,
        stroke,
    }
}

fn bar_shape(x: f32, y: f32, width: f32, height: f32, fill: Color) -> Shape {
    Shape::Rect {
        x,
        y,
        width,
        height,
        fill: Some(fill),
        stroke: None,
    }
}

fn line_shape(from: (f32, f32), to: (f32, f32), color: Color, width: f32) -> Shape {
    Shape::Polyline {
        points: vec![from, to],
        stroke: Stroke { color, width },
    }
}

fn distance_squared(a: (f32, f32), b: (f32, f32)) -> f32 {
    (a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)
}

/// A colour ramp from warm (0, at a goal) to cold (1, farthest).
fn heat(t: f32) -> Color {
    const STOPS: [(u8, u8, u8); 4] = [
        (0xfd, 0xe7, 0x25),
        (0xf9, 0x8c, 0x0a),
        (0xb1, 0x2a, 0x90),
        (0x2c, 0x11, 0x60),
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let index = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - index as f32;
    let (a, b) = (STOPS[index], STOPS[index + 1]);
    let mix = |a: u8, b: u8| (f32::from(a) + (f32::from(b) - f32::from(a)) * f).round() as u8;
    Color::rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}
