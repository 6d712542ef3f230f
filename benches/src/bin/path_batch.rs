//! `path_batch`: wall time of `rampart path` answering a file of queries on a
//! generated maze, for one or more builds of the binary in the same sitting,
//! with a check that every build prints the same answers.
//!
//! It writes a `--size` square maze (long corridors, loops, rooms; see
//! `rampart_tests::maze`) and `--queries` random queries between its open
//! cells into a temporary directory, then runs each binary `--rounds` times
//! in turn and prints the median wall time of each and its ratio to the
//! first.
//!
//! ```text
//! cargo build --release -p rampart-server -p rampart-benches
//! target/release/path_batch --bin /tmp/rampart-old --bin target/release/rampart
//! ```

use std::path::{Path, PathBuf};

use std::time::Instant;

use clap::Parser;
use rampart_tests::maze::{Rng, maze, movingai_text, random_queries};

/// Times `rampart path` builds on one batch of maze queries.
#[derive(Parser)]
struct Args {
    /// `rampart` binaries to compare, the first being the baseline; by
    /// default the one built beside this tool.
    #[arg(long = "bin")]
    bins: Vec<PathBuf>,
    /// Maze side in cells.
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// Queries in the batch.
    #[arg(long, default_value_t = 8000)]
    queries: usize,
    /// Runs per binary; the median is reported.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seed of the maze and the queries.
    #[arg(long, default_value_t = 0x0123_4567_89AB_CDEF)]
    seed: u64,
    /// Keep `maze.map` and `queries.txt` in this directory (by default they
    /// go to a temporary one, removed afterwards), to time or profile
    /// `rampart path` by hand.
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> Result<(), String> {
    let args = Args::parse();
    if args.size < 32 || args.rounds == 0 {
        return Err("--size must be at least 32 and --rounds at least 1".into());
    }
    let bins = if args.bins.is_empty() {
        vec![rampart_tests::rampart_bin()]
    } else {
        args.bins.clone()
    };
    let mut rng = Rng(args.seed);
    let open = maze(args.size, &mut rng);
    let dir = args.dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("rampart-path-batch-{}", std::process::id()))
    });
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let map = dir.join("maze.map");
    std::fs::write(&map, movingai_text(&open, args.size))
        .map_err(|e| format!("writing {}: {e}", map.display()))?;
    let mut input = String::new();
    for (start, goal) in random_queries(&open, args.queries, &mut rng) {
        let (size, s, g) = (args.size, start, goal);
        input.push_str(&format!(
            "{} {} {} {}\n",
            s % size,
            s / size,
            g % size,
            g / size
        ));
    }
    let queries = dir.join("queries.txt");
    std::fs::write(&queries, &input).map_err(|e| format!("writing {}: {e}", queries.display()))?;
    let result = compare(&bins, &map, &input, args.rounds);
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let medians = result?;
    println!(
        "{} queries on a {size}x{size} maze, median of {} runs:",
        args.queries,
        args.rounds,
        size = args.size
    );
    for (bin, median) in bins.iter().zip(&medians) {
        println!(
            "{:>10.3} s  {:>6.2}x  {}",
            median,
            medians[0] / median,
            bin.display()
        );
    }
    Ok(())
}

/// Median wall time in seconds of each binary, runs interleaved so a noisy
/// neighbour slows all builds alike; fails if two builds disagree.
fn compare(bins: &[PathBuf], map: &Path, input: &str, rounds: usize) -> Result<Vec<f64>, String> {
    let mut times = vec![Vec::new(); bins.len()];
    let mut reference: Option<Vec<u8>> = None;
    for _ in 0..rounds {
        for (bin, times) in bins.iter().zip(&mut times) {
            let started = Instant::now();
            let output = run(bin, map, input)?;
            times.push(started.elapsed().as_secs_f64());
            match &reference {
                None => reference = Some(output),
                Some(reference) if *reference != output => {
                    return Err(format!("{} answers differently", bin.display()));
                }
                Some(_) => {}
            }
        }
    }
    Ok(times
        .into_iter()
        .map(|mut t| {
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        })
        .collect())
}

/// Standard output of `bin path --map map` fed `input`.
fn run(bin: &Path, map: &Path, input: &str) -> Result<Vec<u8>, String> {
    let output = rampart_tests::run_path(bin, map, input)
        .map_err(|e| format!("running {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            bin.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(output.stdout)
}
