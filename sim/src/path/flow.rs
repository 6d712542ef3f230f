//! Flow fields: one shortest-path tree toward the goal set, shared by every
//! enemy on the map.
//!
//! A tower defense has many walkers and few destinations, so instead of one
//! search per enemy the simulation computes, after every change to the map,
//! the distance from every cell to the nearest goal and the neighbour to step
//! to. Each enemy then just reads [`FlowField::next`] for its cell.
//!
//! The field is a Dijkstra search run backwards from the goals (the movement
//! graph is symmetric, so distance-from-goals equals distance-to-goals). Edge
//! costs are small integers ([`STRAIGHT_COST`], [`DIAGONAL_COST`]), which lets
//! the priority queue be a bucket queue (Dial's algorithm) with one circular
//! bucket per distance modulo `DIAGONAL_COST + 1`: push and pop are O(1) and
//! the whole search runs over flat arrays with no per-call allocation.
//!
//! Internally the grid is padded with a one-cell blocked border so the inner
//! loop needs no bounds tests for the eight neighbours.

use super::{MOVES, SQRT_2};

/// Cost of a straight (orthogonal) step, in the field's integer cost units.
///
/// Integer costs keep the field exact and deterministic across platforms and
/// make the bucket queue possible; 70 pairs with [`DIAGONAL_COST`].
pub const STRAIGHT_COST: u32 = 70;

/// Cost of a diagonal step. 99/70 is a continued-fraction convergent of
/// sqrt(2) (error about 7e-5), so any route that is shortest under these
/// costs is also shortest under the exact ones for every realistic map size.
pub const DIAGONAL_COST: u32 = 99;

/// Number of circular buckets: every edge costs less than this, so all
/// tentative distances waiting in the queue fit in one turn of the ring.
const BUCKETS: usize = DIAGONAL_COST as usize + 1;

/// Distance marker for cells the search has not reached.
const UNREACHED: u32 = u32::MAX;

/// Direction marker for goals and unreachable cells.
const NO_STEP: u8 = u8::MAX;

/// Distance to the nearest goal and the next step toward it, for every cell.
///
/// Built once per map size with [`FlowField::new`] and refreshed with
/// [`FlowField::compute`] whenever towers change the walkable cells; the
/// buffers are reused so recomputing during a game never allocates.
#[derive(Clone, Debug)]
pub struct FlowField {
    width: u16,
    height: u16,
    /// Width of the padded grid (`width + 2`).
    padded_width: usize,
    /// Padded walkability: the border is always `false`.
    open: Vec<bool>,
    /// Padded distances in cost units, [`UNREACHED`] if not reached.
    dist: Vec<u32>,
    /// Padded next-step direction (index into [`MOVES`]), or [`NO_STEP`].
    step: Vec<u8>,
    /// Circular bucket queue of padded indices, indexed by distance mod [`BUCKETS`].
    buckets: Vec<Vec<u32>>,
}

impl FlowField {
    /// Allocates every buffer for a `width` x `height` map up front, so that
    /// [`FlowField::compute`] can run every tick without touching the
    /// allocator.
    pub fn new(width: u16, height: u16) -> Self {
        let padded_width = usize::from(width) + 2;
        let padded_len = padded_width * (usize::from(height) + 2);
        // A Dijkstra wavefront on a grid is about as long as the perimeter,
        // and one bucket holds only the cells of one exact distance, so this
        // covers ordinary maps without the buckets ever growing. They keep
        // whatever capacity they reach, so even unusual maps settle after
        // their first computation.
        let bucket_capacity = 2 * (usize::from(width) + usize::from(height)) + 16;
        Self {
            width,
            height,
            padded_width,
            open: vec![false; padded_len],
            dist: vec![UNREACHED; padded_len],
            step: vec![NO_STEP; padded_len],
            buckets: (0..BUCKETS)
                .map(|_| Vec::with_capacity(bucket_capacity))
                .collect(),
        }
    }

    /// Cells per row, so callers can check a field matches their map.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Rows, so callers can check a field matches their map.
    pub fn height(&self) -> u16 {
        self.height
    }

    /// Recomputes the field for `walkable` (row-major, `width * height`
    /// cells) toward every index in `goals`, reusing all buffers.
    ///
    /// Missing entries of a too-short `walkable` count as blocked, extra ones
    /// are ignored; goals that are out of range or not walkable are skipped,
    /// so bad input yields an empty field rather than a panic.
    pub fn compute(&mut self, walkable: &[bool], goals: &[usize]) {
        let width = usize::from(self.width);
        let height = usize::from(self.height);
        let pw = self.padded_width;

        self.dist.fill(UNREACHED);
        self.step.fill(NO_STEP);
        self.open.fill(false);
        if width > 0 {
            for (y, row) in walkable.chunks(width).take(height).enumerate() {
                let start = (y + 1) * pw + 1;
                self.open[start..start + row.len()].copy_from_slice(row);
            }
        }
        for bucket in &mut self.buckets {
            bucket.clear();
        }

        // Occupancy bit per bucket, so empty distances are skipped in O(1).
        let mut occupied: u128 = 0;
        let mut pending: usize = 0;
        for &goal in goals {
            if goal >= width * height {
                continue;
            }
            let p = (goal / width + 1) * pw + goal % width + 1;
            if self.open[p] && self.dist[p] != 0 {
                self.dist[p] = 0;
                self.buckets[0].push(p as u32);
                occupied |= 1;
                pending += 1;
            }
        }

        // Neighbour offsets in the padded grid, in MOVES order.
        let offsets: [isize; 8] = MOVES.map(|m| m.dx as isize + m.dy as isize * pw as isize);
        let costs: [u32; 8] = MOVES.map(|m| {
            if m.diagonal() {
                DIAGONAL_COST
            } else {
                STRAIGHT_COST
            }
        });
        // For a relaxation u -> v along MOVES[i], v steps back along REVERSE[i].
        let reverse: [u8; 8] = REVERSE;

        let mut current: usize = 0; // bucket index of `distance`
        let mut distance: u32 = 0;
        while pending > 0 {
            // Find the next non-empty bucket at or after `current`, circularly.
            let ahead = occupied >> current;
            let next_bucket = if ahead != 0 {
                current + ahead.trailing_zeros() as usize
            } else {
                occupied.trailing_zeros() as usize
            };
            let advance = (next_bucket + BUCKETS - current) % BUCKETS;
            distance += advance as u32;
            current = next_bucket;

            // Relaxations from `distance` land in other buckets (every cost is
            // between 1 and BUCKETS - 1), so this bucket can be taken out while
            // the others grow, and put back with its capacity intact.
            let mut bucket = std::mem::take(&mut self.buckets[current]);
            occupied &= !(1u128 << current);
            pending -= bucket.len();
            for &cell in &bucket {
                let u = cell as usize;
                if self.dist[u] != distance {
                    continue; // stale entry: the cell was improved later
                }
                let n = self.open[u - pw];
                let s = self.open[u + pw];
                let w = self.open[u - 1];
                let e = self.open[u + 1];
                // MOVES order: E, S, W, N, SE, SW, NW, NE.
                let allowed = [e, s, w, n, s && e, s && w, n && w, n && e];
                for i in 0..8 {
                    if !allowed[i] {
                        continue;
                    }
                    let v = u.wrapping_add_signed(offsets[i]);
                    if !self.open[v] {
                        continue;
                    }
                    let nd = distance + costs[i];
                    if nd < self.dist[v] {
                        self.dist[v] = nd;
                        self.step[v] = reverse[i];
                        let b = (current + costs[i] as usize) % BUCKETS;
                        self.buckets[b].push(v as u32);
                        occupied |= 1u128 << b;
                        pending += 1;
                    }
                }
            }
            bucket.clear();
            self.buckets[current] = bucket;
        }
    }

    /// Padded index of row-major `index`, or `None` if it is off the map.
    fn padded(&self, index: usize) -> Option<usize> {
        let width = usize::from(self.width);
        if index >= width * usize::from(self.height) {
            return None;
        }
        Some((index / width + 1) * self.padded_width + index % width + 1)
    }

    /// How far `index` is from the nearest goal, in cost units
    /// ([`STRAIGHT_COST`] per straight step), so the simulation can rank
    /// enemies by progress; `None` if no goal can be reached or the index is
    /// off the map.
    pub fn distance(&self, index: usize) -> Option<u32> {
        let d = self.dist[self.padded(index)?];
        (d != UNREACHED).then_some(d)
    }

    /// The neighbour an enemy on `index` should step to; `None` at a goal, on
    /// an unreachable cell or off the map, so walkers stop instead of
    /// wandering.
    pub fn next(&self, index: usize) -> Option<usize> {
        let step = *self.step.get(self.padded(index)?)?;
        let m = MOVES.get(usize::from(step))?;
        Some(m.apply(index, usize::from(self.width)))
    }

    /// Whether any goal can be reached from `index`, which tower placement
    /// must preserve for spawns (a maze may never be sealed).
    pub fn reachable(&self, index: usize) -> bool {
        self.distance(index).is_some()
    }

    /// Exact length (straight steps + sqrt(2) per diagonal step) of the route
    /// the field sends a walker along from `index`, for comparing with
    /// external oracles and reporting true path lengths; `None` if no goal is
    /// reachable.
    pub fn route_length(&self, index: usize) -> Option<f64> {
        self.distance(index)?;
        let mut straight: u64 = 0;
        let mut diagonal: u64 = 0;
        let mut at = index;
        // A well-formed field strictly decreases distance each step, so a
        // route never revisits a cell; the bound is a guard, not a limit.
        let max_steps = usize::from(self.width) * usize::from(self.height);
        for _ in 0..max_steps {
            let p = self.padded(at)?;
            let Some(m) = MOVES.get(usize::from(self.step[p])) else {
                return Some(straight as f64 + diagonal as f64 * SQRT_2);
            };
            if m.diagonal() {
                diagonal += 1;
            } else {
                straight += 1;
            }
            at = m.apply(at, usize::from(self.width));
        }
        None
    }
}

/// For each index into [`MOVES`], the index of the opposite move.
const REVERSE: [u8; 8] = {
    let mut reverse = [0u8; 8];
    let mut i = 0;
    while i < 8 {
        let mut j = 0;
        while j < 8 {
            if MOVES[j].dx == -MOVES[i].dx && MOVES[j].dy == -MOVES[i].dy {
                reverse[i] = j as u8;
            }
            j += 1;
        }
        i += 1;
    }
    reverse
};
