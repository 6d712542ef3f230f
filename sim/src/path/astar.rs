//! A* with exact `f64` costs, for single start-to-goal queries.
//!
//! The simulation moves enemies with flow fields; A* serves the tools (the
//! `rampart path` command), map validation and tests, where one answer per
//! query is wanted and exact sqrt(2) costs make results comparable with
//! published benchmark lengths. The octile distance is the heuristic: it is
//! the exact cost on an empty grid, so it is admissible and consistent, and
//! forbidding corner cutting only removes moves.
//!
//! [`AStar`] keeps its buffers between searches and invalidates them with a
//! generation counter, so answering many queries on one map costs no
//! allocation and no O(cells) clearing per query.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::{MOVES, SQRT_2};

/// Length of the shortest legal route from `start` to `goal`, or `None` if
/// there is none (including when either end is off the map or blocked).
///
/// Convenience for one-off queries; use [`AStar`] to answer many queries on
/// the same map without reallocating.
pub fn shortest_path_length(
    walkable: &[bool],
    width: u16,
    height: u16,
    start: usize,
    goal: usize,
) -> Option<f64> {
    AStar::new(width, height).search(walkable, start, goal)
}

/// Reusable A* search state for one map size.
///
/// Holding it across queries avoids allocating and clearing per-cell arrays
/// each time, which dominates the cost of short queries on large maps.
#[derive(Clone, Debug)]
pub struct AStar {
    width: u16,
    height: u16,
    /// Best known route from the start as (straight, diagonal) step counts,
    /// valid where `seen == generation`.
    g: Vec<Steps>,
    /// Generation in which `g` was last written for each cell.
    seen: Vec<u32>,
    generation: u32,
    open: BinaryHeap<Entry>,
}

impl AStar {
    /// Allocates the per-cell buffers for a `width` x `height` map once, so
    /// that [`AStar::search`] can be called repeatedly without allocating
    /// (beyond the open list growing to its high-water mark).
    pub fn new(width: u16, height: u16) -> Self {
        let len = usize::from(width) * usize::from(height);
        Self {
            width,
            height,
            g: vec![Steps::default(); len],
            seen: vec![0; len],
            generation: 0,
            open: BinaryHeap::new(),
        }
    }

    /// Cells per row, so callers can check the searcher matches their map.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Rows, so callers can check the searcher matches their map.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Length of the shortest legal route from `start` to `goal` on
    /// `walkable` (row-major, `width * height` cells; missing cells count as
    /// blocked), or `None` if there is none or either end is off the map or
    /// blocked, so callers never need to pre-validate user input.
    pub fn search(&mut self, walkable: &[bool], start: usize, goal: usize) -> Option<f64> {
        let width = usize::from(self.width);
        let height = usize::from(self.height);
        let len = width * height;
        let open_at = |i: usize| i < len && walkable.get(i).copied().unwrap_or(false);
        if !open_at(start) || !open_at(goal) {
            return None;
        }
        if start == goal {
            return Some(0.0);
        }

        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Stamps from 2^32 searches ago could alias; start afresh.
            self.seen.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        self.open.clear();

        let (gx, gy) = (goal % width, goal / width);
        let heuristic = |x: usize, y: usize| {
            let (dx, dy) = (x.abs_diff(gx) as u32, y.abs_diff(gy) as u32);
            Steps {
                straight: dx.max(dy) - dx.min(dy),
                diagonal: dx.min(dy),
            }
        };

        let origin = Steps::default();
        self.g[start] = origin;
        self.seen[start] = generation;
        // Cell indices fit: width and height are u16.
        self.open.push(Entry::new(
            origin
                .plus(heuristic(start % width, start / width))
                .length(),
            origin,
            start as u32,
        ));

        while let Some(entry) = self.open.pop() {
            let u = entry.node();
            let g = self.g[u];
            if entry.g != g.length().to_bits() {
                continue; // stale: a cheaper entry for `u` was already expanded
            }
            if u == goal {
                return Some(g.length());
            }
            let (x, y) = (u % width, u / width);
            let e = x + 1 < width && open_at(u + 1);
            let s = y + 1 < height && open_at(u + width);
            let w = x > 0 && open_at(u - 1);
            let n = y > 0 && open_at(u - width);
            // MOVES order: E, S, W, N, SE, SW, NW, NE.
            let allowed = [e, s, w, n, s && e, s && w, n && w, n && e];
            for (m, ok) in MOVES.iter().zip(allowed) {
                if !ok {
                    continue;
                }
                let v = m.apply(u, width);
                if !open_at(v) {
                    continue;
                }
                let ng = g.plus(Steps {
                    straight: u32::from(!m.diagonal()),
                    diagonal: u32::from(m.diagonal()),
                });
                if self.seen[v] != generation || ng.length() < self.g[v].length() {
                    self.seen[v] = generation;
                    self.g[v] = ng;
                    let vx = x.wrapping_add_signed(isize::from(m.dx));
                    let vy = y.wrapping_add_signed(isize::from(m.dy));
                    self.open.push(Entry::new(
                        ng.plus(heuristic(vx, vy)).length(),
                        ng,
                        v as u32,
                    ));
                }
            }
        }
        None
    }
}

/// A route's length as straight and diagonal step counts.
///
/// Lengths are computed from the counts every time (`straight + diagonal *
/// sqrt(2)`), never accumulated step by step, so equal routes get
/// bit-identical `f64` lengths whatever order their steps came in. That
/// keeps ties exact, which lets the tie-break on `g` steer the search
/// straight at the goal on open ground instead of fanning out over
/// candidates that differ only by rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Steps {
    pub(super) straight: u32,
    pub(super) diagonal: u32,
}

impl Steps {
    pub(super) fn plus(self, other: Steps) -> Steps {
        Steps {
            straight: self.straight + other.straight,
            diagonal: self.diagonal + other.diagonal,
        }
    }

    pub(super) fn length(self) -> f64 {
        f64::from(self.straight) + f64::from(self.diagonal) * SQRT_2
    }
}

/// Open-list entry of A* here and of the subgoal graph's searches, ordered
/// so the max-heap pops the lowest `f` first, preferring deeper nodes
/// (higher `g`) and then lower indices on ties so searches are
/// deterministic.
///
/// Costs are non-negative, so their IEEE bit patterns order like the values
/// and compare as plain integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Entry {
    f: Reverse<u64>,
    /// `g`'s bits, which a pop compares with the node's best `g` to skip
    /// stale entries.
    pub(super) g: u64,
    /// A cell index for A*, a subgoal id for the subgoal graph.
    pub(super) node: Reverse<u32>,
}

impl Entry {
    pub(super) fn new(f: f64, g: Steps, node: u32) -> Self {
        Self {
            f: Reverse(f.to_bits()),
            g: g.length().to_bits(),
            node: Reverse(node),
        }
    }

    /// The cell or subgoal this entry reached.
    pub(super) fn node(self) -> usize {
        self.node.0 as usize
    }
}
