//! Jump point search: exact shortest route lengths on uniform-cost grids,
//! for tools that answer many single queries on one map.
//!
//! A* on a grid spends most of its time on symmetric routes: every
//! interleaving of the same straight and diagonal steps has the same length.
//! Jump point search (Harabor and Grastien) expands only the cells where an
//! optimal route may have to turn, and jumps over the rest in straight lines.
//! With corner cutting forbidden (our movement rules, and the Moving AI
//! benchmark's) the rules are those of Harabor and Grastien's 2014 variant:
//!
//! - a diagonal move has no forced neighbours; it stops where a straight
//!   probe along either of its two components finds a jump point;
//! - a straight move east stops at a cell whose north (or south) neighbour is
//!   open while the cell behind that neighbour is blocked: from there the
//!   route may have to turn north (or north-east), which no shorter route
//!   through the cell behind could do.
//!
//! Straight probes are the hot loop, so they read 64 cells at a time:
//! [`JumpPointGrid`] precomputes, for each of the four straight directions,
//! one bit per cell that says "a probe travelling this way stops here"
//! (blocked, or a jump point), in rows for east and west and in columns for
//! north and south. A probe is then a scan for the next set bit, the idea of
//! Harabor and Grastien's block-based variant with the forced-neighbour test
//! done once per map instead of once per probe.
//!
//! Lengths are kept as straight and diagonal step counts, like [`super::AStar`],
//! so they are exact and comparable bit for bit.

use std::collections::BinaryHeap;

use super::MOVES;
use super::astar::Steps;

/// The precomputed map a [`JumpPointSearch`] runs on: read-only, so threads
/// answering queries in parallel share one.
#[derive(Clone, Debug)]
pub struct JumpPointGrid {
    width: usize,
    height: usize,
    /// Cells per padded row: the map has a border of blocked cells so moves
    /// from any map cell need no bounds checks.
    stride: usize,
    /// Walkability of the padded map, row-major with `stride` columns.
    open: Vec<bool>,
    /// 64-bit words per bit row (`width + 2` bits) and per bit column
    /// (`height + 2` bits).
    row_words: usize,
    column_words: usize,
    /// Stop bits of probes travelling east, west (one bit row per map row,
    /// bit `x + 1` for column `x`), south and north (one bit column per map
    /// column, bit `y + 1` for row `y`). The border bits are set, so every
    /// scan ends inside its row or column.
    east: Vec<u64>,
    west: Vec<u64>,
    south: Vec<u64>,
    north: Vec<u64>,
}

impl JumpPointGrid {
    /// Precomputes the stop bits of `walkable` (row-major, `width * height`
    /// cells; missing cells count as blocked), in time and space linear in
    /// the map.
    pub fn new(walkable: &[bool], width: u16, height: u16) -> Self {
        let (width, height) = (usize::from(width), usize::from(height));
        let stride = width + 2;
        let mut open = vec![false; stride * (height + 2)];
        for y in 0..height {
            for x in 0..width {
                open[(y + 1) * stride + x + 1] =
                    walkable.get(y * width + x).copied().unwrap_or(false);
            }
        }
        let row_words = (width + 2).div_ceil(64);
        let column_words = (height + 2).div_ceil(64);
        let mut grid = Self {
            width,
            height,
            stride,
            open,
            row_words,
            column_words,
            east: vec![u64::MAX; row_words * height],
            west: vec![u64::MAX; row_words * height],
            south: vec![u64::MAX; column_words * width],
            north: vec![u64::MAX; column_words * width],
        };
        for y in 0..height {
            for x in 0..width {
                let p = grid.padded(x, y);
                if !grid.open[p] {
                    continue; // blocked: every probe stops (the bits start set)
                }
                let (row, bit) = (y * row_words, x + 1);
                let (column, cbit) = (x * column_words, y + 1);
                if !grid.turns(p, 1, stride) {
                    clear_bit(&mut grid.east[row..], bit);
                }
                if !grid.turns(p, -1, stride) {
                    clear_bit(&mut grid.west[row..], bit);
                }
                if !grid.turns(p, stride as isize, 1) {
                    clear_bit(&mut grid.south[column..], cbit);
                }
                if !grid.turns(p, -(stride as isize), 1) {
                    clear_bit(&mut grid.north[column..], cbit);
                }
            }
        }
        grid
    }

    /// Cells per row of the map.
    pub fn width(&self) -> u16 {
        self.width as u16
    }

    /// Rows of the map.
    pub fn height(&self) -> u16 {
        self.height as u16
    }

    fn padded(&self, x: usize, y: usize) -> usize {
        self.cell(x + 1, y + 1).index
    }

    /// Whether a straight probe arriving at padded cell `p` by `step` must
    /// stop there because a route may turn: a side neighbour (`side` either
    /// way) is open while the cell behind it is blocked.
    fn turns(&self, p: usize, step: isize, side: usize) -> bool {
        [p - side, p + side]
            .into_iter()
            .any(|s| self.open[s] && !self.open[s.wrapping_add_signed(-step)])
    }

    /// Straight probe from padded cell `p` at padded column `x`, row `y` in
    /// `direction` (a straight entry of [`MOVES`]): the first jump point
    /// beyond `p` and its distance in steps, or `None` if the line runs into
    /// a wall first. The goal (padded cell `goal` at `gx`, `gy`) is a jump
    /// point.
    fn jump_straight(
        &self,
        (x, y): (usize, usize),
        direction: usize,
        goal: Cell,
    ) -> Option<(Cell, u32)> {
        // Padded coordinates are the bit indices; along a row the position
        // on the line is x, along a column it is y.
        let horizontal = direction.is_multiple_of(2);
        let (bits, line, at, goal_on_line, goal_at) = match direction {
            0 => (&self.east, (y - 1) * self.row_words, x, goal.y == y, goal.x),
            2 => (&self.west, (y - 1) * self.row_words, x, goal.y == y, goal.x),
            1 => (
                &self.south,
                (x - 1) * self.column_words,
                y,
                goal.x == x,
                goal.y,
            ),
            _ => (
                &self.north,
                (x - 1) * self.column_words,
                y,
                goal.x == x,
                goal.y,
            ),
        };
        let words = if horizontal {
            self.row_words
        } else {
            self.column_words
        };
        let bits = &bits[line..line + words];
        let forward = direction < 2;
        let stop = if forward {
            next_set_bit(bits, at + 1)
        } else {
            previous_set_bit(bits, at - 1)
        };
        let reach = stop.abs_diff(at);
        if goal_on_line {
            let ahead = if forward { goal_at > at } else { goal_at < at };
            if ahead && goal_at.abs_diff(at) <= reach {
                return Some((goal, goal_at.abs_diff(at) as u32));
            }
        }
        let cell = if horizontal {
            self.cell(stop, y)
        } else {
            self.cell(x, stop)
        };
        self.open[cell.index].then_some((cell, reach as u32))
    }

    /// Diagonal probe from `from` in `direction` (a diagonal entry of
    /// [`MOVES`]): the first cell where a straight probe along one of its
    /// components finds a jump point (or the goal), and its distance in
    /// diagonal steps, or `None` if a wall or corner stops it first.
    fn jump_diagonal(&self, from: Cell, direction: usize, goal: Cell) -> Option<(Cell, u32)> {
        let m = MOVES[direction];
        let dx = isize::from(m.dx);
        let dy = isize::from(m.dy) * self.stride as isize;
        let horizontal = if m.dx > 0 { 0 } else { 2 };
        let vertical = if m.dy > 0 { 1 } else { 3 };
        let (mut p, mut x, mut y) = (from.index, from.x, from.y);
        let mut steps = 0;
        loop {
            let across = p.wrapping_add_signed(dx);
            let down = p.wrapping_add_signed(dy);
            let next = across.wrapping_add_signed(dy);
            if !(self.open[across] && self.open[down] && self.open[next]) {
                return None;
            }
            p = next;
            x = x.wrapping_add_signed(m.dx.into());
            y = y.wrapping_add_signed(m.dy.into());
            steps += 1;
            if p == goal.index
                || self.jump_straight((x, y), horizontal, goal).is_some()
                || self.jump_straight((x, y), vertical, goal).is_some()
            {
                return Some((Cell { index: p, x, y }, steps));
            }
        }
    }

    /// The padded cell at padded column `x`, row `y`.
    fn cell(&self, x: usize, y: usize) -> Cell {
        Cell {
            index: y * self.stride + x,
            x,
            y,
        }
    }

    /// Directions worth probing from jump point `p` reached by `arrived`
    /// (an index into [`MOVES`], or [`FROM_START`]), as a bit set over
    /// [`MOVES`] indices: the natural continuations and, after a straight
    /// move, the turns towards forced neighbours.
    fn successors(&self, p: usize, arrived: u8) -> u8 {
        if arrived == FROM_START {
            return u8::MAX;
        }
        let m = MOVES[usize::from(arrived)];
        if m.diagonal() {
            return bit(direction_of(m.dx, 0)) | bit(direction_of(0, m.dy)) | bit(arrived.into());
        }
        let mut set = bit(arrived.into());
        let step = isize::from(m.dx) + isize::from(m.dy) * self.stride as isize;
        let sides: [(i8, i8); 2] = if m.dx != 0 {
            [(0, -1), (0, 1)]
        } else {
            [(-1, 0), (1, 0)]
        };
        for (sx, sy) in sides {
            let side =
                p.wrapping_add_signed(isize::from(sx) + isize::from(sy) * self.stride as isize);
            if self.open[side] && !self.open[side.wrapping_add_signed(-step)] {
                set |= bit(direction_of(sx, sy));
                set |= bit(direction_of(m.dx + sx, m.dy + sy));
            }
        }
        set
    }
}

/// Arrival marker of the start cell, which probes in all eight directions.
const FROM_START: u8 = 8;

fn bit(direction: usize) -> u8 {
    1 << direction
}

/// Index in [`MOVES`] of the move `(dx, dy)` (not both zero).
fn direction_of(dx: i8, dy: i8) -> usize {
    // Rows by dy, columns by dx, each -1, 0, 1; the centre is unused.
    const TABLE: [[usize; 3]; 3] = [[6, 3, 7], [2, 8, 0], [5, 1, 4]];
    TABLE[(dy + 1) as usize][(dx + 1) as usize]
}

/// A cell of the padded map: its index and its padded coordinates, which are
/// also its bit indices in the stop rows and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cell {
    index: usize,
    x: usize,
    y: usize,
}

fn clear_bit(words: &mut [u64], bit: usize) {
    words[bit / 64] &= !(1 << (bit % 64));
}

/// Index of the first set bit at or after `from`; the caller guarantees one.
fn next_set_bit(words: &[u64], from: usize) -> usize {
    let mut word = from / 64;
    let mut bits = words[word] & (u64::MAX << (from % 64));
    while bits == 0 {
        word += 1;
        bits = words[word];
    }
    word * 64 + bits.trailing_zeros() as usize
}

/// Index of the last set bit at or before `from`; the caller guarantees one.
fn previous_set_bit(words: &[u64], from: usize) -> usize {
    let mut word = from / 64;
    let mut bits = words[word] & (u64::MAX >> (63 - from % 64));
    while bits == 0 {
        word -= 1;
        bits = words[word];
    }
    word * 64 + 63 - bits.leading_zeros() as usize
}

/// Reusable search state for one map size: per-cell buffers invalidated by a
/// generation counter, so a query costs no allocation and no clearing.
///
/// Not shared between threads: give each thread its own, all reading one
/// [`JumpPointGrid`].
#[derive(Clone, Debug)]
pub struct JumpPointSearch {
    /// Best known route to each padded cell, valid where `seen == generation`.
    g: Vec<Steps>,
    /// Directions by which each cell was queued at its best `g`: a cell
    /// reached equally well from two directions must probe onward from
    /// both, since the directions decide which probes it makes.
    arrivals: Vec<u16>,
    seen: Vec<u32>,
    generation: u32,
    open: BinaryHeap<Entry>,
}

impl JumpPointSearch {
    /// Allocates the per-cell buffers for maps of `grid`'s size.
    pub fn new(grid: &JumpPointGrid) -> Self {
        let len = grid.open.len();
        Self {
            g: vec![Steps::default(); len],
            arrivals: vec![0; len],
            seen: vec![0; len],
            generation: 0,
            open: BinaryHeap::new(),
        }
    }

    /// Length of the shortest legal route from `start` to `goal` (row-major
    /// indices of `grid`'s map), or `None` if there is none or either end is
    /// off the map or blocked.
    ///
    /// # Panics
    /// If this searcher was made for a smaller grid.
    pub fn search(&mut self, grid: &JumpPointGrid, start: usize, goal: usize) -> Option<f64> {
        let cells = grid.width * grid.height;
        if start >= cells || goal >= cells {
            return None;
        }
        let start = grid.cell(start % grid.width + 1, start / grid.width + 1);
        let goal = grid.cell(goal % grid.width + 1, goal / grid.width + 1);
        if !grid.open[start.index] || !grid.open[goal.index] {
            return None;
        }
        if start == goal {
            return Some(0.0);
        }
        assert!(
            self.g.len() >= grid.open.len(),
            "searcher made for a smaller grid"
        );

        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Stamps from 2^32 searches ago could alias; start afresh.
            self.seen.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        self.open.clear();

        let heuristic = |c: Cell| {
            let (dx, dy) = (c.x.abs_diff(goal.x) as u32, c.y.abs_diff(goal.y) as u32);
            Steps {
                straight: dx.max(dy) - dx.min(dy),
                diagonal: dx.min(dy),
            }
        };

        let origin = Steps::default();
        self.g[start.index] = origin;
        self.seen[start.index] = generation;
        self.arrivals[start.index] = 1 << FROM_START;
        self.open.push(Entry::new(
            origin.plus(heuristic(start)),
            origin,
            start.index,
            FROM_START,
        ));

        while let Some(entry) = self.open.pop() {
            let (u, arrived) = entry.cell();
            let g = self.g[u];
            if entry.g != g.length().to_bits() {
                continue; // stale: a cheaper route to `u` was found since
            }
            if u == goal.index {
                return Some(g.length());
            }
            let from = grid.cell(u % grid.stride, u / grid.stride);
            let directions = grid.successors(u, arrived);
            for (direction, m) in MOVES.iter().enumerate() {
                if directions & bit(direction) == 0 {
                    continue;
                }
                let jump = if m.diagonal() {
                    grid.jump_diagonal(from, direction, goal).map(|(v, n)| {
                        (
                            v,
                            Steps {
                                straight: 0,
                                diagonal: n,
                            },
                        )
                    })
                } else {
                    grid.jump_straight((from.x, from.y), direction, goal)
                        .map(|(v, n)| {
                            (
                                v,
                                Steps {
                                    straight: n,
                                    diagonal: 0,
                                },
                            )
                        })
                };
                let Some((v, steps)) = jump else { continue };
                let ng = g.plus(steps);
                let arrival = 1u16 << direction;
                let i = v.index;
                if self.seen[i] != generation || ng.length() < self.g[i].length() {
                    self.seen[i] = generation;
                    self.g[i] = ng;
                    self.arrivals[i] = arrival;
                } else if ng == self.g[i] && self.arrivals[i] & arrival == 0 {
                    self.arrivals[i] |= arrival;
                } else {
                    continue;
                }
                self.open
                    .push(Entry::new(ng.plus(heuristic(v)), ng, i, direction as u8));
            }
        }
        None
    }
}

/// Open-list entry, ordered so the max-heap pops the lowest `f` first,
/// preferring deeper nodes (higher `g`) and then lower cells and directions
/// on ties so searches are deterministic. Non-negative costs compare as
/// their IEEE bit patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    /// `f` negated so the max-heap pops the lowest first.
    f: std::cmp::Reverse<u64>,
    g: u64,
    /// The padded cell index shifted left by four, the arrival direction in
    /// the low bits, reversed so lower cells pop first on ties.
    cell_and_arrival: std::cmp::Reverse<u64>,
}

impl Entry {
    fn new(f: Steps, g: Steps, cell: usize, arrived: u8) -> Self {
        Self {
            f: std::cmp::Reverse(f.length().to_bits()),
            g: g.length().to_bits(),
            cell_and_arrival: std::cmp::Reverse((cell as u64) << 4 | u64::from(arrived)),
        }
    }

    /// The entry's cell index and arrival direction.
    fn cell(&self) -> (usize, u8) {
        let packed = self.cell_and_arrival.0;
        ((packed >> 4) as usize, (packed & 0xF) as u8)
    }
}
