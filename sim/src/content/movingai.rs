//! Reader for the Moving AI Lab benchmark `.map` format, so designers can
//! import published grids and pathfinding tests can use its scenarios as an
//! oracle.
//!
//! The format is a four-line header (`type octile`, `height H`, `width W`,
//! `map`) followed by `H` rows of `W` characters. Passable cells become
//! [`Tile::Buildable`]; the format has no notion of spawns or goals, so the
//! grid comes back without any and the importing map file names them.

use std::path::{Path, PathBuf};

use crate::grid::{Grid, Tile};

/// Why a Moving AI map could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MovingAiError {
    /// The file could not be read at all.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The text is not a valid map; `line` is 1-based and `column` counts
    /// characters from 1 (0 when the whole line is at fault).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line.
        line: u32,
        /// 1-based column in characters, 0 for the whole line.
        column: u32,
        /// What is wrong.
        message: String,
    },
}

/// Largest width or height accepted, to keep a hostile file from allocating
/// without bound (the benchmark set's largest maps are 1024 wide).
const MAX_SIDE: u32 = 4096;

fn syntax(line: usize, column: usize, message: impl Into<String>) -> MovingAiError {
    MovingAiError::Syntax {
        line: u32::try_from(line).unwrap_or(u32::MAX),
        column: u32::try_from(column).unwrap_or(u32::MAX),
        message: message.into(),
    }
}

/// Parses the text of a `.map` file into a grid without spawns or goals.
pub fn parse_movingai_map(text: &str) -> Result<Grid, MovingAiError> {
    let mut lines = text
        .lines()
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate();
    let mut header = |expected: &str| -> Result<Option<u32>, MovingAiError> {
        let Some((index, line)) = lines.next() else {
            return Err(syntax(
                0,
                0,
                format!("file ends before the `{expected}` header line"),
            ));
        };
        let mut words = line.split_whitespace();
        if words.next() != Some(expected) {
            return Err(syntax(
                index + 1,
                1,
                format!("expected `{expected}` header, found `{line}`"),
            ));
        }
        let rest = words.next();
        if words.next().is_some() {
            return Err(syntax(
                index + 1,
                0,
                format!("unexpected text after `{expected}` header"),
            ));
        }
        match (expected, rest) {
            ("type", Some("octile")) => Ok(None),
            ("type", other) => Err(syntax(
                index + 1,
                6,
                format!("unsupported map type {other:?}, expected `octile`"),
            )),
            ("map", None) => Ok(None),
            ("map", Some(_)) => Err(syntax(index + 1, 5, "unexpected text after `map`")),
            (_, Some(number)) => match number.parse::<u32>() {
                Ok(value) if (1..=MAX_SIDE).contains(&value) => Ok(Some(value)),
                _ => Err(syntax(
                    index + 1,
                    expected.len() + 2,
                    format!(
                        "`{expected}` must be a whole number in 1..={MAX_SIDE}, found `{number}`"
                    ),
                )),
            },
            (_, None) => Err(syntax(index + 1, 0, format!("`{expected}` needs a number"))),
        }
    };
    header("type")?;
    let height = header("height")?.unwrap_or(0);
    let width = header("width")?.unwrap_or(0);
    header("map")?;
    let (width16, height16) = match (u16::try_from(width), u16::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(syntax(2, 0, "map too large")),
    };
    let mut tiles = Vec::with_capacity(width as usize * height as usize);
    let mut rows = 0_u32;
    for (index, line) in lines {
        if rows == height {
            if line.trim().is_empty() {
                continue;
            }
            return Err(syntax(
                index + 1,
                1,
                format!("more than the {height} rows the header declares"),
            ));
        }
        let mut count = 0_u32;
        for (column, ch) in line.chars().enumerate() {
            let tile = match ch {
                '.' | 'G' | 'S' => Tile::Buildable,
                '@' | 'O' | 'T' | 'W' => Tile::Blocked,
                other => {
                    return Err(syntax(
                        index + 1,
                        column + 1,
                        format!("unknown terrain character {other:?}"),
                    ));
                }
            };
            tiles.push(tile);
            count += 1;
        }
        if count != width {
            return Err(syntax(
                index + 1,
                0,
                format!("row has {count} cells, the header declares width {width}"),
            ));
        }
        rows += 1;
    }
    if rows != height {
        return Err(syntax(
            text.lines().count(),
            0,
            format!("{rows} rows, the header declares height {height}"),
        ));
    }
    Ok(Grid::new(width16, height16, tiles, Vec::new(), Vec::new()))
}

/// Reads and parses a `.map` file.
pub fn load_movingai_map(path: &Path) -> Result<Grid, MovingAiError> {
    let text = std::fs::read_to_string(path).map_err(|source| MovingAiError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_movingai_map(&text)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::grid::Cell;

    #[test]
    fn reads_the_arena_benchmark_map() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/movingai/arena.map");
        let grid = load_movingai_map(&path).unwrap();
        assert_eq!((grid.width(), grid.height()), (49, 49));
        assert_eq!(grid.tile(Cell::new(0, 0)), Tile::Blocked);
        assert_eq!(grid.tile(Cell::new(3, 1)), Tile::Buildable);
        assert!(grid.spawns().is_empty() && grid.goals().is_empty());
        let passable = grid
            .tiles()
            .iter()
            .filter(|t| **t == Tile::Buildable)
            .count();
        assert!(passable > 1000, "{passable}");
    }

    #[test]
    fn maps_every_terrain_character() {
        let grid = parse_movingai_map("type octile\nheight 1\nwidth 7\nmap\n.GS@OTW\n").unwrap();
        use Tile::{Blocked as B, Buildable as P};
        assert_eq!(grid.tiles(), &[P, P, P, B, B, B, B]);
    }

    #[test]
    fn reports_errors_with_line_numbers() {
        let err =
            parse_movingai_map("type octile\nheight 2\nwidth 3\nmap\n...\n.x.\n").unwrap_err();
        assert!(
            matches!(
                err,
                MovingAiError::Syntax {
                    line: 6,
                    column: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_movingai_map("type octile\nheight 2\nwidth 3\nmap\n...\n..\n").unwrap_err();
        assert!(
            matches!(err, MovingAiError::Syntax { line: 6, .. }),
            "{err}"
        );
        let err =
            parse_movingai_map("type octile\nheight 3\nwidth 3\nmap\n...\n...\n").unwrap_err();
        assert!(err.to_string().contains("2 rows"), "{err}");
        let err = parse_movingai_map("type hex\nheight 3\nwidth 3\nmap\n").unwrap_err();
        assert!(
            matches!(err, MovingAiError::Syntax { line: 1, .. }),
            "{err}"
        );
        let err = parse_movingai_map("type octile\nwidth 3\nheight 3\nmap\n").unwrap_err();
        assert!(
            matches!(err, MovingAiError::Syntax { line: 2, .. }),
            "{err}"
        );
    }
}
