//! Unit tests for the flow field, A* and the subgoal graph search: the Moving AI
//! oracle, the movement rules, unreachable cells, goal sets, determinism.
#![allow(clippy::unwrap_used)]

use super::*;

/// `arena.map` from the shared Moving AI sample, as (width, height, walkable).
fn arena() -> (u16, u16, Vec<bool>) {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/movingai"
    );
    let grid = crate::content::load_movingai_map(std::path::Path::new(&format!("{dir}/arena.map")))
        .unwrap();
    (grid.width(), grid.height(), grid.walkable_mask())
}

/// Scenarios of `arena.map.scen` as (start, goal, optimal length) with
/// start and goal as row-major indices.
fn arena_scenarios(width: u16) -> Vec<(usize, usize, f64)> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/testdata/movingai"
    );
    let text = std::fs::read_to_string(format!("{dir}/arena.map.scen")).unwrap();
    let w = usize::from(width);
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let n = |i: usize| f[i].parse::<usize>().unwrap();
            (n(5) * w + n(4), n(7) * w + n(6), f[8].parse().unwrap())
        })
        .collect()
}

/// Checks every cell of `field` against the movement rules: goals have
/// distance 0 and no step, every other reachable cell steps legally to a
/// neighbour exactly one edge cost closer, unreachable cells have no step.
fn assert_consistent(field: &FlowField, walkable: &[bool], goals: &[usize]) {
    let (w, h) = (field.width(), field.height());
    for i in 0..walkable.len() {
        match field.distance(i) {
            None => {
                assert!(
                    field.next(i).is_none(),
                    "unreachable cell {i} has a next step"
                );
                assert!(!field.reachable(i));
                assert!(field.route_length(i).is_none());
            }
            Some(0) => {
                assert!(goals.contains(&i), "cell {i} at distance 0 is not a goal");
                assert!(field.next(i).is_none());
            }
            Some(d) => {
                let n = field.next(i).unwrap();
                let m = MOVES
                    .iter()
                    .copied()
                    .find(|&m| step(walkable, w, h, i, m) == Some(n));
                let m = m.unwrap_or_else(|| panic!("step {i} -> {n} is not a legal move"));
                let cost = if m.diagonal() {
                    DIAGONAL_COST
                } else {
                    STRAIGHT_COST
                };
                assert_eq!(
                    field.distance(n),
                    Some(d - cost),
                    "cell {i} steps to {n} off the shortest route"
                );
            }
        }
    }
}

/// Tiny deterministic PRNG (xorshift64*) so tests need no extra crates.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn random_map(rng: &mut Rng, width: u16, height: u16, blocked_percent: usize) -> Vec<bool> {
    (0..usize::from(width) * usize::from(height))
        .map(|_| rng.below(100) >= blocked_percent)
        .collect()
}

#[test]
fn flow_field_matches_moving_ai_oracle() {
    let (width, height, walkable) = arena();
    let scenarios = arena_scenarios(width);
    assert_eq!(scenarios.len(), 160);
    let mut field = FlowField::new(width, height);
    for &(start, goal, optimal) in &scenarios {
        field.compute(&walkable, &[goal]);
        let length = field.route_length(start).unwrap();
        assert!(
            (length - optimal).abs() < 1e-3,
            "{start} -> {goal}: got {length}, optimal {optimal}"
        );
        assert_consistent(&field, &walkable, &[goal]);
    }
}

#[test]
fn astar_matches_moving_ai_oracle() {
    let (width, height, walkable) = arena();
    let mut astar = AStar::new(width, height);
    for (start, goal, optimal) in arena_scenarios(width) {
        let length = astar.search(&walkable, start, goal).unwrap();
        assert!(
            (length - optimal).abs() < 1e-3,
            "{start} -> {goal}: got {length}, optimal {optimal}"
        );
        let one_off = shortest_path_length(&walkable, width, height, start, goal).unwrap();
        assert_eq!(one_off, length);
    }
}

#[test]
fn subgoal_search_matches_moving_ai_oracle_and_astar() {
    let (width, height, walkable) = arena();
    let graph = SubgoalGraph::new(&walkable, width, height);
    assert!(graph.subgoals() > 0 && graph.edges() > 0);
    let mut search = SubgoalSearch::new(&graph);
    let mut astar = AStar::new(width, height);
    for (start, goal, optimal) in arena_scenarios(width) {
        let length = search.search(&graph, start, goal).unwrap();
        assert!(
            (length - optimal).abs() < 1e-3,
            "{start} -> {goal}: got {length}, optimal {optimal}"
        );
        assert_eq!(Some(length), astar.search(&walkable, start, goal));
        // Reversed queries connect other subgoals to the same length.
        assert_eq!(search.search(&graph, goal, start), Some(length));
    }
}

/// The subgoal graph gives bit-identical answers to A* on random maps of
/// every shape: single rows and columns, empty maps (no subgoal at all, so
/// every answer is a direct h-reachable route), open and dense maps.
#[test]
fn subgoal_search_agrees_with_astar_on_random_maps() {
    let mut rng = Rng(0x1A3B_5C7D);
    let shapes: [(u16, u16); 8] = [
        (1, 1),
        (1, 40),
        (40, 1),
        (61, 9),
        (62, 63),
        (64, 64),
        (70, 130),
        (129, 66),
    ];
    let mut answered = 0;
    for (width, height) in shapes {
        for blocked_percent in [0, 10, 25, 40] {
            let walkable = random_map(&mut rng, width, height, blocked_percent);
            let graph = SubgoalGraph::new(&walkable, width, height);
            let mut search = SubgoalSearch::new(&graph);
            let mut astar = AStar::new(width, height);
            for _ in 0..150 {
                let (start, goal) = (rng.below(walkable.len()), rng.below(walkable.len()));
                let want = astar.search(&walkable, start, goal);
                assert_eq!(
                    search.search(&graph, start, goal),
                    want,
                    "{width}x{height} {blocked_percent}%: {start} -> {goal}"
                );
                answered += usize::from(want.is_some_and(|l| l > 0.0));
            }
        }
    }
    assert!(answered > 2000, "only {answered} queries had routes");
}

/// Every start to every goal on small dense maps: the cases where subgoals
/// sit next to walls, map edges and each other, and where start or goal is
/// itself a subgoal.
#[test]
fn subgoal_search_agrees_with_astar_on_every_pair() {
    let mut rng = Rng(0xC0FFEE);
    for round in 0..40 {
        let (width, height) = (5 + (round % 9) as u16, 4 + (round % 7) as u16);
        let walkable = random_map(&mut rng, width, height, 10 + round);
        let graph = SubgoalGraph::new(&walkable, width, height);
        let mut search = SubgoalSearch::new(&graph);
        let mut astar = AStar::new(width, height);
        for start in 0..walkable.len() {
            for goal in 0..walkable.len() {
                let want = astar.search(&walkable, start, goal);
                assert_eq!(
                    search.search(&graph, start, goal),
                    want,
                    "round {round} {width}x{height}: {start} -> {goal}"
                );
            }
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

    /// Any map (walls drawn at random densities, mazes' corridors among
    /// them) and any query: the subgoal graph answers exactly what A* does.
    #[test]
    fn subgoal_search_equals_astar(
        width in 1u16..24,
        height in 1u16..24,
        cells in proptest::collection::vec(proptest::prelude::any::<u8>(), 24 * 24),
        density in 0u8..=160,
        queries in proptest::collection::vec((0usize..24 * 24, 0usize..24 * 24), 1..40),
    ) {
        let len = usize::from(width) * usize::from(height);
        let walkable: Vec<bool> = cells[..len].iter().map(|&c| c >= density).collect();
        let graph = SubgoalGraph::new(&walkable, width, height);
        let mut search = SubgoalSearch::new(&graph);
        let mut astar = AStar::new(width, height);
        for (start, goal) in queries {
            let (start, goal) = (start % len, goal % len);
            proptest::prop_assert_eq!(
                search.search(&graph, start, goal),
                astar.search(&walkable, start, goal),
                "{}x{}: {} -> {}", width, height, start, goal
            );
        }
    }
}

#[test]
fn subgoal_search_rules_and_bad_input() {
    // The diagonal (0,0) -> (1,1) is forbidden with either side blocked.
    #[rustfmt::skip]
    let walkable = [
        true,  true, true,
        false, true, true,
        true,  true, true,
    ];
    let graph = SubgoalGraph::new(&walkable, 3, 3);
    let mut search = SubgoalSearch::new(&graph);
    assert_eq!(search.search(&graph, 0, 4), Some(2.0));
    assert_eq!(search.search(&graph, 0, 8), Some(2.0 + SQRT_2));
    assert_eq!(search.search(&graph, 6, 2), Some(2.0 + SQRT_2));
    // Blocked ends, off-map ends and the start itself.
    assert_eq!(search.search(&graph, 3, 0), None);
    assert_eq!(search.search(&graph, 0, 3), None);
    assert_eq!(search.search(&graph, 0, 9), None);
    assert_eq!(search.search(&graph, usize::MAX, 0), None);
    assert_eq!(search.search(&graph, 5, 5), Some(0.0));
    // A short mask counts as blocked beyond its end.
    let short = SubgoalGraph::new(&walkable[..4], 3, 3);
    assert_eq!(SubgoalSearch::new(&short).search(&short, 0, 8), None);
    // Degenerate sizes do not panic.
    let empty = SubgoalGraph::new(&[], 0, 0);
    assert_eq!(SubgoalSearch::new(&empty).search(&empty, 0, 0), None);
    let walled = SubgoalGraph::new(&[false; 6], 3, 2);
    assert_eq!(SubgoalSearch::new(&walled).search(&walled, 0, 5), None);
}

#[test]
fn no_corner_cutting() {
    // S at (0,0), goal at (1,1); the wall at (1,0) and (0,1) forbids the
    // diagonal, and there is no other way round.
    #[rustfmt::skip]
    let walkable = [
        true,  false, true,
        false, true,  true,
        true,  true,  true,
    ];
    let mut field = FlowField::new(3, 3);
    field.compute(&walkable, &[4]);
    assert!(!field.reachable(0));
    assert_eq!(shortest_path_length(&walkable, 3, 3, 0, 4), None);

    // One wall beside the diagonal is enough to forbid it: (0,0) -> (1,1)
    // must go round through (1,0), cost 2 instead of sqrt(2).
    #[rustfmt::skip]
    let walkable = [
        true,  true, true,
        false, true, true,
        true,  true, true,
    ];
    field.compute(&walkable, &[4]);
    assert_eq!(field.next(0), Some(1));
    assert_eq!(field.distance(0), Some(2 * STRAIGHT_COST));
    assert_eq!(field.route_length(0), Some(2.0));
    assert_eq!(shortest_path_length(&walkable, 3, 3, 0, 4), Some(2.0));
    assert_consistent(&field, &walkable, &[4]);

    // With both sides open the diagonal is taken.
    let walkable = [true; 9];
    field.compute(&walkable, &[4]);
    assert_eq!(field.next(0), Some(4));
    assert_eq!(field.distance(0), Some(DIAGONAL_COST));
    assert_eq!(field.route_length(0), Some(SQRT_2));
}

#[test]
fn random_maps_are_consistent_and_agree_with_astar() {
    let mut rng = Rng(0x5EED);
    for round in 0..20 {
        let (width, height) = (17 + round as u16, 23);
        let walkable = random_map(&mut rng, width, height, 30);
        let len = walkable.len();
        let goal = rng.below(len);
        let mut field = FlowField::new(width, height);
        field.compute(&walkable, &[goal]);
        assert_consistent(&field, &walkable, &[goal]);
        let mut astar = AStar::new(width, height);
        for start in 0..len {
            let exact = astar.search(&walkable, start, goal);
            let routed = field.route_length(start);
            match (exact, routed) {
                (None, None) => {}
                (Some(a), Some(b)) => {
                    assert!((a - b).abs() < 1e-9, "{start} -> {goal}: A* {a}, field {b}")
                }
                other => {
                    panic!("{start} -> {goal}: A* and field disagree on reachability: {other:?}")
                }
            }
        }
    }
}

#[test]
fn unreachable_cells_and_bad_input() {
    // A walled-in pocket at the right; goal on the left.
    #[rustfmt::skip]
    let walkable = [
        true, true, false, true,
        true, true, false, true,
        true, true, false, false,
    ];
    let mut field = FlowField::new(4, 3);
    field.compute(&walkable, &[0]);
    assert_consistent(&field, &walkable, &[0]);
    for i in [3, 7] {
        assert!(!field.reachable(i));
        assert_eq!(field.distance(i), None);
        assert_eq!(field.next(i), None);
        assert_eq!(field.route_length(i), None);
    }
    // Blocked cells are unreachable too.
    assert!(!field.reachable(2));
    // The goal itself: distance 0, nowhere to go.
    assert_eq!(field.distance(0), Some(0));
    assert_eq!(field.next(0), None);
    assert_eq!(field.route_length(0), Some(0.0));
    // Off the map.
    assert_eq!(field.distance(12), None);
    assert_eq!(field.next(usize::MAX), None);
    assert!(!field.reachable(100));

    // Goals off the map or on blocked cells are ignored; so is a short mask.
    field.compute(&walkable, &[99, 2]);
    assert!((0..12).all(|i| !field.reachable(i)));
    field.compute(&walkable[..4], &[0]);
    assert!(field.reachable(1) && !field.reachable(4));
    field.compute(&walkable, &[]);
    assert!((0..12).all(|i| !field.reachable(i)));

    assert_eq!(shortest_path_length(&walkable, 4, 3, 0, 3), None);
    assert_eq!(shortest_path_length(&walkable, 4, 3, 0, 2), None);
    assert_eq!(shortest_path_length(&walkable, 4, 3, 0, 12), None);
    assert_eq!(shortest_path_length(&walkable, 4, 3, 0, 0), Some(0.0));

    // Degenerate sizes do not panic.
    let mut empty = FlowField::new(0, 0);
    empty.compute(&[], &[0]);
    assert!(!empty.reachable(0));
}

#[test]
fn multiple_goals_take_the_nearest() {
    let mut rng = Rng(42);
    let (width, height) = (40, 30);
    let walkable = random_map(&mut rng, width, height, 25);
    let goals: Vec<usize> = (0..4)
        .map(|_| rng.below(walkable.len()))
        .filter(|&g| walkable[g])
        .collect();
    assert!(goals.len() >= 2);
    let mut all = FlowField::new(width, height);
    all.compute(&walkable, &goals);
    assert_consistent(&all, &walkable, &goals);
    let singles: Vec<FlowField> = goals
        .iter()
        .map(|&g| {
            let mut f = FlowField::new(width, height);
            f.compute(&walkable, &[g]);
            f
        })
        .collect();
    for i in 0..walkable.len() {
        let nearest = singles.iter().filter_map(|f| f.distance(i)).min();
        assert_eq!(all.distance(i), nearest, "cell {i}");
    }
    // Duplicate goals change nothing.
    let mut doubled = goals.clone();
    doubled.extend_from_slice(&goals);
    let mut again = FlowField::new(width, height);
    again.compute(&walkable, &doubled);
    for i in 0..walkable.len() {
        assert_eq!(again.distance(i), all.distance(i));
        assert_eq!(again.next(i), all.next(i));
    }
}

#[test]
fn deterministic_and_reusable() {
    let mut rng = Rng(7);
    let (width, height) = (50, 50);
    let a = random_map(&mut rng, width, height, 20);
    let b = random_map(&mut rng, width, height, 35);
    let goal = 25 * 50 + 25;
    let (mut a2, mut b2) = (a.clone(), b.clone());
    a2[goal] = true;
    b2[goal] = true;

    let mut fresh = FlowField::new(width, height);
    fresh.compute(&a2, &[goal]);
    let snapshot = fresh.clone();

    // A field reused across different maps gives the same answers as a fresh one.
    let mut reused = FlowField::new(width, height);
    reused.compute(&b2, &[goal, 0]);
    reused.compute(&a2, &[goal]);
    for _ in 0..3 {
        fresh.compute(&a2, &[goal]);
    }
    for i in 0..a2.len() {
        assert_eq!(reused.next(i), snapshot.next(i));
        assert_eq!(reused.distance(i), snapshot.distance(i));
        assert_eq!(fresh.next(i), snapshot.next(i));
    }
}

#[test]
fn many_cells_at_one_distance_grow_the_queue() {
    // Every third row is a goal row on an open map: a third of the cells are
    // goals (distance 0) and all others are exactly one straight step away,
    // far more than a bucket's initial room, so the queue grows both while
    // seeding goals and while relaxing.
    let (width, height) = (40u16, 40u16);
    let walkable = vec![true; 1600];
    let goals: Vec<usize> = (0..1600).filter(|i| (i / 40) % 3 == 0).collect();
    let mut field = FlowField::new(width, height);
    field.compute(&walkable, &goals);
    assert_consistent(&field, &walkable, &goals);
    assert!(
        (0..1600)
            .all(|i| field.distance(i) == Some(if goals.contains(&i) { 0 } else { STRAIGHT_COST }))
    );
    // Afterwards an ordinary computation still agrees with A*.
    field.compute(&walkable, &[0]);
    assert_consistent(&field, &walkable, &[0]);
    let exact = shortest_path_length(&walkable, width, height, 1599, 0).unwrap();
    assert!((field.route_length(1599).unwrap() - exact).abs() < 1e-9);
}
