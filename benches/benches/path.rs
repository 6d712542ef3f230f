//! Single-query path benchmarks: the subgoal graph search (what `rampart
//! path` runs) against rampart's plain A* and the `pathfinding` crate's A*, on the
//! 160 Moving AI arena scenarios and on random queries of a generated
//! 512x512 maze with long corridors.
//!
//! Every contender's answers are checked against the others once, outside
//! the timings. `pathfinding` needs `Ord` costs, so it runs on fixed-point
//! lengths (straight 1,000,000, diagonal 1,414,214), exact to 1e-3 on these
//! routes.

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pathfinding::directed::astar::astar;
use rampart_sim::path::{AStar, SubgoalGraph, SubgoalSearch};
use rampart_tests::maze::{Rng, maze, random_queries};

const STRAIGHT: u64 = 1_000_000;
const DIAGONAL: u64 = 1_414_214;

/// A map and the queries asked of it.
struct Case {
    name: &'static str,
    width: u16,
    height: u16,
    walkable: Vec<bool>,
    queries: Vec<(usize, usize)>,
}

/// The Moving AI arena map and its 160 scenarios.
fn arena() -> Case {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/movingai");
    let grid = rampart_sim::content::load_movingai_map(&dir.join("arena.map"))
        .expect("arena.map in shared/testdata");
    let scen = std::fs::read_to_string(dir.join("arena.map.scen"))
        .expect("arena.map.scen in shared/testdata");
    let w = usize::from(grid.width());
    let queries = scen
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<usize> = line
                .split('\t')
                .skip(4)
                .take(4)
                .map(|v| v.parse().expect("coordinate"))
                .collect();
            (f[1] * w + f[0], f[3] * w + f[2])
        })
        .collect();
    Case {
        name: "arena_160_scenarios",
        width: grid.width(),
        height: grid.height(),
        walkable: grid.walkable_mask(),
        queries,
    }
}

/// 100 random queries on the 512x512 maze `rampart path` is timed on.
fn maze_512() -> Case {
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let walkable = maze(512, &mut rng);
    let queries = random_queries(&walkable, 100, &mut rng);
    Case {
        name: "maze_512_100_queries",
        width: 512,
        height: 512,
        walkable,
        queries,
    }
}

/// Legal moves from `u` with fixed-point costs, by rampart's rules: 8
/// neighbours, a diagonal only if both orthogonal cells it passes are open.
fn successors(case: &Case, u: usize) -> impl Iterator<Item = (usize, u64)> + use<> {
    let (w, h) = (usize::from(case.width), usize::from(case.height));
    let (x, y) = (u % w, u / w);
    let open = &case.walkable;
    let e = x + 1 < w && open[u + 1];
    let s = y + 1 < h && open[u + w];
    let west = x > 0 && open[u - 1];
    let n = y > 0 && open[u - w];
    [
        e.then(|| (u + 1, STRAIGHT)),
        s.then(|| (u + w, STRAIGHT)),
        west.then(|| (u - 1, STRAIGHT)),
        n.then(|| (u - w, STRAIGHT)),
        (s && e && open[u + w + 1]).then(|| (u + w + 1, DIAGONAL)),
        (s && west && open[u + w - 1]).then(|| (u + w - 1, DIAGONAL)),
        (n && west && open[u - w - 1]).then(|| (u - w - 1, DIAGONAL)),
        (n && e && open[u - w + 1]).then(|| (u - w + 1, DIAGONAL)),
    ]
    .into_iter()
    .flatten()
}

/// `pathfinding`'s A* with the octile heuristic, in fixed point.
fn pathfinding_length(case: &Case, start: usize, goal: usize) -> Option<u64> {
    let w = usize::from(case.width);
    let (gx, gy) = (goal % w, goal / w);
    let heuristic = |&u: &usize| {
        let (dx, dy) = ((u % w).abs_diff(gx) as u64, (u / w).abs_diff(gy) as u64);
        DIAGONAL * dx.min(dy) + STRAIGHT * dx.abs_diff(dy)
    };
    if !case.walkable[start] || !case.walkable[goal] {
        return None;
    }
    astar(&start, |&u| successors(case, u), heuristic, |&u| u == goal).map(|(_, cost)| cost)
}

/// Checks once that the three contenders agree on every query.
fn assert_same_answers(case: &Case, graph: &SubgoalGraph) {
    let mut search = SubgoalSearch::new(graph);
    let mut plain = AStar::new(case.width, case.height);
    for &(start, goal) in &case.queries {
        let length = search.search(graph, start, goal);
        assert_eq!(
            length,
            plain.search(&case.walkable, start, goal),
            "{start} -> {goal}"
        );
        let theirs = pathfinding_length(case, start, goal).map(|c| c as f64 / STRAIGHT as f64);
        assert_eq!(length.is_some(), theirs.is_some(), "{start} -> {goal}");
        if let (Some(ours), Some(theirs)) = (length, theirs) {
            assert!(
                (ours - theirs).abs() < 1e-3,
                "{start} -> {goal}: {ours} vs {theirs}"
            );
        }
    }
}

fn bench_paths(c: &mut Criterion) {
    for case in [arena(), maze_512()] {
        let graph = SubgoalGraph::new(&case.walkable, case.width, case.height);
        assert_same_answers(&case, &graph);
        let mut group = c.benchmark_group(format!("path/{}", case.name));
        if case.walkable.len() > 100_000 {
            group.sample_size(10);
        }
        let mut search = SubgoalSearch::new(&graph);
        group.bench_function("rampart_subgoal", |b| {
            b.iter(|| {
                let mut total = 0.0;
                for &(start, goal) in &case.queries {
                    total += search.search(&graph, black_box(start), goal).unwrap_or(0.0);
                }
                black_box(total)
            })
        });
        let mut plain = AStar::new(case.width, case.height);
        group.bench_function("rampart_astar", |b| {
            b.iter(|| {
                let mut total = 0.0;
                for &(start, goal) in &case.queries {
                    total += plain
                        .search(black_box(&case.walkable), start, goal)
                        .unwrap_or(0.0);
                }
                black_box(total)
            })
        });
        group.bench_function("pathfinding_astar", |b| {
            b.iter(|| {
                let mut total = 0;
                for &(start, goal) in &case.queries {
                    total += pathfinding_length(&case, black_box(start), goal).unwrap_or(0);
                }
                black_box(total)
            })
        });
        group.finish();
    }
    // Building the subgoal graph and its landmarks is paid once per map by
    // `rampart path`.
    let case = maze_512();
    let mut group = c.benchmark_group("path");
    group.sample_size(10);
    group.bench_with_input(
        BenchmarkId::new("subgoal_graph_new", "maze_512"),
        &case,
        |b, case| b.iter(|| SubgoalGraph::new(black_box(&case.walkable), case.width, case.height)),
    );
    group.finish();
}

criterion_group!(benches, bench_paths);
criterion_main!(benches);
