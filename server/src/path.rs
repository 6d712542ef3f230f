//! `rampart path`: batch shortest-path queries on a map file.
//!
//! Designers and tests use it to check map layouts and to validate the
//! pathfinding against external benchmarks: it reads `sx sy gx gy` queries
//! from standard input and prints each optimal route cost (straight step 1,
//! diagonal sqrt(2), no corner cutting) with five decimals, or `unreachable`.

use std::io::{BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail, ensure};
use clap::Args;
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
    let text = std::fs::read_to_string(&args.map)
        .with_context(|| format!("reading map {}", args.map.display()))?;
    let (width, height, walkable) = read_movingai_walkable(&text)
        .with_context(|| format!("parsing map {}", args.map.display()))?;

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

/// Reads a Moving AI `.map` file into (width, height, row-major walkable).
///
/// Passable tiles: `.` `G` `S`; blocked: `@` `O` `T` `W`. Anything else is
/// an error, as are missing header fields or rows of the wrong length.
// lead: replace with rampart_sim::content::parse_movingai_map after merge
pub fn read_movingai_walkable(text: &str) -> anyhow::Result<(u16, u16, Vec<bool>)> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim_end_matches('\r')));
    let mut width: Option<u16> = None;
    let mut height: Option<u16> = None;
    loop {
        let (number, line) = lines
            .next()
            .context("missing `map` line after the header")?;
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("map"), None) => break,
            (Some("type"), Some(_)) => {}
            (Some("height"), Some(h)) => {
                height = Some(
                    h.parse()
                        .with_context(|| format!("line {number}: bad height {h:?}"))?,
                );
            }
            (Some("width"), Some(w)) => {
                width = Some(
                    w.parse()
                        .with_context(|| format!("line {number}: bad width {w:?}"))?,
                );
            }
            (None, _) => {}
            _ => bail!("line {number}: unexpected header line {line:?}"),
        }
    }
    let width = width.context("header has no `width`")?;
    let height = height.context("header has no `height`")?;
    let mut walkable = Vec::with_capacity(usize::from(width) * usize::from(height));
    for row in 0..height {
        let (number, line) = lines
            .next()
            .with_context(|| format!("map has {row} rows, header says {height}"))?;
        ensure!(
            line.chars().count() == usize::from(width),
            "line {number}: row has {} tiles, header says width {width}",
            line.chars().count()
        );
        for (column, tile) in line.chars().enumerate() {
            walkable.push(match tile {
                '.' | 'G' | 'S' => true,
                '@' | 'O' | 'T' | 'W' => false,
                other => bail!(
                    "line {number}, column {}: unknown tile {other:?}",
                    column + 1
                ),
            });
        }
    }
    Ok((width, height, walkable))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn reads_a_small_map() {
        let (w, h, cells) =
            read_movingai_walkable("type octile\nheight 2\nwidth 3\nmap\n.@G\nTSW\n").unwrap();
        assert_eq!((w, h), (3, 2));
        assert_eq!(cells, [true, false, true, false, true, false]);
    }

    #[test]
    fn rejects_malformed_maps() {
        assert!(read_movingai_walkable("type octile\nheight 1\nwidth 2\nmap\n.\n").is_err());
        assert!(read_movingai_walkable("type octile\nheight 2\nwidth 1\nmap\n.\n").is_err());
        assert!(read_movingai_walkable("type octile\nheight 1\nwidth 1\nmap\nx\n").is_err());
        assert!(read_movingai_walkable("height 1\nmap\n.\n").is_err());
        assert!(read_movingai_walkable("").is_err());
    }

    #[test]
    fn parses_queries() {
        assert_eq!(parse_query(" 1 2\t3 -4 ").unwrap(), [1, 2, 3, -4]);
        assert!(parse_query("1 2 3").is_err());
        assert!(parse_query("1 2 3 4 5").is_err());
        assert!(parse_query("1 2 x 4").is_err());
    }
}
