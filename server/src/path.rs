//! `rampart path`: batch shortest-path queries on a map file.
//!
//! Designers and tests use it to check map layouts and to validate the
//! pathfinding against external benchmarks: it reads `sx sy gx gy` queries
//! from standard input and prints each optimal route cost (straight step 1,
//! diagonal sqrt(2), no corner cutting) with five decimals, or `unreachable`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use rampart_sim::content::load_movingai_map;
use rampart_sim::path::AStar;

/// Arguments of `rampart path`.
#[derive(Args, Debug)]
pub struct PathArgs {
    /// Map file in the Moving AI `.map` format (`type octile`, `height`,
    /// `width`, `map`, then one row of tiles per line).
    #[arg(long, value_name = "FILE")]
    pub map: PathBuf,
}

/// Answers every query on standard input, one output line per query line,
/// so results can be pasted beside the queries; blank lines are skipped.
pub fn run(args: PathArgs) -> anyhow::Result<ExitCode> {
    let grid = load_movingai_map(&args.map)?;
    let (width, height, walkable) = (grid.width(), grid.height(), grid.walkable_mask());

    let mut astar = AStar::new(width, height);
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for (number, line) in stdin.lines().enumerate() {
        let number = number + 1;
        let line = line.with_context(|| format!("reading standard input line {number}"))?;
        if line.trim().is_empty() {
            continue;
        }
        let [sx, sy, gx, gy] = parse_query(&line)
            .with_context(|| format!("standard input line {number}: {line:?}"))?;
        let cell = |x: i64, y: i64| {
            (x >= 0 && y >= 0 && x < i64::from(width) && y < i64::from(height))
                .then(|| y as usize * usize::from(width) + x as usize)
        };
        let length = match (cell(sx, sy), cell(gx, gy)) {
            (Some(start), Some(goal)) => astar.search(&walkable, start, goal),
            _ => None,
        };
        match length {
            Some(length) => writeln!(out, "{length:.5}"),
            None => writeln!(out, "unreachable"),
        }
        .context("writing to standard output")?;
    }
    out.flush().context("writing to standard output")?;
    Ok(ExitCode::SUCCESS)
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
