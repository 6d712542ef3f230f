//! Flow fields: one shortest-path tree toward the goal set, shared by every
//! enemy on the map.
//!
//! A tower defense has many walkers and few destinations, so instead of one
//! search per enemy the simulation computes, after every change to the map,
//! the distance from every cell to the nearest goal. Each enemy then just
//! reads [`FlowField::next`] for its cell.
//!
//! The field is a Dijkstra search run backwards from the goals (the movement
//! graph is symmetric, so distance-from-goals equals distance-to-goals). Edge
//! costs are small integers ([`STRAIGHT_COST`], [`DIAGONAL_COST`]), which lets
//! the priority queue be a bucket queue (Dial's algorithm) over flat arrays,
//! with O(1) push and pop and no per-call allocation.
//!
//! The buckets are [`STRAIGHT_COST`] wide rather than one distance wide (the
//! Dinitz refinement of Dial's algorithm): no edge is shorter than the
//! bucket width, so a cell in the lowest non-empty bucket can no longer be
//! improved by anything still queued, and a whole bucket is settled in any
//! order. Pending distances then span at most three consecutive buckets, so
//! a ring of four buckets suffices, and a search visits one bucket per
//! 70 cost units instead of one per distinct distance value. The distances
//! are exact either way; only the order within a bucket differs, and
//! [`FlowField::next`] is derived from the distances alone.
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

/// Width of a bucket in cost units: the cheapest edge, so that relaxing a
/// cell never lands in its own bucket.
const BUCKET_WIDTH: u32 = STRAIGHT_COST;

/// Buckets in the ring. Queued distances lie in `[d, d + DIAGONAL_COST]` for
/// the current `d`, which touches at most three buckets; four makes the ring
/// index a mask.
const RING: usize = 4;

/// Internal distance of cells the search has not reached.
const UNREACHED: u32 = u32::MAX;

/// Internal distance of blocked cells: lower than any candidate, so never
/// improved.
const BLOCKED: u32 = 0;

/// Internal distance of goals (internal distances are true ones plus one).
const GOAL: u32 = 1;

/// Distance to the nearest goal and the next step toward it, for every cell.
///
/// Built once per map size with [`FlowField::new`] and refreshed with
/// [`FlowField::compute`] whenever towers change the walkable cells; the
/// buffers are reused so recomputing during a game never allocates.
///
/// Distances are `u32` cost units, room for routes of over 40 million
/// diagonal steps: far beyond any map whose field fits in memory.
#[derive(Clone, Debug)]
pub struct FlowField {
    width: u16,
    height: u16,
    /// Width of the padded grid (`width + 2`).
    padded_width: usize,
    /// Padded distances in cost units, plus one: [`BLOCKED`] (0) for blocked
    /// cells and the border, 1 for goals, [`UNREACHED`] for open cells not
    /// reached. The encoding makes this array the map too: a cell is open
    /// iff its entry is non-zero, and relaxing into a blocked cell never
    /// succeeds, so the inner loop needs no second array and no extra test.
    dist: Vec<u32>,
    /// The ring of buckets: [`RING`] buckets of `bucket_capacity` padded
    /// cells each, stored back to back.
    queue: Vec<u32>,
    /// Entries in each bucket.
    lens: [usize; RING],
    /// Entries per bucket in `queue`.
    bucket_capacity: usize,
}

impl FlowField {
    /// Allocates every buffer for a `width` x `height` map up front, so that
    /// [`FlowField::compute`] can run every tick without touching the
    /// allocator.
    ///
    /// # Panics
    /// If the map padded by one cell on each side has more than 2^32 cells
    /// (both sides near 65535), because the queue stores cells as `u32` to
    /// halve its memory traffic. Such a map would need over 20 GB anyway.
    pub fn new(width: u16, height: u16) -> Self {
        let padded_width = usize::from(width) + 2;
        let padded_len = padded_width * (usize::from(height) + 2);
        assert!(
            u32::try_from(padded_len - 1).is_ok(),
            "flow field of {width}x{height} is too large"
        );
        // A bucket holds one band, one straight step thick, of the Dijkstra
        // wavefront, which is about as long as the map's perimeter; twice
        // that covers ordinary maps without the queue ever growing. It keeps
        // whatever size it reaches, so even unusual maps settle after their
        // first computation.
        let bucket_capacity = 4 * (usize::from(width) + usize::from(height)) + 64;
        Self {
            width,
            height,
            padded_width,
            dist: vec![0; padded_len],
            queue: vec![0; RING * bucket_capacity],
            lens: [0; RING],
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

        self.dist.fill(BLOCKED);
        if width > 0 {
            for (y, row) in walkable.chunks(width).take(height).enumerate() {
                let start = (y + 1) * pw + 1;
                for (d, &open) in self.dist[start..start + row.len()].iter_mut().zip(row) {
                    *d = if open { UNREACHED } else { BLOCKED };
                }
            }
        }
        self.lens = [0; RING];

        for &goal in goals {
            if goal >= width * height {
                continue;
            }
            let p = (goal / width + 1) * pw + goal % width + 1;
            if self.dist[p] == UNREACHED {
                if self.lens[0] == self.bucket_capacity {
                    self.grow();
                }
                self.dist[p] = GOAL;
                self.queue[self.lens[0]] = p as u32;
                self.lens[0] += 1;
            }
        }

        // Bucket `band` holds distances [band * BUCKET_WIDTH, (band + 1) * BUCKET_WIDTH).
        let mut band: u32 = 0;
        while self.lens.iter().any(|&len| len > 0) {
            let r = band as usize % RING;
            let (r1, r2) = ((r + 1) % RING, (r + 2) % RING);
            let mut queued = Queued {
                near: self.lens[r1],
                far: self.lens[r2],
            };
            let count = self.lens[r];
            let mut k = 0;
            while k < count {
                // A settled cell pushes at most eight entries into the next
                // bucket and four into the one after, and pushes are
                // unconditional writes, so run only as many cells as surely
                // fit before checking again.
                let cap = self.bucket_capacity;
                let room = ((cap - queued.near) / 8).min((cap - queued.far) / 4);
                if room == 0 {
                    (self.lens[r1], self.lens[r2]) = (queued.near, queued.far);
                    self.grow();
                    continue;
                }
                let end = count.min(k + room);
                let ctx = Relax {
                    padded_width: pw,
                    near_base: r1 * cap,
                    far_base: r2 * cap,
                    // Diagonals from distances at or past this offset in the
                    // band land two buckets ahead.
                    far_from: (band + 2) * BUCKET_WIDTH - DIAGONAL_COST,
                };
                let base = r * cap;
                let band_start = band * BUCKET_WIDTH;
                for slot in base + k..base + end {
                    let u = self.queue[slot] as usize;
                    // A cell improved after it was queued is queued again;
                    // its older entry sits in a later bucket and finds the
                    // distance already below this band: it was settled.
                    if self.dist[u] < band_start {
                        continue;
                    }
                    ctx.relax(
                        u,
                        self.dist[u],
                        &mut self.dist,
                        &mut self.queue,
                        &mut queued,
                    );
                }
                k = end;
            }
            self.lens[r] = 0;
            (self.lens[r1], self.lens[r2]) = (queued.near, queued.far);
            band += 1;
        }
    }

    /// Doubles every bucket's capacity, keeping its entries. Only maps with
    /// unusually long wavefronts get here, and the larger queue is kept for
    /// later computations.
    #[cold]
    fn grow(&mut self) {
        let old = self.bucket_capacity;
        let new = old * 2;
        let mut queue = vec![0; RING * new];
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
        (d != BLOCKED && d != UNREACHED).then(|| d - GOAL)
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
        if d == BLOCKED || d == UNREACHED || d == GOAL {
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
            let open = |i: usize| self.dist[i] != BLOCKED;
            open(v)
                && (!m.diagonal() || (open(at(m.dx, 0)) && open(at(0, m.dy))))
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

/// Entries in the two buckets after the current one, kept in registers
/// rather than in [`FlowField::lens`] while a bucket is processed (through
/// memory, each push would wait on the previous one's store).
struct Queued {
    /// Entries in the next bucket.
    near: usize,
    /// Entries in the bucket after that.
    far: usize,
}

/// What relaxing the cells of one bucket needs besides the arrays.
struct Relax {
    padded_width: usize,
    /// Start in the queue of the next bucket.
    near_base: usize,
    /// Start in the queue of the bucket after that.
    far_base: usize,
    /// Smallest distance whose diagonal relaxations land in the far bucket
    /// (straight ones always land in the near bucket).
    far_from: u32,
}

impl Relax {
    /// Relaxes the eight edges out of settled padded cell `u` at distance
    /// `d`.
    ///
    /// Blocked cells hold distance 0, so they are never improved, and a
    /// diagonal whose corner is blocked gets an infinite candidate: the only
    /// test per neighbour is "is it better". Only improvements are stored.
    /// A branch-free form (always store the minimum, always write the queue
    /// slot) was measured 40% slower on the 50x50 benchmark map: every
    /// unconditional store to a shared neighbour made the next cell's load
    /// wait on it, which costs more than the occasional mispredicted branch.
    #[inline(always)]
    fn relax(&self, u: usize, d: u32, dist: &mut [u32], queue: &mut [u32], queued: &mut Queued) {
        let pw = self.padded_width;
        // The 3x3 block around `u` as one slice: a single bounds check
        // instead of one per neighbour. Offsets: row above 0..3, own row
        // pw..pw + 3, row below 2 * pw..2 * pw + 3.
        let block = &mut dist[u - pw - 1..u + pw + 2];
        let (north, east, south, west) = (1, pw + 2, 2 * pw + 1, pw);
        let straight = d + STRAIGHT_COST;
        let mut open = [false; 4];
        for (i, offset) in [east, south, west, north].into_iter().enumerate() {
            let old = block[offset];
            open[i] = old != BLOCKED;
            if straight < old {
                block[offset] = straight;
                queue[self.near_base + queued.near] = (u - pw - 1 + offset) as u32;
                queued.near += 1;
            }
        }

        let diagonal = d + DIAGONAL_COST;
        let to_far = d >= self.far_from;
        let base = if to_far {
            self.far_base
        } else {
            self.near_base
        };
        let mut len = if to_far { queued.far } else { queued.near };
        let [e, s, w, n] = open;
        let corners = [
            (2 * pw + 2, s && e),
            (2 * pw, s && w),
            (0, n && w),
            (2, n && e),
        ];
        for (offset, corners_open) in corners {
            let candidate = if corners_open { diagonal } else { UNREACHED };
            let old = block[offset];
            if candidate < old {
                block[offset] = candidate;
                queue[base + len] = (u - pw - 1 + offset) as u32;
                len += 1;
            }
        }
        if to_far {
            queued.far = len;
        } else {
            queued.near = len;
        }
    }
}
