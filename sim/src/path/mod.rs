//! Pathfinding on the map grid: flow fields for the simulation's walkers,
//! and A* and a subgoal graph search for tools and validation.
//!
//! Both follow the same movement rules, which must match the Moving AI
//! benchmark conventions exactly so their published optimal lengths can serve
//! as an oracle:
//!
//! - 8-connected grid, row-major cells (`index = y * width + x`);
//! - a straight step costs 1, a diagonal step sqrt(2);
//! - no corner cutting: a diagonal step is allowed only when the target and
//!   both orthogonal neighbours it passes are walkable.
//!
//! [`flow::FlowField`] approximates the costs with integers (70 and 99) for a
//! fast bucket-queue search; [`astar`] and [`subgoal`] use exact `f64`
//! costs. [`subgoal`] answers the same queries as [`astar`] many times faster
//! once per-map work is paid; A* stays as the plain statement the tests check
//! it against.

pub mod astar;
pub mod flow;
pub mod subgoal;

pub use astar::{AStar, shortest_path_length};
pub use flow::{DIAGONAL_COST, FlowField, STRAIGHT_COST};
pub use subgoal::{SubgoalGraph, SubgoalSearch};

/// sqrt(2), the exact cost of a diagonal step.
pub const SQRT_2: f64 = std::f64::consts::SQRT_2;

/// One of the eight moves between neighbouring cells.
///
/// Shared by every search so they agree on the neighbour order, which is
/// what makes tie-breaking, and therefore routes, deterministic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Move {
    /// Column change, -1, 0 or 1.
    pub dx: i8,
    /// Row change, -1, 0 or 1 (positive is downwards).
    pub dy: i8,
}

impl Move {
    /// Whether the move changes both coordinates, which decides its cost and
    /// whether the corner-cutting rule applies.
    pub const fn diagonal(self) -> bool {
        self.dx != 0 && self.dy != 0
    }

    /// Exact length of the move, for the `f64` searches.
    pub const fn length(self) -> f64 {
        if self.diagonal() { SQRT_2 } else { 1.0 }
    }

    /// Row-major index reached from `index` on a grid `width` wide; the
    /// caller has already checked the move stays on the grid.
    pub(crate) fn apply(self, index: usize, width: usize) -> usize {
        index
            .wrapping_add_signed(isize::from(self.dx))
            .wrapping_add_signed(isize::from(self.dy) * width as isize)
    }
}

/// The eight moves in the fixed order every search uses: the four straight
/// moves (E, S, W, N) first, then the diagonals (SE, SW, NW, NE).
pub const MOVES: [Move; 8] = [
    Move { dx: 1, dy: 0 },
    Move { dx: 0, dy: 1 },
    Move { dx: -1, dy: 0 },
    Move { dx: 0, dy: -1 },
    Move { dx: 1, dy: 1 },
    Move { dx: -1, dy: 1 },
    Move { dx: -1, dy: -1 },
    Move { dx: 1, dy: -1 },
];

/// The cell reached from `index` by `m`, if the move is legal under the
/// movement rules (stays on the grid, target walkable, no corner cutting).
///
/// The plain statement of the rules, for code off the hot paths (tests,
/// tools, validation) so it need not restate them; the flow field and A*
/// inline the same test in their inner loops, and the tests check them
/// against this. Cells beyond `walkable.len()` count as blocked.
pub fn step(walkable: &[bool], width: u16, height: u16, index: usize, m: Move) -> Option<usize> {
    let width = usize::from(width);
    let height = usize::from(height);
    if width == 0 || index >= width * height {
        return None;
    }
    let x = (index % width) as isize + isize::from(m.dx);
    let y = (index / width) as isize + isize::from(m.dy);
    if x < 0 || y < 0 || x >= width as isize || y >= height as isize {
        return None;
    }
    let open = |x: isize, y: isize| {
        walkable
            .get(y as usize * width + x as usize)
            .copied()
            .unwrap_or(false)
    };
    if !open(x, y) {
        return None;
    }
    if m.diagonal() {
        let (ox, oy) = ((index % width) as isize, (index / width) as isize);
        if !open(x, oy) || !open(ox, y) {
            return None;
        }
    }
    Some(y as usize * width + x as usize)
}

#[cfg(test)]
mod tests;
