//! The map grid: which cells enemies may walk, where towers may stand, and
//! where enemies enter and leave.
//!
//! Cells are addressed by `(x, y)` with `y` growing downwards, the way the map
//! files draw them, and stored row-major so a cell's index is `y * width + x`.

use serde::{Deserialize, Serialize};

/// One cell's coordinates on a grid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Cell {
    /// Column, from the left edge.
    pub x: u16,
    /// Row, from the top edge.
    pub y: u16,
}

impl Cell {
    /// The cell at `(x, y)`.
    pub const fn new(x: u16, y: u16) -> Self {
        Self { x, y }
    }
}

/// What a cell of the static map allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tile {
    /// Nothing enters: rock, water, walls.
    Blocked,
    /// Enemies walk here and players may build a tower here.
    Buildable,
    /// Enemies walk here; no tower may be built (roads, spawns, goals).
    Path,
}

impl Tile {
    /// Whether a ground enemy may stand on this tile when no tower does.
    pub const fn walkable(self) -> bool {
        !matches!(self, Tile::Blocked)
    }
}

/// A rectangular map: tiles plus the cells where enemies spawn and leak.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grid {
    width: u16,
    height: u16,
    tiles: Vec<Tile>,
    spawns: Vec<Cell>,
    goals: Vec<Cell>,
}

impl Grid {
    /// Builds a grid from row-major tiles.
    ///
    /// # Panics
    /// If `tiles.len() != width * height` or a spawn or goal lies outside the
    /// grid: callers (the content loader) validate files before building.
    pub fn new(
        width: u16,
        height: u16,
        tiles: Vec<Tile>,
        spawns: Vec<Cell>,
        goals: Vec<Cell>,
    ) -> Self {
        assert_eq!(
            tiles.len(),
            usize::from(width) * usize::from(height),
            "tile count must be width * height"
        );
        let grid = Self {
            width,
            height,
            tiles,
            spawns,
            goals,
        };
        for cell in grid.spawns.iter().chain(&grid.goals) {
            assert!(
                grid.contains(i32::from(cell.x), i32::from(cell.y)),
                "spawn or goal {cell:?} outside the grid"
            );
        }
        grid
    }

    /// Cells per row.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Rows.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Number of cells, the length of every per-cell array.
    pub fn len(&self) -> usize {
        self.tiles.len()
    }

    /// Whether the grid has no cells.
    pub fn is_empty(&self) -> bool {
        self.tiles.is_empty()
    }

    /// Row-major tiles.
    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Where enemies enter, in the order the map lists them (wave groups name
    /// spawns by this index).
    pub fn spawns(&self) -> &[Cell] {
        &self.spawns
    }

    /// Where enemies leave and cost lives. All goals form one goal set.
    pub fn goals(&self) -> &[Cell] {
        &self.goals
    }

    /// Whether `(x, y)` lies on the grid.
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= 0 && y >= 0 && x < i32::from(self.width) && y < i32::from(self.height)
    }

    /// Row-major index of `cell`.
    pub fn index(&self, cell: Cell) -> usize {
        usize::from(cell.y) * usize::from(self.width) + usize::from(cell.x)
    }

    /// The cell at row-major `index`.
    pub fn cell(&self, index: usize) -> Cell {
        let width = usize::from(self.width);
        // Both fit: index < width * height and both sides are u16.
        Cell::new((index % width) as u16, (index / width) as u16)
    }

    /// The tile at `cell`.
    pub fn tile(&self, cell: Cell) -> Tile {
        self.tiles[self.index(cell)]
    }

    /// Per-cell walkability of the static map (before towers), the input of
    /// pathfinding.
    pub fn walkable_mask(&self) -> Vec<bool> {
        self.tiles.iter().map(|tile| tile.walkable()).collect()
    }
}
