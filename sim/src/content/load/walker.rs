//! The generic half of the loader: walking a TOML file with its spans and
//! recording each problem at the line and column a designer must edit.
//! Nothing here knows towers from maps; the per-kind modules say which keys a
//! table has and what range each value must be in, and this module turns a
//! missing key, a wrong type or an out-of-range value into a [`Diagnostic`]
//! and a placeholder so the walk can go on.

use std::fmt;
use std::ops::RangeInclusive;
use std::path::PathBuf;

use toml::Spanned;

use super::warnings::{Place, Places, WarningRules};
use toml::de::{DeArray, DeTable, DeValue};

/// One problem in one content file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, relative to the content directory.
    pub file: PathBuf,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong, in designer terms.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// Why content could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// The files were read but break rules; every problem found is listed,
    /// sorted by file and position.
    #[error("{}", render_diagnostics(.0))]
    Invalid(Vec<Diagnostic>),
    /// A file or directory could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

fn render_diagnostics(diagnostics: &[Diagnostic]) -> String {
    let mut out = format!(
        "{} content problem{}",
        diagnostics.len(),
        if diagnostics.len() == 1 { "" } else { "s" }
    );
    for diagnostic in diagnostics {
        out.push('\n');
        out.push_str(&diagnostic.to_string());
    }
    out
}

/// A content file's text and where its lines start, to turn byte offsets
/// into line and column.
pub(super) struct Source {
    pub(super) rel: PathBuf,
    pub(super) text: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub(super) fn new(rel: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            rel,
            text,
            line_starts,
        }
    }

    pub(super) fn position(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.text.len());
        let line = self
            .line_starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1);
        let start = self.line_starts[line];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count());
        (
            u32::try_from(line + 1).unwrap_or(u32::MAX),
            u32::try_from(column + 1).unwrap_or(u32::MAX),
        )
    }

    /// The file name without its extension: the key of the tribe, map,
    /// waves or scenario the file holds.
    pub(super) fn stem(&self) -> String {
        self.rel
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned()
    }
}

pub(super) fn to_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// The allowed range of a number, shown to designers on violation.
type Range = RangeInclusive<f64>;

/// A table being walked: the table, the offset to blame when a key is
/// missing, and words naming it in messages.
#[derive(Clone)]
pub(super) struct Tab<'a, 'i> {
    pub(super) table: &'a DeTable<'i>,
    pub(super) at: usize,
    pub(super) what: String,
}

/// Walks one file, recording problems (and warnings, and where tower and
/// enemy kinds are declared) against it.
pub(super) struct Cx<'r> {
    pub(super) source: &'r Source,
    pub(super) report: &'r mut Vec<Diagnostic>,
    pub(super) warnings: &'r mut Vec<Diagnostic>,
    pub(super) places: &'r mut Places,
    pub(super) rules: WarningRules,
}

impl<'r> Cx<'r> {
    /// Content that loads but will likely play badly, at `offset`.
    pub(super) fn warn(&mut self, offset: usize, message: impl Into<String>) {
        let warning = self.at(offset, message.into());
        self.warnings.push(warning);
    }

    fn at(&self, offset: usize, message: String) -> Diagnostic {
        let (line, column) = self.source.position(offset);
        Diagnostic {
            file: self.source.rel.clone(),
            line,
            column,
            message,
        }
    }

    /// Where `offset` is, for warnings given once every file has loaded.
    pub(super) fn place(&self, offset: usize) -> Place {
        let (line, column) = self.source.position(offset);
        Place {
            file: self.source.rel.clone(),
            line,
            column,
        }
    }

    pub(super) fn error(&mut self, offset: usize, message: impl Into<String>) {
        let problem = self.at(offset, message.into());
        self.report.push(problem);
    }

    /// Flags every key not in `allowed`, at the key itself.
    pub(super) fn known_keys(&mut self, tab: &Tab<'_, '_>, allowed: &[&str]) {
        for key in tab.table.keys() {
            if !allowed.contains(&key.get_ref().as_ref()) {
                self.error(
                    key.span().start,
                    format!(
                        "unknown key `{}` in {}; expected one of: {}",
                        key.get_ref(),
                        tab.what,
                        allowed.join(", ")
                    ),
                );
            }
        }
    }

    fn get<'a, 'i>(
        &mut self,
        tab: &Tab<'a, 'i>,
        key: &str,
        required: bool,
    ) -> Option<&'a Spanned<DeValue<'i>>> {
        let value = tab.table.get(key);
        if value.is_none() && required {
            self.error(
                tab.at,
                format!("missing required key `{key}` in {}", tab.what),
            );
        }
        value
    }

    pub(super) fn wrong_type(&mut self, value: &Spanned<DeValue<'_>>, key: &str, expected: &str) {
        self.error(
            value.span().start,
            format!(
                "`{key}` must be {expected}, found {}",
                value.get_ref().type_str()
            ),
        );
    }

    /// A number (integer or float) in `range`; `default` makes it optional.
    pub(super) fn number(
        &mut self,
        tab: &Tab<'_, '_>,
        key: &str,
        range: Range,
        default: Option<f64>,
    ) -> f32 {
        let Some(value) = self.get(tab, key, default.is_none()) else {
            return default.unwrap_or(0.0) as f32;
        };
        let number = match value.get_ref() {
            DeValue::Integer(int) => i64::from_str_radix(int.as_str(), int.radix())
                .ok()
                .map(|n| n as f64),
            DeValue::Float(float) => float.as_str().parse::<f64>().ok(),
            _ => {
                self.wrong_type(value, key, "a number");
                return 0.0;
            }
        };
        match number {
            Some(number) if range.contains(&number) => number as f32,
            _ => {
                self.error(
                    value.span().start,
                    format!(
                        "`{key}` = {} is out of range {}..={}",
                        value_text(value),
                        range.start(),
                        range.end()
                    ),
                );
                0.0
            }
        }
    }

    /// A whole number in `range`; `default` makes it optional.
    pub(super) fn integer(
        &mut self,
        tab: &Tab<'_, '_>,
        key: &str,
        range: RangeInclusive<i64>,
        default: Option<i64>,
    ) -> i64 {
        let Some(value) = self.get(tab, key, default.is_none()) else {
            return default.unwrap_or(0);
        };
        self.integer_value(value, key, range)
    }

    fn integer_value(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        key: &str,
        range: RangeInclusive<i64>,
    ) -> i64 {
        let DeValue::Integer(int) = value.get_ref() else {
            self.wrong_type(value, key, "a whole number");
            return 0;
        };
        match i64::from_str_radix(int.as_str(), int.radix()) {
            Ok(number) if range.contains(&number) => number,
            _ => {
                self.error(
                    value.span().start,
                    format!(
                        "`{key}` = {} is out of range {}..={}",
                        value_text(value),
                        range.start(),
                        range.end()
                    ),
                );
                0
            }
        }
    }

    pub(super) fn boolean(&mut self, tab: &Tab<'_, '_>, key: &str, default: bool) -> bool {
        let Some(value) = self.get(tab, key, false) else {
            return default;
        };
        value.get_ref().as_bool().unwrap_or_else(|| {
            self.wrong_type(value, key, "true or false");
            default
        })
    }

    /// A string and the offset of its value.
    pub(super) fn string(
        &mut self,
        tab: &Tab<'_, '_>,
        key: &str,
        required: bool,
    ) -> Option<(String, usize)> {
        let value = self.get(tab, key, required)?;
        match value.get_ref().as_str() {
            Some(text) => Some((text.to_owned(), value.span().start)),
            None => {
                self.wrong_type(value, key, "a string");
                None
            }
        }
    }

    /// A non-empty display name.
    pub(super) fn name(&mut self, tab: &Tab<'_, '_>) -> String {
        match self.string(tab, "name", true) {
            Some((name, at)) if name.trim().is_empty() => {
                self.error(at, "`name` must not be empty");
                name
            }
            Some((name, _)) => name,
            None => String::new(),
        }
    }

    /// One of `options`, by index.
    pub(super) fn choice(
        &mut self,
        tab: &Tab<'_, '_>,
        key: &str,
        options: &[&str],
        default: Option<usize>,
    ) -> usize {
        let Some((text, at)) = self.string(tab, key, default.is_none()) else {
            return default.unwrap_or(0);
        };
        options.iter().position(|o| *o == text).unwrap_or_else(|| {
            self.error(
                at,
                format!("`{key}` = \"{text}\" is not one of: {}", options.join(", ")),
            );
            0
        })
    }

    pub(super) fn subtable<'a, 'i>(
        &mut self,
        tab: &Tab<'a, 'i>,
        key: &str,
        required: bool,
        what: String,
    ) -> Option<Tab<'a, 'i>> {
        let value = self.get(tab, key, required)?;
        self.as_tab(value, key, what)
    }

    pub(super) fn as_tab<'a, 'i>(
        &mut self,
        value: &'a Spanned<DeValue<'i>>,
        key: &str,
        what: String,
    ) -> Option<Tab<'a, 'i>> {
        match value.get_ref() {
            DeValue::Table(table) => Some(Tab {
                table,
                at: value.span().start,
                what,
            }),
            _ => {
                self.wrong_type(value, key, "a table");
                None
            }
        }
    }

    pub(super) fn array<'a, 'i>(
        &mut self,
        tab: &Tab<'a, 'i>,
        key: &str,
        required: bool,
    ) -> Option<(&'a DeArray<'i>, usize)> {
        let value = self.get(tab, key, required)?;
        match value.get_ref() {
            DeValue::Array(array) => Some((array, value.span().start)),
            _ => {
                self.wrong_type(value, key, "an array");
                None
            }
        }
    }

    /// An array of tables (`[[key]]`); `what` names element `i`.
    pub(super) fn tables<'a, 'i>(
        &mut self,
        tab: &Tab<'a, 'i>,
        key: &str,
        min: usize,
        max: usize,
        what: impl Fn(usize) -> String,
    ) -> Vec<Tab<'a, 'i>> {
        let Some((array, at)) = self.array(tab, key, min > 0) else {
            return Vec::new();
        };
        if !(min..=max).contains(&array.len()) {
            self.error(
                at,
                format!("`{key}` has {} entries; allowed {min}..={max}", array.len()),
            );
        }
        array
            .iter()
            .enumerate()
            .filter_map(|(i, value)| self.as_tab(value, key, what(i)))
            .collect()
    }

    /// A key for other files to reference: lowercase ASCII, digits, `_`.
    pub(super) fn check_key(&mut self, key: &str, at: usize, what: &str) {
        if !valid_key(key) {
            self.error(
                at,
                format!(
                    "{what} key `{key}` must be 1 to 32 of a-z, 0-9 and _, starting with a letter"
                ),
            );
        }
    }

    /// A `[x, y]` pair.
    pub(super) fn cell(
        &mut self,
        value: &Spanned<DeValue<'_>>,
        key: &str,
    ) -> Option<(i64, i64, usize)> {
        let pair = value.get_ref().as_array().filter(|a| a.len() == 2);
        let Some(pair) = pair else {
            self.wrong_type(value, key, "an [x, y] pair");
            return None;
        };
        let x = self.integer_value(&pair[0], key, 0..=i64::from(u16::MAX));
        let y = self.integer_value(&pair[1], key, 0..=i64::from(u16::MAX));
        Some((x, y, value.span().start))
    }
}

fn value_text(value: &Spanned<DeValue<'_>>) -> String {
    match value.get_ref() {
        DeValue::Integer(int) => int.to_string(),
        DeValue::Float(float) => float.to_string(),
        other => other.type_str().to_owned(),
    }
}

pub(super) fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
