//! `rampart path`: batch shortest-path queries on a map file.
//!
//! Designers and tests use it to check map layouts and to validate the
//! pathfinding against external benchmarks: it reads `sx sy gx gy` queries
//! from standard input and prints each optimal route cost (straight step 1,
//! diagonal sqrt(2), no corner cutting) with five decimals, or `unreachable`.
//!
//! Queries are answered on a subgoal graph with landmarks, built once per
//! map (about a tenth of a second for a 512x512 maze), in batches spread
//! over every core: a batch is whatever standard input has buffered, so a file of
//! thousands of queries is answered in parallel while a person typing one
//! query at a time still gets each answer at once.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rampart_sim::content::load_movingai_map;
use rampart_sim::path::{SubgoalGraph, SubgoalSearch};
use rayon::prelude::*;

/// Arguments of `rampart path`.
#[derive(Args, Debug)]
pub struct PathArgs {
    /// Map file in the Moving AI `.map` format (`type octile`, `height`,
    /// `width`, `map`, then one row of tiles per line).
    #[arg(long, value_name = "FILE")]
    pub map: PathBuf,
}

/// Queries answered together at most: enough to keep every core busy, few
/// enough that answers start flowing before a long input has been read.
const MAX_BATCH: usize = 4096;

/// Answers every query on standard input, one output line per query line,
/// so results can be pasted beside the queries; blank lines are skipped.
pub fn run(args: PathArgs) -> anyhow::Result<ExitCode> {
    let grid = load_movingai_map(&args.map)?;
    let grid = SubgoalGraph::new(&grid.walkable_mask(), grid.width(), grid.height());
    let mut input = BufReader::with_capacity(1 << 16, std::io::stdin().lock());
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut batch = Vec::new();
    let mut line = String::new();
    let mut number = 0;
    loop {
        line.clear();
        number += 1;
        let read = input
            .read_line(&mut line)
            .with_context(|| format!("reading standard input line {number}"))?;
        if read > 0 && !line.trim().is_empty() {
            match parse_query(&line) {
                Ok(query) => batch.push(query),
                Err(error) => {
                    // Answer what came before, as if read one by one.
                    answer(&grid, &batch, &mut out)?;
                    let line = line.trim_end();
                    return Err(error.context(format!("standard input line {number}: {line:?}")));
                }
            }
        }
        // Answer before blocking for more input, so interactive use gets
        // each answer as soon as its line is in.
        if read == 0 || input.buffer().is_empty() || batch.len() == MAX_BATCH {
            answer(&grid, &batch, &mut out)?;
            batch.clear();
        }
        if read == 0 {
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// Answers `queries` in parallel and writes their lengths in order.
fn answer(grid: &SubgoalGraph, queries: &[[i64; 4]], out: &mut impl Write) -> anyhow::Result<()> {
    if queries.is_empty() {
        return Ok(());
    }
    let (width, height) = (i64::from(grid.width()), i64::from(grid.height()));
    let cell = |x: i64, y: i64| {
        (x >= 0 && y >= 0 && x < width && y < height).then(|| (y * width + x) as usize)
    };
    // One searcher per chunk: its buffers are as large as the map, so it is
    // reused across the chunk's queries rather than made per query.
    let chunk = queries
        .len()
        .div_ceil(rayon::current_num_threads() * 4)
        .max(16);
    let lengths: Vec<Option<f64>> = queries
        .par_chunks(chunk)
        .flat_map_iter(|chunk| {
            let mut search = SubgoalSearch::new(grid);
            chunk
                .iter()
                .map(|&[sx, sy, gx, gy]| match (cell(sx, sy), cell(gx, gy)) {
                    (Some(start), Some(goal)) => search.search(grid, start, goal),
                    _ => None,
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for length in lengths {
        match length {
            Some(length) => writeln!(out, "{length:.5}"),
            None => writeln!(out, "unreachable"),
        }
        .context("writing to standard output")?;
    }
    out.flush().context("writing to standard output")
}

/// Parses a query line `sx sy gx gy` (whitespace separated integers;
/// negative values are accepted and answered `unreachable`).
fn parse_query(line: &str) -> anyhow::Result<[i64; 4]> {
    let mut fields = line.split_whitespace();
    let mut query = [0i64; 4];
    for (slot, name) in query.iter_mut().zip(["sx", "sy", "gx", "gy"]) {
        let field = fields
            .next()
            .with_context(|| format!("expected `sx sy gx gy`, missing {name}"))?;
        *slot = field
            .parse()
            .with_context(|| format!("{name} is not an integer: {field:?}"))?;
    }
    if let Some(extra) = fields.next() {
        bail!("expected `sx sy gx gy`, found extra field {extra:?}");
    }
    Ok(query)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_queries() {
        assert_eq!(parse_query(" 1 2\t3 -4 ").unwrap(), [1, 2, 3, -4]);
        assert!(parse_query("1 2 3").is_err());
        assert!(parse_query("1 2 3 4 5").is_err());
        assert!(parse_query("1 2 x 4").is_err());
    }
}
