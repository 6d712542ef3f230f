//! End-to-end tests of `rampart path`: the real binary against the Moving AI
//! benchmark's published optimal lengths, and against an independent
//! Dijkstra on a large generated maze.
#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use rampart_tests::maze::{Rng, maze, movingai_text};
use rampart_tests::{rampart_bin, shared_dir};

/// Runs `rampart path --map <map>` with `input` on standard input.
fn run_path(map: &Path, input: &str) -> Output {
    rampart_tests::run_path(&rampart_bin(), map, input).unwrap()
}

fn stdout_lines(output: &Output) -> Vec<String> {
    assert!(
        output.status.success(),
        "rampart path failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn arena_scenarios_match_published_optimal_lengths() {
    let dir = shared_dir().join("testdata/movingai");
    let scen = std::fs::read_to_string(dir.join("arena.map.scen")).unwrap();
    let mut input = String::new();
    let mut expected = Vec::new();
    for line in scen.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 9, "bad scenario line {line:?}");
        input.push_str(&fields[4..8].join(" "));
        input.push('\n');
        expected.push(fields[8].parse::<f64>().unwrap());
    }
    assert_eq!(expected.len(), 160);

    let lines = stdout_lines(&run_path(&dir.join("arena.map"), &input));
    assert_eq!(lines.len(), expected.len());
    for (i, (line, optimal)) in lines.iter().zip(&expected).enumerate() {
        let cost: f64 = line
            .parse()
            .unwrap_or_else(|_| panic!("scenario {}: got {line:?}", i + 1));
        assert!(
            (cost - optimal).abs() < 1e-3,
            "scenario {}: got {cost}, optimal {optimal}",
            i + 1
        );
    }
}

/// Plain Dijkstra with exact `f64` costs from `start` to every cell, written
/// independently of rampart's pathfinding: 8 moves, cost 1 or sqrt(2), a
/// diagonal only when both orthogonal cells it passes are open.
fn dijkstra(open: &[bool], size: usize, start: usize) -> Vec<f64> {
    let mut dist = vec![f64::INFINITY; open.len()];
    let mut heap = BinaryHeap::new();
    dist[start] = 0.0;
    // Non-negative f64s order like their bit patterns.
    heap.push(Reverse((0f64.to_bits(), start)));
    while let Some(Reverse((bits, u))) = heap.pop() {
        let d = f64::from_bits(bits);
        if d > dist[u] {
            continue;
        }
        let (x, y) = ((u % size) as isize, (u / size) as isize);
        let free = |x: isize, y: isize| {
            x >= 0
                && y >= 0
                && (x as usize) < size
                && (y as usize) < size
                && open[y as usize * size + x as usize]
        };
        for dy in -1..=1 {
            for dx in -1..=1 {
                if (dx, dy) == (0, 0) || !free(x + dx, y + dy) {
                    continue;
                }
                let diagonal = dx != 0 && dy != 0;
                if diagonal && !(free(x + dx, y) && free(x, y + dy)) {
                    continue;
                }
                let v = (y + dy) as usize * size + (x + dx) as usize;
                let nd = d + if diagonal {
                    std::f64::consts::SQRT_2
                } else {
                    1.0
                };
                if nd < dist[v] {
                    dist[v] = nd;
                    heap.push(Reverse((nd.to_bits(), v)));
                }
            }
        }
    }
    dist
}

/// A fresh path under the system temp dir, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        Self(std::env::temp_dir().join(format!("rampart-{name}-{}-{nanos}", std::process::id())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn large_maze_matches_independent_dijkstra() {
    const SIZE: usize = 512;
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    let open = maze(SIZE, &mut rng);

    let map = TempFile::new("maze.map");
    std::fs::write(&map.0, movingai_text(&open, SIZE)).unwrap();

    let open_cells: Vec<usize> = (0..open.len()).filter(|&i| open[i]).collect();
    let blocked = (0..open.len()).find(|&i| !open[i]).unwrap();
    let mut input = String::new();
    let mut expected: Vec<Option<f64>> = Vec::new();
    // 10 starts x 500 goals: one Dijkstra per start answers 500 queries, and
    // the 5,000 make `rampart path` answer in several parallel batches.
    for _ in 0..10 {
        let start = open_cells[rng.below(open_cells.len())];
        let dist = dijkstra(&open, SIZE, start);
        for _ in 0..500 {
            let goal = open_cells[rng.below(open_cells.len())];
            input.push_str(&format!(
                "{} {} {} {}\n",
                start % SIZE,
                start / SIZE,
                goal % SIZE,
                goal / SIZE
            ));
            expected.push(dist[goal].is_finite().then_some(dist[goal]));
        }
    }
    // Blocked and off-map ends are unreachable, not errors.
    let (bx, by) = (blocked % SIZE, blocked / SIZE);
    input.push_str(&format!(
        "{bx} {by} 1 1\n1 1 {bx} {by}\n-1 0 1 1\n1 1 {SIZE} 0\n1 1 0 99999\n"
    ));
    expected.extend([None; 5]);

    let lines = stdout_lines(&run_path(&map.0, &input));
    assert_eq!(lines.len(), expected.len());
    let mut answered = 0;
    let mut diagonal_routes = 0;
    for (i, (line, want)) in lines.iter().zip(&expected).enumerate() {
        match want {
            None => assert_eq!(line, "unreachable", "query {}", i + 1),
            Some(want) => {
                let got: f64 = line
                    .parse()
                    .unwrap_or_else(|_| panic!("query {}: got {line:?}, want {want}", i + 1));
                assert!(
                    (got - want).abs() < 1e-4,
                    "query {}: got {got}, want {want}",
                    i + 1
                );
                answered += 1;
                diagonal_routes += usize::from(got.fract() > 1e-6);
            }
        }
    }
    // The generated maze is connected, so the 5,000 random queries all have routes.
    assert_eq!(answered, 5000);
    // The rooms make diagonal steps (and the corner rule) matter.
    assert!(
        diagonal_routes > 1000,
        "only {diagonal_routes} routes use diagonals"
    );
}

/// A person typing queries gets each answer before typing the next: the
/// batching waits for no more input than is already there.
#[test]
fn answers_each_query_as_it_arrives() {
    use std::io::{BufRead, BufReader};

    let map = shared_dir().join("testdata/movingai/arena.map");
    let mut child = Command::new(rampart_bin())
        .args(["path", "--map"])
        .arg(&map)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // Lines arrive through a channel so a server that waits for the end of
    // input fails the test instead of hanging it.
    let (lines, answers) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = lines.send(line.unwrap());
        }
    });
    for (query, want) in [("1 11 1 12\n", "1.00000"), ("1 11 2 12\n", "1.41421")] {
        stdin.write_all(query.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let answer = answers.recv_timeout(std::time::Duration::from_secs(30));
        if answer.is_err() {
            let _ = child.kill();
        }
        assert_eq!(answer.as_deref(), Ok(want), "answer to {query:?}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn malformed_query_names_the_line_and_fails() {
    let map = shared_dir().join("testdata/movingai/arena.map");
    let output = run_path(&map, "1 11 1 12\n\n1 2 three 4\n1 11 1 12\n");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 3"),
        "stderr does not name the line: {stderr}"
    );
    assert!(
        stderr.contains("three"),
        "stderr does not show the bad field: {stderr}"
    );
}

#[test]
fn missing_map_is_an_error() {
    let output = run_path(Path::new("/nonexistent/rampart/no.map"), "");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no.map"));
}
