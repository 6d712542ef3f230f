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

use super::{MOVES, Move, SQRT_2};

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
    /// Padded distances in cost units: [`UNREACHED`] for open cells not
    /// reached, 0 for goals and also for blocked cells, so that relaxing a
    /// blocked neighbour never succeeds and needs no separate test.
    dist: Vec<u32>,
    /// The circular bucket queue: [`BUCKETS`] buckets of `bucket_capacity`
    /// padded indices each, stored back to back; bucket `b` holds the cells
    /// whose tentative distance is the one pending value congruent to `b`.
    queue: Vec<u32>,
    /// Entries in each bucket.
    lens: [usize; BUCKETS],
    /// Slots per bucket in `queue`.
    bucket_capacity: usize,
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
        // covers ordinary maps without the queue ever growing. It keeps
        // whatever size it reaches, so even unusual maps settle after their
        // first computation.
        let bucket_capacity = 2 * (usize::from(width) + usize::from(height)) + 16;
        Self {
            width,
            height,
            padded_width,
            open: vec![false; padded_len],
            dist: vec![0; padded_len],
            queue: vec![0; BUCKETS * bucket_capacity],
            lens: [0; BUCKETS],
            bucket_capacity,
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

        self.open.fill(false);
        if width > 0 {
            for (y, row) in walkable.chunks(width).take(height).enumerate() {
                let start = (y + 1) * pw + 1;
                self.open[start..start + row.len()].copy_from_slice(row);
            }
        }
        for (d, &open) in self.dist.iter_mut().zip(&self.open) {
            *d = if open { UNREACHED } else { 0 };
        }
        self.lens = [0; BUCKETS];

        for &goal in goals {
            if goal >= width * height {
                continue;
            }
            let p = (goal / width + 1) * pw + goal % width + 1;
            if self.open[p] && self.dist[p] != 0 {
                if self.lens[0] == self.bucket_capacity {
                    self.grow();
                }
                self.dist[p] = 0;
                self.queue[self.lens[0]] = p as u32;
                self.lens[0] += 1;
            }
        }
        // Occupancy bit per bucket, so empty distances are skipped in O(1).
        let mut occupied: u128 = u128::from(self.lens[0] > 0);

        let mut current: usize = 0; // bucket of `distance`
        let mut distance: u32 = 0;
        while occupied != 0 {
            // The next non-empty bucket at or after `current`, circularly;
            // every pending distance lies within one turn of the ring.
            let ahead = occupied >> current;
            let next_bucket = if ahead != 0 {
                current + ahead.trailing_zeros() as usize
            } else {
                occupied.trailing_zeros() as usize
            };
            distance += ((next_bucket + BUCKETS - current) % BUCKETS) as u32;
            current = next_bucket;

            // Every relaxation from `distance` lands `STRAIGHT_COST` or
            // `DIAGONAL_COST` buckets ahead, never in this one, so this
            // bucket's entries stay put while those two grow.
            let straight_bucket = (current + STRAIGHT_COST as usize) % BUCKETS;
            let diagonal_bucket = (current + DIAGONAL_COST as usize) % BUCKETS;
            let straight_distance = distance + STRAIGHT_COST;
            let diagonal_distance = distance + DIAGONAL_COST;
            let (sb, db) = (straight_bucket, diagonal_bucket);
            let mut queued = Queued {
                straight: self.lens[sb],
                diagonal: self.lens[db],
            };
            let count = self.lens[current];
            let mut k = 0;
            while k < count {
                // Each settled cell pushes at most four entries into each of
                // the two buckets, and pushes are unconditional writes, so
                // run only as many cells as surely fit before checking again.
                let cap = self.bucket_capacity;
                let room = (cap - queued.straight).min(cap - queued.diagonal) / 4;
                if room == 0 {
                    (self.lens[sb], self.lens[db]) = (queued.straight, queued.diagonal);
                    self.grow();
                    continue;
                }
                let end = count.min(k + room);
                let ctx = Relax {
                    padded_width: pw,
                    straight_base: sb * cap,
                    diagonal_base: db * cap,
                    straight_distance,
                    diagonal_distance,
                };
                let base = current * cap;
                for slot in base + k..base + end {
                    let u = self.queue[slot] as usize;
                    if self.dist[u] != distance {
                        continue; // stale entry: the cell was improved later
                    }
                    ctx.relax(u, &self.open, &mut self.dist, &mut self.queue, &mut queued);
                }
                k = end;
            }
            (self.lens[sb], self.lens[db]) = (queued.straight, queued.diagonal);
            self.lens[current] = 0;
            occupied &= !(1u128 << current);
            occupied |= u128::from(self.lens[straight_bucket] > 0) << straight_bucket;
            occupied |= u128::from(self.lens[diagonal_bucket] > 0) << diagonal_bucket;
        }
    }

    /// Doubles every bucket's capacity, keeping its entries. Only maps with
    /// unusually many cells at one exact distance get here, and the larger
    /// queue is kept for later computations.
    #[cold]
    fn grow(&mut self) {
        let old = self.bucket_capacity;
        let new = old * 2;
        let mut queue = vec![0; BUCKETS * new];
        for (b, &len) in self.lens.iter().enumerate() {
            queue[b * new..b * new + len].copy_from_slice(&self.queue[b * old..b * old + len]);
        }
        self.queue = queue;
        self.bucket_capacity = new;
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
        let p = self.padded(index)?;
        let d = self.dist[p];
        (self.open[p] && d != UNREACHED).then_some(d)
    }

    /// The neighbour an enemy on `index` should step to; `None` at a goal, on
    /// an unreachable cell or off the map, so walkers stop instead of
    /// wandering.
    ///
    /// Derived from the distances on demand (eight neighbour checks) rather
    /// than stored by [`FlowField::compute`], which keeps the search's inner
    /// loop to distances alone. The step is the first legal neighbour, in
    /// [`MOVES`] order, that is exactly one edge cost closer to a goal, so
    /// ties always break the same way.
    pub fn next(&self, index: usize) -> Option<usize> {
        let m = self.step(self.padded(index)?)?;
        Some(m.apply(index, usize::from(self.width)))
    }

    /// The move from padded cell `p` to its next cell, if it has one.
    fn step(&self, p: usize) -> Option<Move> {
        let d = self.dist[p];
        if !self.open[p] || d == UNREACHED || d == 0 {
            return None;
        }
        let pw = self.padded_width as isize;
        let at = |dx: i8, dy: i8| p.wrapping_add_signed(isize::from(dx) + isize::from(dy) * pw);
        MOVES.into_iter().find(|m| {
            let v = at(m.dx, m.dy);
            let cost = if m.diagonal() {
                DIAGONAL_COST
            } else {
                STRAIGHT_COST
            };
            self.open[v]
                && (!m.diagonal() || (self.open[at(m.dx, 0)] && self.open[at(0, m.dy)]))
                && self.dist[v] != UNREACHED
                && self.dist[v] + cost == d
        })
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
            let Some(m) = self.step(p) else {
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

/// Entries in the two buckets the current distance relaxes into, kept in
/// registers rather than in [`FlowField::lens`] while a bucket is processed
/// (through memory, each push would wait on the previous one's store).
struct Queued {
    straight: usize,
    diagonal: usize,
}

/// What relaxing from one distance needs besides the arrays.
struct Relax {
    padded_width: usize,
    /// Start in the queue of the bucket `straight_distance` falls in.
    straight_base: usize,
    /// Start in the queue of the bucket `diagonal_distance` falls in.
    diagonal_base: usize,
    straight_distance: u32,
    diagonal_distance: u32,
}

impl Relax {
    /// Relaxes the eight edges out of settled padded cell `u`, in [`MOVES`]
    /// order (E, S, W, N, SE, SW, NW, NE) so ties always resolve the same way.
    ///
    /// Written without data-dependent branches: on maps with scattered
    /// obstacles, mispredicted "is it open / is it better" branches would
    /// otherwise dominate the running time. Blocked cells hold distance 0,
    /// so they are never improved; a diagonal whose corner is blocked gets
    /// an infinite candidate instead; every push writes its slot and only
    /// advances the length when the cell improved.
    #[inline(always)]
    fn relax(
        &self,
        u: usize,
        open: &[bool],
        dist: &mut [u32],
        queue: &mut [u32],
        queued: &mut Queued,
    ) {
        let pw = self.padded_width;
        let e = open[u + 1];
        let s = open[u + pw];
        let w = open[u - 1];
        let n = open[u - pw];
        for v in [u + 1, u + pw, u - 1, u - pw] {
            let old = dist[v];
            let better = self.straight_distance < old;
            dist[v] = if better { self.straight_distance } else { old };
            queue[self.straight_base + queued.straight] = v as u32;
            queued.straight += usize::from(better);
        }
        let diagonal = [
            (u + pw + 1, s && e),
            (u + pw - 1, s && w),
            (u - pw - 1, n && w),
            (u - pw + 1, n && e),
        ];
        for (v, corners_open) in diagonal {
            let candidate = if corners_open {
                self.diagonal_distance
            } else {
                UNREACHED
            };
            let old = dist[v];
            let better = candidate < old;
            dist[v] = if better { candidate } else { old };
            queue[self.diagonal_base + queued.diagonal] = v as u32;
            queued.diagonal += usize::from(better);
        }
    }
}
