//! Subgoal graphs: exact shortest route lengths on uniform-cost grids,
//! for tools that answer many single queries on one map.
//!
//! A* and jump point search rediscover, query after query, the same few
//! cells where optimal routes turn. A subgoal graph (Uras, Koenig and
//! Hernández, "Subgoal Graphs for Optimal Pathfinding in Eight-Neighbor
//! Grids", ICAPS 2013) finds them once per map and searches a graph of
//! them instead of the grid:
//!
//! - a *subgoal* is an open cell at a convex corner of an obstacle: a
//!   diagonal neighbour is blocked while the two cells between them are
//!   open. Every optimal route can be pulled taut so that it turns only at
//!   subgoals;
//! - two cells are *h-reachable* when a route between them exists whose
//!   length is their octile distance (the length on an empty grid); edges
//!   join the subgoals that are h-reachable from each other without passing
//!   another subgoal, so an edge's length is the octile distance of its ends
//!   and needs no storing;
//! - a query connects its start and goal to the subgoals directly
//!   h-reachable from them (or answers at once when the goal is directly
//!   h-reachable from the start) and runs A* on the graph;
//! - the heuristic is the larger of the octile distance and landmark bounds
//!   (Goldberg and Harrelson's ALT): graph distances from sixteen far-apart
//!   subgoals, computed when the graph is built. In a maze the octile
//!   distance ignores the winding of the corridors and A* expands most of
//!   the graph (1.2 ms a query on the 512x512 benchmark maze); the landmarks
//!   cut that about fivefold.
//!
//! Direct h-reachability is found by the paper's clearance scan: from a cell,
//! straight rays and one diagonal ray per quadrant, and from each cell of the
//! diagonal two straight rays, each stopping at the first subgoal or
//! obstacle and never reaching further than the ray before it (beyond that
//! bound a subgoal stands in the way). Per-cell clearances (how far each ray
//! runs before stopping, and whether it stops at a subgoal) are precomputed
//! in eight linear sweeps, so a scan reads one table entry per ray.
//!
//! Lengths are kept as straight and diagonal step counts, like
//! [`super::AStar`], so they are exact and equal A*'s bit for bit.

use std::collections::BinaryHeap;

use super::MOVES;
use super::astar::{Entry, Steps};

/// No subgoal at this cell.
const NONE: u32 = u32::MAX;

/// Landmarks of the search heuristic: sixteen `f32` distances fill one
/// 64-byte cache line per subgoal.
const LANDMARKS: usize = 16;

/// Landmark distances are shrunk by this factor, one part in 2^20, before a
/// bound is taken, so that `f32` rounding (at most a few parts in 2^24 of
/// the distances involved) never makes a bound overestimate: an admissible
/// heuristic keeps A* exact. Relative rather than absolute, so it holds on
/// maps of any size.
const LANDMARK_SHRINK: f32 = 1.0 - 1.0 / 1_048_576.0;

/// The precomputed subgoal graph of one map: read-only, so threads
/// answering queries in parallel share one.
#[derive(Clone, Debug)]
pub struct SubgoalGraph {
    width: usize,
    height: usize,
    /// Cells per padded row: the map has a border of blocked cells so rays
    /// and moves need no bounds checks.
    stride: usize,
    /// Subgoal id of each padded cell, or [`NONE`].
    node_of: Vec<u32>,
    /// Padded column and row of each subgoal.
    xy: Vec<[u32; 2]>,
    /// Edges of subgoal `n` are `targets[first_edge[n]..first_edge[n + 1]]`.
    first_edge: Vec<u32>,
    targets: Vec<u32>,
    /// Distances from [`LANDMARKS`] landmark subgoals to every subgoal,
    /// node-major (`landmark_distance[node * LANDMARKS + l]`, one cache line
    /// per node), infinite where unreachable.
    landmark_distance: Vec<f32>,
    /// For each of the eight [`MOVES`] and each padded cell: how many steps
    /// a ray from the cell runs before it stops (shifted left by one), and
    /// in the low bit whether it stops on a subgoal (the last step lands on
    /// it) rather than at an obstacle or a forbidden corner (the last step
    /// is illegal). Zero for blocked cells.
    clearance: [Vec<u32>; 8],
}

impl SubgoalGraph {
    /// Finds the subgoals of `walkable` (row-major, `width * height` cells;
    /// missing cells count as blocked), their clearances and the edges
    /// between them.
    pub fn new(walkable: &[bool], width: u16, height: u16) -> Self {
        let (width, height) = (usize::from(width), usize::from(height));
        let stride = width + 2;
        let len = stride * (height + 2);
        let mut open = vec![false; len];
        for y in 0..height {
            for x in 0..width {
                open[(y + 1) * stride + x + 1] =
                    walkable.get(y * width + x).copied().unwrap_or(false);
            }
        }
        let deltas = deltas(stride);

        // Subgoals: open cells with a blocked diagonal neighbour whose two
        // cells in between are open.
        let mut node_of = vec![NONE; len];
        let mut xy = Vec::new();
        for p in stride..len - stride {
            if !open[p] {
                continue;
            }
            let corner = deltas[4..].iter().any(|&(dx, dy)| {
                !open[p.wrapping_add_signed(dx + dy)]
                    && open[p.wrapping_add_signed(dx)]
                    && open[p.wrapping_add_signed(dy)]
            });
            if corner {
                node_of[p] = xy.len() as u32;
                xy.push([(p % stride) as u32, (p / stride) as u32]);
            }
        }

        let clearance = std::array::from_fn(|direction| {
            let (dx, dy) = deltas[direction];
            let step = dx + dy;
            let mut table = vec![0u32; len];
            // Each entry reads the one a step further on, so sweep from the
            // far end; the border stays zero.
            let mut fill = |p: usize| {
                if !open[p] {
                    return;
                }
                let next = p.wrapping_add_signed(step);
                let legal = open[next]
                    && (dx == 0
                        || dy == 0
                        || (open[p.wrapping_add_signed(dx)] && open[p.wrapping_add_signed(dy)]));
                table[p] = if !legal {
                    1 << 1
                } else if node_of[next] != NONE {
                    1 << 1 | 1
                } else {
                    table[next] + (1 << 1)
                };
            };
            if step > 0 {
                (stride..len - stride).rev().for_each(&mut fill);
            } else {
                (stride..len - stride).for_each(&mut fill);
            }
            table
        });

        let mut graph = Self {
            width,
            height,
            stride,
            node_of,
            xy,
            first_edge: Vec::new(),
            targets: Vec::new(),
            landmark_distance: Vec::new(),
            clearance,
        };
        let mut first_edge = Vec::with_capacity(graph.xy.len() + 1);
        let mut targets = Vec::new();
        let mut found = Vec::new();
        for &[x, y] in &graph.xy {
            first_edge.push(targets.len() as u32);
            let p = y as usize * stride + x as usize;
            graph.direct_subgoals(p, None, &mut found);
            targets.extend(found.iter().map(|&(node, _)| node));
        }
        first_edge.push(targets.len() as u32);
        graph.first_edge = first_edge;
        graph.targets = targets;
        graph.landmark_distance = graph.landmarks();
        graph
    }

    /// Chooses [`LANDMARKS`] landmarks, each the subgoal farthest from
    /// those chosen before (the first farthest from an arbitrary subgoal),
    /// and returns their distances to every subgoal.
    ///
    /// They make the search's heuristic: by the triangle inequality a
    /// subgoal `v` is at least `|d(l, goal) - d(l, v)|` from the goal for
    /// every landmark `l`. The octile distance alone badly underestimates in
    /// a maze, where the route winds far from the straight line, and A*
    /// then expands most of the graph; landmarks at the map's far ends see
    /// the winding.
    fn landmarks(&self) -> Vec<f32> {
        let n = self.subgoals();
        let mut table = vec![f32::INFINITY; n * LANDMARKS];
        if n == 0 {
            return table;
        }
        let mut dist = vec![f64::INFINITY; n];
        let mut nearest = vec![f64::INFINITY; n];
        let mut heap = BinaryHeap::new();
        let farthest = |d: &[f64]| {
            (0..n)
                .filter(|&v| d[v].is_finite())
                .max_by(|&a, &b| d[a].total_cmp(&d[b]))
                .unwrap_or(0)
        };
        self.dijkstra(n / 2, &mut dist, &mut heap);
        let mut landmark = farthest(&dist);
        for l in 0..LANDMARKS {
            self.dijkstra(landmark, &mut dist, &mut heap);
            for (v, &d) in dist.iter().enumerate() {
                table[v * LANDMARKS + l] = d as f32;
                if d < nearest[v] {
                    nearest[v] = d;
                }
            }
            landmark = farthest(&nearest);
        }
        table
    }

    /// Graph distances from subgoal `source` to every subgoal into `dist`
    /// (infinite where unreachable).
    fn dijkstra(&self, source: usize, dist: &mut [f64], heap: &mut BinaryHeap<Entry>) {
        let mut steps = vec![Steps::default(); dist.len()];
        dist.fill(f64::INFINITY);
        dist[source] = 0.0;
        heap.clear();
        heap.push(Entry::new(0.0, Steps::default(), source as u32));
        while let Some(entry) = heap.pop() {
            let u = entry.node();
            if entry.g != dist[u].to_bits() {
                continue;
            }
            let g = steps[u];
            let from = self.xy[u];
            for &v in self.edges_of(u) {
                let n = v as usize;
                let ng = g.plus(octile(from, self.xy[n]));
                if ng.length() < dist[n] {
                    dist[n] = ng.length();
                    steps[n] = ng;
                    heap.push(Entry::new(ng.length(), ng, v));
                }
            }
        }
    }

    /// Subgoals with an edge from subgoal `u`.
    fn edges_of(&self, u: usize) -> &[u32] {
        &self.targets[self.first_edge[u] as usize..self.first_edge[u + 1] as usize]
    }

    /// Cells per row of the map.
    pub fn width(&self) -> u16 {
        self.width as u16
    }

    /// Rows of the map.
    pub fn height(&self) -> u16 {
        self.height as u16
    }

    /// Number of subgoals, for benchmarks and tests.
    pub fn subgoals(&self) -> usize {
        self.xy.len()
    }

    /// Number of (directed) edges between subgoals, for benchmarks and tests.
    pub fn edges(&self) -> usize {
        self.targets.len()
    }

    /// Collects into `found` the subgoals directly h-reachable from padded
    /// cell `from`, with their distances, by the clearance scan. Returns the
    /// distance to padded cell `target` if the scan passes over it (it is
    /// then h-reachable from `from` with no subgoal in between).
    fn direct_subgoals(
        &self,
        from: usize,
        target: Option<usize>,
        found: &mut Vec<(u32, Steps)>,
    ) -> Option<Steps> {
        found.clear();
        let target = target.unwrap_or(usize::MAX);
        let deltas = deltas(self.stride);
        let mut direct = None;
        let free_of = |c: u32| (c >> 1).saturating_sub(1) as usize;
        // Straight rays from `from`; their reach bounds the diagonals' rays.
        let mut reach = [0usize; 4];
        for (direction, bound) in reach.iter_mut().enumerate() {
            let c = self.clearance[direction][from];
            let step = deltas[direction].0 + deltas[direction].1;
            *bound = free_of(c);
            if c & 1 == 1 {
                let cell = from.wrapping_add_signed(step * (c >> 1) as isize);
                found.push((self.node_of[cell], straight(c >> 1)));
            }
            if let Some(n) = on_ray(from, target, step, *bound) {
                direct = Some(straight(n));
            }
        }
        for direction in 4..8 {
            let m = MOVES[direction];
            let (dx, dy) = deltas[direction];
            let step = dx + dy;
            // The straight components, as indices into MOVES: E 0, S 1, W 2, N 3.
            let across = if m.dx > 0 { 0 } else { 2 };
            let along = if m.dy > 0 { 1 } else { 3 };
            let mut bounds = [(across, dx, reach[across]), (along, dy, reach[along])];
            let c = self.clearance[direction][from];
            if c & 1 == 1 {
                let cell = from.wrapping_add_signed(step * (c >> 1) as isize);
                found.push((self.node_of[cell], diagonal(c >> 1)));
            }
            let mut cell = from;
            for i in 1..=free_of(c) {
                cell = cell.wrapping_add_signed(step);
                let so_far = diagonal(i as u32);
                if cell == target {
                    direct = Some(so_far);
                }
                for (component, delta, bound) in &mut bounds {
                    let c = self.clearance[*component][cell];
                    let k = (c >> 1) as usize;
                    if c & 1 == 1 && k <= *bound {
                        let subgoal = cell.wrapping_add_signed(*delta * k as isize);
                        found.push((self.node_of[subgoal], so_far.plus(straight(k as u32))));
                    }
                    *bound = (*bound).min(free_of(c));
                    if let Some(n) = on_ray(cell, target, *delta, *bound) {
                        direct = Some(so_far.plus(straight(n)));
                    }
                }
            }
        }
        direct
    }

    /// Padded cell of map cell `index`, if on the map.
    fn padded(&self, index: usize) -> Option<usize> {
        (index < self.width * self.height)
            .then(|| (index / self.width + 1) * self.stride + index % self.width + 1)
    }

    /// Whether padded cell `p` is open: its clearance tables are zero only
    /// where it is blocked.
    fn open(&self, p: usize) -> bool {
        self.clearance[0][p] != 0
    }
}

/// Padded index offsets (column part, row part) of the eight [`MOVES`].
fn deltas(stride: usize) -> [(isize, isize); 8] {
    MOVES.map(|m| (isize::from(m.dx), isize::from(m.dy) * stride as isize))
}

fn straight(n: u32) -> Steps {
    Steps {
        straight: n,
        diagonal: 0,
    }
}

fn diagonal(n: u32) -> Steps {
    Steps {
        straight: 0,
        diagonal: n,
    }
}

/// Steps from `from` to `target` along the ray `from + k * step`, `k` in
/// `1..=reach`, if `target` is on it.
fn on_ray(from: usize, target: usize, step: isize, reach: usize) -> Option<u32> {
    let offset = target.wrapping_sub(from) as isize;
    if step == 0 || offset % step != 0 {
        return None;
    }
    let k = offset / step;
    // A straight step of one column wraps into the next row: only a ray
    // along a row can be fooled, and only beyond `reach`, which never runs
    // past the border.
    (k >= 1 && k as usize <= reach).then_some(k as u32)
}

/// Octile distance between padded coordinates, as step counts.
fn octile([ax, ay]: [u32; 2], [bx, by]: [u32; 2]) -> Steps {
    let (dx, dy) = (ax.abs_diff(bx), ay.abs_diff(by));
    Steps {
        straight: dx.max(dy) - dx.min(dy),
        diagonal: dx.min(dy),
    }
}

/// Reusable search state for one graph: per-subgoal buffers invalidated by
/// a generation counter, so a query costs no allocation and no clearing.
///
/// Not shared between threads: give each thread its own, all reading one
/// [`SubgoalGraph`].
#[derive(Clone, Debug)]
pub struct SubgoalSearch {
    /// Best known route to each subgoal (the goal is the last slot), valid
    /// where `seen == generation`.
    g: Vec<Steps>,
    seen: Vec<u32>,
    /// Distance from each subgoal to the goal, valid where
    /// `to_goal_seen == generation`: the subgoals with an edge to the goal.
    to_goal: Vec<Steps>,
    to_goal_seen: Vec<u32>,
    generation: u32,
    open: BinaryHeap<Entry>,
    found: Vec<(u32, Steps)>,
    /// Distances from each landmark to the current goal.
    goal_landmarks: [f32; LANDMARKS],
}

impl SubgoalSearch {
    /// Allocates the per-subgoal buffers for `graph`.
    pub fn new(graph: &SubgoalGraph) -> Self {
        let len = graph.subgoals() + 1;
        Self {
            g: vec![Steps::default(); len],
            seen: vec![0; len],
            to_goal: vec![Steps::default(); len],
            to_goal_seen: vec![0; len],
            generation: 0,
            open: BinaryHeap::new(),
            found: Vec::new(),
            goal_landmarks: [f32::INFINITY; LANDMARKS],
        }
    }

    /// Lower bound on the distance from subgoal `node` at `xy` to the goal
    /// at `goal_xy`: the octile distance or the best landmark bound.
    fn heuristic(&self, graph: &SubgoalGraph, node: usize, xy: [u32; 2], goal_xy: [u32; 2]) -> f64 {
        let row = &graph.landmark_distance[node * LANDMARKS..(node + 1) * LANDMARKS];
        let mut bound = 0.0f32;
        for (&to_node, &to_goal) in row.iter().zip(&self.goal_landmarks) {
            // |to_goal - to_node|, less the rounding allowance. NaN (both
            // unreachable) is ignored by `max`; one unreachable gives
            // infinity: the goal is not in the node's component.
            let (far, near) = (to_goal.max(to_node), to_goal.min(to_node));
            bound = bound.max(far * LANDMARK_SHRINK - near);
        }
        octile(xy, goal_xy).length().max(f64::from(bound))
    }

    /// Length of the shortest legal route from `start` to `goal` (row-major
    /// indices of `graph`'s map), or `None` if there is none or either end is
    /// off the map or blocked.
    ///
    /// # Panics
    /// If this searcher was made for a smaller graph.
    pub fn search(&mut self, graph: &SubgoalGraph, start: usize, goal: usize) -> Option<f64> {
        let (start, goal) = (graph.padded(start)?, graph.padded(goal)?);
        if !graph.open(start) || !graph.open(goal) {
            return None;
        }
        if start == goal {
            return Some(0.0);
        }
        assert!(
            self.g.len() > graph.subgoals(),
            "searcher made for a smaller graph"
        );
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Stamps from 2^32 searches ago could alias; start afresh.
            self.seen.fill(0);
            self.to_goal_seen.fill(0);
            self.generation = 1;
        }
        let generation = self.generation;
        self.open.clear();

        if let Some(steps) = graph.direct_subgoals(goal, Some(start), &mut self.found) {
            return Some(steps.length());
        }
        if graph.node_of[goal] != NONE {
            self.found.push((graph.node_of[goal], Steps::default()));
        }
        if self.found.is_empty() {
            return None;
        }
        self.goal_landmarks = [f32::INFINITY; LANDMARKS];
        for &(node, steps) in &self.found {
            let n = node as usize;
            self.to_goal_seen[n] = generation;
            self.to_goal[n] = steps;
            let row = &graph.landmark_distance[n * LANDMARKS..(n + 1) * LANDMARKS];
            for (best, &d) in self.goal_landmarks.iter_mut().zip(row) {
                *best = best.min(d + steps.length() as f32);
            }
        }

        let goal_node = graph.subgoals() as u32;
        let goal_xy = [(goal % graph.stride) as u32, (goal / graph.stride) as u32];
        graph.direct_subgoals(start, None, &mut self.found);
        if graph.node_of[start] != NONE {
            self.found.push((graph.node_of[start], Steps::default()));
        }
        for i in 0..self.found.len() {
            let (node, steps) = self.found[i];
            let n = node as usize;
            if self.seen[n] != generation || steps.length() < self.g[n].length() {
                self.seen[n] = generation;
                self.g[n] = steps;
                let f = steps.length() + self.heuristic(graph, n, graph.xy[n], goal_xy);
                self.open.push(Entry::new(f, steps, node));
            }
        }

        while let Some(entry) = self.open.pop() {
            let u = entry.node();
            let g = self.g[u];
            if entry.g != g.length().to_bits() {
                continue; // stale: a cheaper route to `u` was found since
            }
            if entry.node() == goal_node as usize {
                return Some(g.length());
            }
            if self.to_goal_seen[u] == generation {
                let ng = g.plus(self.to_goal[u]);
                let goal = goal_node as usize;
                if self.seen[goal] != generation || ng.length() < self.g[goal].length() {
                    self.seen[goal] = generation;
                    self.g[goal] = ng;
                    self.open.push(Entry::new(ng.length(), ng, goal_node));
                }
            }
            let from = graph.xy[u];
            for &v in graph.edges_of(u) {
                let n = v as usize;
                let to = graph.xy[n];
                let ng = g.plus(octile(from, to));
                if self.seen[n] != generation || ng.length() < self.g[n].length() {
                    self.seen[n] = generation;
                    self.g[n] = ng;
                    let h = self.heuristic(graph, n, to, goal_xy);
                    if h.is_finite() {
                        self.open.push(Entry::new(ng.length() + h, ng, v));
                    }
                }
            }
        }
        None
    }
}
