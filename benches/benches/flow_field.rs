//! Flow-field benchmarks, each beside the `pathfinding` crate solving the
//! same problem, so regressions and the gap to a generic library are
//! visible. Single-query searches are in the `path` benchmark.
//!
//! Flow fields: `flow_field/<size>` compares [`FlowField::compute`] with
//! `pathfinding::directed::dijkstra::dijkstra_all` from the goal, both with
//! integer costs 70/99 and no corner cutting, on a 50x50 map with exactly 500
//! blocked cells (a dense tower maze) and on 256x256 and 1024x1024 maps with
//! about 15% obstacles.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pathfinding::directed::dijkstra::dijkstra_all;
use rampart_sim::path::{DIAGONAL_COST, FlowField, STRAIGHT_COST};

/// xorshift64*: deterministic maps without extra dependencies.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}

/// A benchmark map: walkability and the goal cell.
struct Map {
    width: u16,
    height: u16,
    walkable: Vec<bool>,
    goal: usize,
}

/// `size` x `size`, exactly `blocked` cells blocked at pseudo-random places,
/// never the goal (centre), and never one that would cut the far corner
/// (0, 0) off from the goal, the way a tower maze must leave a route.
fn map_with_blocked(size: u16, blocked: usize, seed: u64) -> Map {
    let n = usize::from(size) * usize::from(size);
    let goal = n / 2 + usize::from(size) / 2;
    let mut walkable = vec![true; n];
    let mut rng = Rng(seed);
    let mut field = FlowField::new(size, size);
    let mut placed = 0;
    while placed < blocked {
        let cell = rng.below(n);
        if cell == goal || cell == 0 || !walkable[cell] {
            continue;
        }
        walkable[cell] = false;
        field.compute(&walkable, &[goal]);
        if field.reachable(0) {
            placed += 1;
        } else {
            walkable[cell] = true;
        }
    }
    Map {
        width: size,
        height: size,
        walkable,
        goal,
    }
}

/// `size` x `size` with each cell blocked with probability `percent`%, the
/// goal (centre) kept open.
fn map_with_density(size: u16, percent: usize, seed: u64) -> Map {
    let n = usize::from(size) * usize::from(size);
    let goal = n / 2 + usize::from(size) / 2;
    let mut rng = Rng(seed);
    let mut walkable: Vec<bool> = (0..n).map(|_| rng.below(100) >= percent).collect();
    walkable[goal] = true;
    Map {
        width: size,
        height: size,
        walkable,
        goal,
    }
}

/// Legal moves from `u` with integer costs, by the same rules as rampart:
/// 8 neighbours, a diagonal only if both orthogonal cells it passes are open.
fn successors(map: &Map, u: usize) -> impl Iterator<Item = (usize, u32)> + use<> {
    let (w, h) = (usize::from(map.width), usize::from(map.height));
    let (x, y) = (u % w, u / w);
    let open = &map.walkable;
    let e = x + 1 < w && open[u + 1];
    let s = y + 1 < h && open[u + w];
    let west = x > 0 && open[u - 1];
    let n = y > 0 && open[u - w];
    let (sc, dc) = (STRAIGHT_COST, DIAGONAL_COST);
    [
        e.then(|| (u + 1, sc)),
        s.then(|| (u + w, sc)),
        west.then(|| (u - 1, sc)),
        n.then(|| (u - w, sc)),
        (s && e && open[u + w + 1]).then(|| (u + w + 1, dc)),
        (s && west && open[u + w - 1]).then(|| (u + w - 1, dc)),
        (n && west && open[u - w - 1]).then(|| (u - w - 1, dc)),
        (n && e && open[u - w + 1]).then(|| (u - w + 1, dc)),
    ]
    .into_iter()
    .flatten()
}

/// Checks once, outside the timings, that both contenders solve the same
/// problem: identical distances for every cell.
fn assert_same_answers(map: &Map) {
    let mut field = FlowField::new(map.width, map.height);
    field.compute(&map.walkable, &[map.goal]);
    let reference = dijkstra_all(&map.goal, |&u| successors(map, u));
    for i in 0..map.walkable.len() {
        let theirs = if i == map.goal {
            Some(0)
        } else {
            reference.get(&i).map(|&(_, cost)| cost)
        };
        assert_eq!(field.distance(i), theirs, "cell {i}");
    }
}

fn bench_flow_fields(c: &mut Criterion) {
    let maps = [
        ("50x50", map_with_blocked(50, 500, 0x5EED_0050)),
        ("256x256", map_with_density(256, 15, 0x5EED_0256)),
        ("1024x1024", map_with_density(1024, 15, 0x5EED_1024)),
    ];
    for (name, map) in &maps {
        assert_same_answers(map);
        let mut group = c.benchmark_group(format!("flow_field/{name}"));
        if map.walkable.len() > 100_000 {
            group.sample_size(10);
        }
        let mut field = FlowField::new(map.width, map.height);
        group.bench_function("rampart", |b| {
            b.iter(|| {
                field.compute(black_box(&map.walkable), black_box(&[map.goal]));
                black_box(field.distance(0))
            })
        });
        group.bench_function("pathfinding_dijkstra_all", |b| {
            b.iter(|| black_box(dijkstra_all(black_box(&map.goal), |&u| successors(map, u))).len())
        });
        group.finish();
    }
}

criterion_group!(benches, bench_flow_fields);
criterion_main!(benches);
