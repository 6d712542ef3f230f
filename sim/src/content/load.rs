//! Reads `assets/` and checks every rule a designer can break, reporting all
//! problems of all files in one run with the line and column at fault, so a
//! designer fixes a whole batch at once instead of one error per attempt.
//!
//! Files are parsed with spans (`toml::de::DeTable`) and walked by hand rather
//! than through serde, because serde stops at the first error and loses the
//! position of keys it does not know. A problem is recorded and the walk goes
//! on with a placeholder value; since any recorded problem fails the load, a
//! placeholder never reaches a session.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::movingai::{MovingAiError, parse_movingai_map};
use super::{
    Content, DamageOverTime, DamageType, Endless, EnemyKind, EnemyKindId, Flight, MapDef,
    Resistances, Scenario, ScenarioTower, Slow, SpawnGroup, TargetFilter, TowerKind, TowerKindId,
    TowerLevel, Tribe, TribeId, Wave, WaveSet,
};
use crate::grid::{Cell, Grid, Tile};
use crate::hash::StableHasher;
use crate::path::FlowField;

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

/// Loads and validates every content file under `dir`.
pub fn load_dir(dir: &Path) -> Result<Content, ContentError> {
    let mut paths = Vec::new();
    list_files(dir, Path::new(""), &mut paths)?;
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for rel in paths {
        let path = dir.join(&rel);
        let bytes = std::fs::read(&path).map_err(|source| ContentError::Io { path, source })?;
        files.push((rel, bytes));
    }
    let mut loader = Loader::default();
    let content = loader.load(&files);
    let mut diagnostics = loader.report;
    if diagnostics.is_empty() {
        return Ok(content);
    }
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    Err(ContentError::Invalid(diagnostics))
}

fn list_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ContentError> {
    let full = dir.join(rel);
    let io = |source| ContentError::Io {
        path: full.clone(),
        source,
    };
    for entry in std::fs::read_dir(&full).map_err(io)? {
        let entry = entry.map_err(io)?;
        let rel = rel.join(entry.file_name());
        if entry.file_type().map_err(io)?.is_dir() {
            list_files(dir, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

/// The path with `/` separators, so the version is the same on every OS.
fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// A content file's text and where its lines start, to turn byte offsets
/// into line and column.
struct Source {
    rel: PathBuf,
    text: String,
    line_starts: Vec<usize>,
}

impl Source {
    fn new(rel: PathBuf, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            rel,
            text,
            line_starts,
        }
    }

    fn position(&self, offset: usize) -> (u32, u32) {
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
}

fn to_u16(value: usize) -> u16 {
    u16::try_from(value).unwrap_or(u16::MAX)
}

/// The allowed range of a number, shown to designers on violation.
type Range = RangeInclusive<f64>;

/// A table being walked: the table, the offset to blame when a key is
/// missing, and words naming it in messages.
#[derive(Clone)]
struct Tab<'a, 'i> {
    table: &'a DeTable<'i>,
    at: usize,
    what: String,
}

/// Walks one file, recording problems against it.
struct Cx<'r> {
    source: &'r Source,
    report: &'r mut Vec<Diagnostic>,
}

impl<'r> Cx<'r> {
    fn error(&mut self, offset: usize, message: impl Into<String>) {
        let (line, column) = self.source.position(offset);
        self.report.push(Diagnostic {
            file: self.source.rel.clone(),
            line,
            column,
            message: message.into(),
        });
    }

    /// Flags every key not in `allowed`, at the key itself.
    fn known_keys(&mut self, tab: &Tab<'_, '_>, allowed: &[&str]) {
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

    fn wrong_type(&mut self, value: &Spanned<DeValue<'_>>, key: &str, expected: &str) {
        self.error(
            value.span().start,
            format!(
                "`{key}` must be {expected}, found {}",
                value.get_ref().type_str()
            ),
        );
    }

    /// A number (integer or float) in `range`; `default` makes it optional.
    fn number(&mut self, tab: &Tab<'_, '_>, key: &str, range: Range, default: Option<f64>) -> f32 {
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
    fn integer(
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

    fn boolean(&mut self, tab: &Tab<'_, '_>, key: &str, default: bool) -> bool {
        let Some(value) = self.get(tab, key, false) else {
            return default;
        };
        value.get_ref().as_bool().unwrap_or_else(|| {
            self.wrong_type(value, key, "true or false");
            default
        })
    }

    /// A string and the offset of its value.
    fn string(&mut self, tab: &Tab<'_, '_>, key: &str, required: bool) -> Option<(String, usize)> {
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
    fn name(&mut self, tab: &Tab<'_, '_>) -> String {
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
    fn choice(
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

    fn subtable<'a, 'i>(
        &mut self,
        tab: &Tab<'a, 'i>,
        key: &str,
        required: bool,
        what: String,
    ) -> Option<Tab<'a, 'i>> {
        let value = self.get(tab, key, required)?;
        self.as_tab(value, key, what)
    }

    fn as_tab<'a, 'i>(
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

    fn array<'a, 'i>(
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
    fn tables<'a, 'i>(
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
    fn check_key(&mut self, key: &str, at: usize, what: &str) {
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
    fn cell(&mut self, value: &Spanned<DeValue<'_>>, key: &str) -> Option<(i64, i64, usize)> {
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

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    key.len() <= 32
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Smallest and largest map side in cells.
const MAP_SIDE: RangeInclusive<usize> = 4..=1024;
/// Most spawns or goals on one map (a group's `spawn` is a `u8`).
const MAX_ENDPOINTS: usize = 64;

/// What a content file is, by where it lives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Towers,
    Tribe,
    Map,
    MovingAi,
    Waves,
    Scenario,
    Readme,
}

fn classify(rel: &Path) -> Option<Kind> {
    let parts: Vec<_> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let ext = rel.extension().and_then(|e| e.to_str());
    match (
        parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice(),
        ext,
    ) {
        (["towers.toml"], _) => Some(Kind::Towers),
        (["README.md"], _) => Some(Kind::Readme),
        (["tribes", _], Some("toml")) => Some(Kind::Tribe),
        (["maps", _], Some("toml")) => Some(Kind::Map),
        (["maps", _], Some("map")) => Some(Kind::MovingAi),
        (["waves", _], Some("toml")) => Some(Kind::Waves),
        (["scenarios", _], Some("toml")) => Some(Kind::Scenario),
        _ => None,
    }
}

/// A map as drawn or imported, before its waves are attached.
struct MapDraft {
    key: String,
    name: String,
    grid: Option<Grid>,
    start_gold: u32,
    lives: u32,
}

/// One load: files are checked in dependency order (towers, tribes, maps,
/// waves, scenarios) so references resolve against what came before, and
/// every problem lands in one shared report.
#[derive(Default)]
struct Loader {
    report: Vec<Diagnostic>,
}

impl Loader {
    fn file_error(&mut self, rel: &Path, message: impl Into<String>) {
        self.report.push(Diagnostic {
            file: rel.to_path_buf(),
            line: 1,
            column: 1,
            message: message.into(),
        });
    }

    fn load(&mut self, files: &[(PathBuf, Vec<u8>)]) -> Content {
        // The content version: stable across platforms and Rust versions,
        // unlike `DefaultHasher`.
        let mut hash = StableHasher::new();
        let mut sources: Vec<(Kind, Source)> = Vec::new();
        for (rel, bytes) in files {
            let Some(kind) = classify(rel) else {
                self.file_error(
                    rel,
                    "unexpected file: content is towers.toml, README.md, tribes/*.toml, maps/*.toml, maps/*.map, \
                     waves/*.toml and scenarios/*.toml",
                );
                continue;
            };
            if kind == Kind::Readme {
                continue;
            }
            let path = slash_path(rel);
            hash.u64(path.len() as u64);
            hash.bytes(path.as_bytes());
            hash.u64(bytes.len() as u64);
            hash.bytes(bytes);
            let stem = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if kind != Kind::Towers && !valid_key(stem) {
                self.file_error(rel, format!("file name `{stem}` must be 1 to 32 of a-z, 0-9 and _, starting with a letter"));
            }
            match String::from_utf8(bytes.clone()) {
                Ok(text) => sources.push((kind, Source::new(rel.clone(), text))),
                Err(_) => self.file_error(rel, "file is not valid UTF-8"),
            }
        }
        let of = |kind: Kind| {
            sources
                .iter()
                .filter(move |(k, _)| *k == kind)
                .map(|(_, s)| s)
        };

        let towers = match of(Kind::Towers).next() {
            Some(source) => self.towers(source),
            None => {
                self.file_error(
                    Path::new("towers.toml"),
                    "missing: every content directory needs towers.toml",
                );
                Vec::new()
            }
        };
        let (tribes, enemies) = self.tribes(of(Kind::Tribe));
        let movingai: BTreeMap<&str, &Source> = of(Kind::MovingAi)
            .filter_map(|s| Some((s.rel.file_name()?.to_str()?, s)))
            .collect();
        let mut imported = BTreeSet::new();
        let mut drafts: Vec<MapDraft> = of(Kind::Map)
            .map(|s| self.map(s, &movingai, &mut imported))
            .collect();
        for source in movingai.values() {
            let name = source
                .rel
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("");
            if !imported.contains(name) {
                self.file_error(
                    &source.rel,
                    "no map imports this file; name it in a map's `import`",
                );
            }
        }
        drafts.sort_by(|a, b| a.key.cmp(&b.key));

        let enemy_keys: Vec<&str> = enemies.iter().map(|e| e.key.as_str()).collect();
        let mut wave_sets: BTreeMap<String, WaveSet> = BTreeMap::new();
        for source in of(Kind::Waves) {
            let key = stem_of(source);
            let Some(draft) = drafts.iter().find(|d| d.key == key) else {
                self.file_error(
                    &source.rel,
                    format!("no map `{key}` for these waves (expected maps/{key}.toml)"),
                );
                continue;
            };
            let spawns = draft.grid.as_ref().map(|g| g.spawns().len());
            wave_sets.insert(key, self.waves(source, &enemy_keys, &draft.key, spawns));
        }
        let mut maps = Vec::new();
        for draft in drafts {
            let waves = wave_sets.remove(&draft.key);
            if waves.is_none() {
                let rel = PathBuf::from("maps").join(format!("{}.toml", draft.key));
                self.file_error(
                    &rel,
                    format!(
                        "map `{0}` has no waves file (expected waves/{0}.toml)",
                        draft.key
                    ),
                );
            }
            let grid = draft
                .grid
                .unwrap_or_else(|| Grid::new(0, 0, Vec::new(), Vec::new(), Vec::new()));
            let waves = waves.unwrap_or(WaveSet {
                prep_seconds: 0.0,
                early_call_bonus_per_second: 0.0,
                waves: Vec::new(),
                endless: None,
            });
            maps.push(MapDef {
                key: draft.key,
                name: draft.name,
                grid,
                start_gold: draft.start_gold,
                lives: draft.lives,
                waves,
            });
        }

        let mut scenarios: Vec<Scenario> = of(Kind::Scenario)
            .map(|s| self.scenario(s, &towers, &maps))
            .collect();
        scenarios.sort_by(|a, b| a.key.cmp(&b.key));

        Content {
            towers,
            enemies,
            tribes,
            maps,
            scenarios,
            version: hash.finish(),
        }
    }

    fn towers(&mut self, source: &Source) -> Vec<TowerKind> {
        let (root, mut cx) = self.parse(source);
        let mut towers = Vec::new();
        for (key, value) in root.iter() {
            let key_text = key.get_ref().to_string();
            cx.check_key(&key_text, key.span().start, "tower");
            let Some(tab) = cx.as_tab(value, &key_text, format!("tower `{key_text}`")) else {
                continue;
            };
            cx.known_keys(&tab, &["name", "targets", "flight", "sell_refund", "level"]);
            let name = cx.name(&tab);
            let mut targets = TargetFilter {
                ground: false,
                air: false,
            };
            if let Some((array, at)) = cx.array(&tab, "targets", true) {
                for item in array.iter() {
                    match item.get_ref().as_str() {
                        Some("ground") if !targets.ground => targets.ground = true,
                        Some("air") if !targets.air => targets.air = true,
                        Some(other @ ("ground" | "air")) => {
                            cx.error(item.span().start, format!("`{other}` listed twice"))
                        }
                        _ => cx.error(
                            item.span().start,
                            "`targets` entries must be \"ground\" or \"air\"",
                        ),
                    }
                }
                if array.is_empty() {
                    cx.error(
                        at,
                        "`targets` must name at least one of \"ground\", \"air\"",
                    );
                }
            }
            let flight = match cx.choice(&tab, "flight", &["homing", "ballistic"], None) {
                1 => Flight::Ballistic,
                _ => Flight::Homing,
            };
            let sell_refund = cx.number(&tab, "sell_refund", 0.0..=1.0, None);
            let levels = cx
                .tables(&tab, "level", 1, 5, |i| {
                    format!("level {i} of tower `{key_text}`")
                })
                .iter()
                .map(|level| tower_level(&mut cx, level))
                .collect();
            towers.push(TowerKind {
                key: key_text,
                name,
                targets,
                flight,
                sell_refund,
                levels,
            });
        }
        towers.sort_by(|a, b| a.key.cmp(&b.key));
        towers
    }

    fn parse<'a, 's: 'a>(&'a mut self, source: &'s Source) -> (DeTable<'s>, Cx<'a>) {
        let (root, errors) = DeTable::parse_recoverable(&source.text);
        let mut cx = Cx {
            source,
            report: &mut self.report,
        };
        for error in errors {
            let at = error.span().map_or(0, |span| span.start);
            cx.error(at, format!("TOML syntax: {}", error.message().trim()));
        }
        (root.into_inner(), cx)
    }

    fn tribes<'s>(
        &mut self,
        sources: impl Iterator<Item = &'s Source>,
    ) -> (Vec<Tribe>, Vec<EnemyKind>) {
        // Enemy drafts carry their tribe key until tribe ids are known.
        let mut drafts: Vec<(String, EnemyKind)> = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        let mut tribes = Vec::new();
        for source in sources {
            let tribe_key = stem_of(source);
            let (root, mut cx) = self.parse(source);
            let tab = Tab {
                table: &root,
                at: 0,
                what: format!("tribe `{tribe_key}`"),
            };
            cx.known_keys(&tab, &["name", "enemy"]);
            let name = cx.name(&tab);
            if let Some(enemies) = cx.subtable(
                &tab,
                "enemy",
                true,
                format!("enemies of tribe `{tribe_key}`"),
            ) {
                if enemies.table.is_empty() {
                    cx.error(
                        enemies.at,
                        format!("tribe `{tribe_key}` has no enemy kinds"),
                    );
                }
                for (key, value) in enemies.table.iter() {
                    let key_text = key.get_ref().to_string();
                    cx.check_key(&key_text, key.span().start, "enemy");
                    let (line, column) = source.position(key.span().start);
                    let here = format!("{}:{line}:{column}", source.rel.display());
                    if let Some(first) = seen.insert(key_text.clone(), here.clone()) {
                        cx.error(
                            key.span().start,
                            format!(
                                "duplicate enemy kind `{key_text}` (first declared at {first})"
                            ),
                        );
                        seen.insert(key_text.clone(), first);
                        continue;
                    }
                    let Some(enemy) = cx.as_tab(value, &key_text, format!("enemy `{key_text}`"))
                    else {
                        continue;
                    };
                    drafts.push((tribe_key.clone(), enemy_kind(&mut cx, &enemy, key_text)));
                }
            }
            tribes.push(Tribe {
                key: tribe_key,
                name,
                enemies: Vec::new(),
            });
        }
        tribes.sort_by(|a, b| a.key.cmp(&b.key));
        drafts.sort_by(|a, b| a.1.key.cmp(&b.1.key));
        let mut enemies = Vec::with_capacity(drafts.len());
        for (index, (tribe_key, mut enemy)) in drafts.into_iter().enumerate() {
            let tribe = tribes.iter().position(|t| t.key == tribe_key).unwrap_or(0);
            enemy.tribe = TribeId(to_u16(tribe));
            tribes[tribe].enemies.push(EnemyKindId(to_u16(index)));
            enemies.push(enemy);
        }
        (tribes, enemies)
    }

    fn map(
        &mut self,
        source: &Source,
        movingai: &BTreeMap<&str, &Source>,
        imported: &mut BTreeSet<String>,
    ) -> MapDraft {
        let key = stem_of(source);
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("map `{key}`"),
        };
        cx.known_keys(
            &tab,
            &[
                "name",
                "start_gold",
                "lives",
                "grid",
                "import",
                "spawns",
                "goals",
            ],
        );
        let name = cx.name(&tab);
        let start_gold = cx.integer(&tab, "start_gold", 0..=1_000_000, None) as u32;
        let lives = cx.integer(&tab, "lives", 1..=1_000_000, None) as u32;
        let grid = match (root.get("grid"), root.get("import")) {
            (Some(grid), None) => {
                for key in ["spawns", "goals"] {
                    if let Some(value) = root.get(key) {
                        cx.error(
                            value.span().start,
                            format!("`{key}` is only for imported maps; draw S and G in `grid`"),
                        );
                    }
                }
                drawn_grid(&mut cx, grid)
            }
            (None, Some(_)) => {
                let (file, at) = cx.string(&tab, "import", true).unwrap_or_default();
                match movingai.get(file.as_str()) {
                    Some(map_source) => {
                        imported.insert(file.clone());
                        match parse_movingai_map(&map_source.text) {
                            Ok(grid) => imported_grid(&mut cx, &tab, grid),
                            Err(error) => {
                                let (line, column, message) = match error {
                                    MovingAiError::Syntax {
                                        line,
                                        column,
                                        message,
                                    } => (line, column, message),
                                    MovingAiError::Io { source, .. } => (1, 1, source.to_string()),
                                };
                                cx.report.push(Diagnostic {
                                    file: map_source.rel.clone(),
                                    line: line.max(1),
                                    column: column.max(1),
                                    message,
                                });
                                None
                            }
                        }
                    }
                    None => {
                        cx.error(at, format!("`import` = \"{file}\": no such file in maps/ (a Moving AI .map file)"));
                        None
                    }
                }
            }
            (Some(_), Some(import)) => {
                cx.error(
                    import.span().start,
                    "a map has either `grid` or `import`, not both",
                );
                None
            }
            (None, None) => {
                cx.error(
                    0,
                    format!("missing required key `grid` (or `import`) in map `{key}`"),
                );
                None
            }
        };
        if let Some(grid) = &grid {
            let walkable = grid.walkable_mask();
            let reached = reaches_goal(grid, &walkable);
            for (index, spawn) in grid.spawns().iter().enumerate() {
                if !reached[grid.index(*spawn)] {
                    let at = root
                        .get("grid")
                        .or(root.get("spawns"))
                        .map_or(0, |v| v.span().start);
                    cx.error(
                        at,
                        format!(
                            "spawn {index} at ({}, {}) has no path to any goal",
                            spawn.x, spawn.y
                        ),
                    );
                }
            }
        }
        MapDraft {
            key,
            name,
            grid,
            start_gold,
            lives,
        }
    }

    fn waves(
        &mut self,
        source: &Source,
        enemies: &[&str],
        map: &str,
        spawns: Option<usize>,
    ) -> WaveSet {
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("waves of map `{map}`"),
        };
        cx.known_keys(
            &tab,
            &[
                "prep_seconds",
                "early_call_bonus_per_second",
                "endless",
                "wave",
            ],
        );
        let prep_seconds = cx.number(&tab, "prep_seconds", 0.0..=600.0, None);
        let early_call_bonus_per_second =
            cx.number(&tab, "early_call_bonus_per_second", 0.0..=1000.0, None);
        let endless = cx
            .subtable(&tab, "endless", false, "`[endless]`".into())
            .map(|endless| {
                cx.known_keys(&endless, &["hp_growth"]);
                Endless {
                    hp_growth: cx.number(&endless, "hp_growth", 1.0..=10.0, None),
                }
            });
        let mut waves = Vec::new();
        for (w, wave) in cx
            .tables(&tab, "wave", 1, 1000, |i| format!("wave {}", i + 1))
            .iter()
            .enumerate()
        {
            cx.known_keys(wave, &["duration", "group"]);
            let duration = cx.number(wave, "duration", 1.0..=3600.0, None);
            let mut groups = Vec::new();
            for group in cx.tables(wave, "group", 1, 100, |i| {
                format!("group {} of wave {}", i + 1, w + 1)
            }) {
                cx.known_keys(&group, &["enemy", "count", "interval", "delay", "spawn"]);
                let enemy = match cx.string(&group, "enemy", true) {
                    Some((key, at)) => {
                        enemies.iter().position(|e| *e == key).unwrap_or_else(|| {
                            cx.error(
                                at,
                                format!("unknown enemy kind `{key}`; no tribe declares it"),
                            );
                            0
                        })
                    }
                    None => 0,
                };
                let count = cx.integer(&group, "count", 1..=10_000, None) as u32;
                let interval = cx.number(&group, "interval", 0.0..=60.0, None);
                let delay = cx.number(&group, "delay", 0.0..=3600.0, Some(0.0));
                let spawn = cx.integer(&group, "spawn", 0..=(MAX_ENDPOINTS as i64 - 1), Some(0));
                if let (Some(spawns), Some(value)) = (spawns, group.table.get("spawn"))
                    && spawn as usize >= spawns
                {
                    cx.error(
                        value.span().start,
                        format!("spawn {spawn} does not exist: map `{map}` has {spawns} spawn(s), numbered from 0"),
                    );
                }
                groups.push(SpawnGroup {
                    enemy: EnemyKindId(to_u16(enemy)),
                    count,
                    interval,
                    delay,
                    spawn: spawn as u8,
                });
            }
            waves.push(Wave { duration, groups });
        }
        WaveSet {
            prep_seconds,
            early_call_bonus_per_second,
            waves,
            endless,
        }
    }

    fn scenario(&mut self, source: &Source, towers: &[TowerKind], maps: &[MapDef]) -> Scenario {
        let key = stem_of(source);
        let (root, mut cx) = self.parse(source);
        let tab = Tab {
            table: &root,
            at: 0,
            what: format!("scenario `{key}`"),
        };
        cx.known_keys(&tab, &["map", "players", "start_gold", "lives", "tower"]);
        let map = cx.string(&tab, "map", true).and_then(|(name, at)| {
            let found = maps.iter().find(|m| m.key == name);
            if found.is_none() {
                cx.error(at, format!("unknown map `{name}`"));
            }
            found
        });
        let players = cx.integer(&tab, "players", 1..=8, None) as u8;
        let start_gold = tab
            .table
            .get("start_gold")
            .map(|_| cx.integer(&tab, "start_gold", 0..=1_000_000_000, None) as u32);
        let lives = tab
            .table
            .get("lives")
            .map(|_| cx.integer(&tab, "lives", 1..=1_000_000_000, None) as u32);
        // Map cells taken so far, to reject a second tower on one cell and to
        // check that the towers leave every spawn a way out.
        let grid = map.map(|m| &m.grid).filter(|g| !g.is_empty());
        let mut walkable = grid.map(Grid::walkable_mask).unwrap_or_default();
        // A spawn the map itself cuts off is the map's problem, reported
        // there; only blame towers for spawns that could reach a goal.
        let open_spawns: Vec<bool> = grid.map_or(Vec::new(), |g| {
            let reached = reaches_goal(g, &walkable);
            g.spawns().iter().map(|s| reached[g.index(*s)]).collect()
        });
        let mut placed = Vec::new();
        for tower in cx.tables(&tab, "tower", 0, 100_000, |i| format!("tower {}", i + 1)) {
            cx.known_keys(&tower, &["player", "kind", "x", "y", "level"]);
            let player_value = tower.table.get("player");
            let player = cx.integer(&tower, "player", 0..=7, None);
            if let Some(value) = player_value
                && player >= i64::from(players)
                && players > 0
            {
                cx.error(
                    value.span().start,
                    format!("player {player} does not exist: players are 0..{players}"),
                );
            }
            let kind = cx.string(&tower, "kind", true).and_then(|(name, at)| {
                let found = towers.iter().position(|t| t.key == name);
                if found.is_none() {
                    cx.error(at, format!("unknown tower kind `{name}`"));
                }
                found
            });
            let x = cx.integer(&tower, "x", 0..=i64::from(u16::MAX), None);
            let y = cx.integer(&tower, "y", 0..=i64::from(u16::MAX), None);
            let level = cx.integer(&tower, "level", 0..=255, Some(0));
            if let Some(kind) = kind {
                let levels = towers[kind].levels.len();
                if level as usize >= levels && levels > 0 {
                    let at = tower
                        .table
                        .get("level")
                        .map_or(tower.at, |v| v.span().start);
                    cx.error(
                        at,
                        format!(
                            "tower `{}` has levels 0..={}, not {level}",
                            towers[kind].key,
                            levels - 1
                        ),
                    );
                }
            }
            let cell = Cell::new(x as u16, y as u16);
            if let Some(grid) = grid {
                let at = tower.table.get("x").map_or(tower.at, |v| v.span().start);
                if !grid.contains(x as i32, y as i32) {
                    cx.error(
                        at,
                        format!(
                            "({x}, {y}) is outside the {}x{} map",
                            grid.width(),
                            grid.height()
                        ),
                    );
                } else if grid.tile(cell) != Tile::Buildable {
                    cx.error(at, format!("({x}, {y}) is not a buildable cell"));
                } else if !walkable[grid.index(cell)] {
                    cx.error(at, format!("({x}, {y}) already has a tower"));
                } else {
                    walkable[grid.index(cell)] = false;
                    let reached = reaches_goal(grid, &walkable);
                    if let Some(spawn) = grid
                        .spawns()
                        .iter()
                        .zip(&open_spawns)
                        .position(|(s, open)| *open && !reached[grid.index(*s)])
                    {
                        cx.error(
                            at,
                            format!("a tower at ({x}, {y}) would cut every path from spawn {spawn} to the goals"),
                        );
                        walkable[grid.index(cell)] = true;
                    }
                }
            }
            placed.push(ScenarioTower {
                player: player as u8,
                kind: TowerKindId(to_u16(kind.unwrap_or(0))),
                cell,
                level: level as u8,
            });
        }
        Scenario {
            key,
            map: map.map(|m| m.key.clone()).unwrap_or_default(),
            players,
            start_gold,
            lives,
            towers: placed,
        }
    }
}

fn stem_of(source: &Source) -> String {
    source
        .rel
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("")
        .to_owned()
}

fn tower_level(cx: &mut Cx<'_>, tab: &Tab<'_, '_>) -> TowerLevel {
    cx.known_keys(
        tab,
        &[
            "cost",
            "range",
            "reload",
            "damage",
            "damage_type",
            "projectile_speed",
            "splash_radius",
            "slow",
            "dot",
        ],
    );
    let damage_type = match cx.choice(tab, "damage_type", &["physical", "magic", "fire"], None) {
        1 => DamageType::Magic,
        2 => DamageType::Fire,
        _ => DamageType::Physical,
    };
    let slow = cx
        .subtable(tab, "slow", false, format!("`slow` of {}", tab.what))
        .map(|slow| {
            cx.known_keys(&slow, &["factor", "seconds"]);
            Slow {
                factor: cx.number(&slow, "factor", 0.05..=0.95, None),
                seconds: cx.number(&slow, "seconds", 0.1..=30.0, None),
            }
        });
    let dot = cx
        .subtable(tab, "dot", false, format!("`dot` of {}", tab.what))
        .map(|dot| {
            cx.known_keys(&dot, &["per_second", "seconds"]);
            DamageOverTime {
                per_second: cx.number(&dot, "per_second", 0.1..=10_000.0, None),
                seconds: cx.number(&dot, "seconds", 0.1..=30.0, None),
            }
        });
    TowerLevel {
        cost: cx.integer(tab, "cost", 0..=100_000, None) as u32,
        range: cx.number(tab, "range", 0.5..=20.0, None),
        reload: cx.number(tab, "reload", 0.05..=60.0, None),
        damage: cx.number(tab, "damage", 0.0..=100_000.0, None),
        damage_type,
        projectile_speed: cx.number(tab, "projectile_speed", 1.0..=100.0, None),
        splash_radius: cx.number(tab, "splash_radius", 0.0..=5.0, Some(0.0)),
        slow,
        dot,
    }
}

fn enemy_kind(cx: &mut Cx<'_>, tab: &Tab<'_, '_>, key: String) -> EnemyKind {
    cx.known_keys(
        tab,
        &[
            "name",
            "hp",
            "armour",
            "speed",
            "bounty",
            "lives_cost",
            "flying",
            "resist",
        ],
    );
    let resist = cx
        .subtable(tab, "resist", false, format!("`resist` of {}", tab.what))
        .map(|resist| {
            cx.known_keys(&resist, &["physical", "magic", "fire"]);
            Resistances {
                physical: cx.number(&resist, "physical", 0.0..=0.95, Some(0.0)),
                magic: cx.number(&resist, "magic", 0.0..=0.95, Some(0.0)),
                fire: cx.number(&resist, "fire", 0.0..=0.95, Some(0.0)),
            }
        });
    EnemyKind {
        key,
        name: cx.name(tab),
        tribe: TribeId(0),
        hp: cx.number(tab, "hp", 1.0..=1_000_000.0, None),
        armour: cx.number(tab, "armour", 0.0..=1000.0, Some(0.0)),
        speed: cx.number(tab, "speed", 0.1..=20.0, None),
        bounty: cx.integer(tab, "bounty", 0..=10_000, None) as u32,
        lives_cost: cx.integer(tab, "lives_cost", 1..=1000, Some(1)) as u32,
        flying: cx.boolean(tab, "flying", false),
        resist: resist.unwrap_or_default(),
    }
}

/// Byte offset in the file of each character of a multi-line string value,
/// when the source spells the string literally (no escapes); otherwise every
/// character is blamed on the start of the value.
fn string_offsets(
    source: &Source,
    value: &Spanned<DeValue<'_>>,
    text: &str,
) -> impl Fn(usize) -> usize {
    let span = value.span();
    let raw = source.text.get(span.clone()).unwrap_or("");
    let mut start = None;
    for quote in ["'''", "\"\"\"", "'", "\""] {
        if let Some(rest) = raw.strip_prefix(quote) {
            let skip = if quote.len() == 3 {
                if rest.starts_with("\r\n") {
                    2
                } else {
                    usize::from(rest.starts_with('\n'))
                }
            } else {
                0
            };
            if rest[skip..].starts_with(text) {
                start = Some(span.start + quote.len() + skip);
            }
            break;
        }
    }
    let fallback = span.start;
    move |offset| start.map_or(fallback, |s| s + offset)
}

fn drawn_grid(cx: &mut Cx<'_>, value: &Spanned<DeValue<'_>>) -> Option<Grid> {
    let Some(text) = value.get_ref().as_str() else {
        cx.wrong_type(value, "grid", "a multi-line string of rows");
        return None;
    };
    let at = string_offsets(cx.source, value, text);
    // Rows with the byte offset each starts at inside `text`.
    let mut rows: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in text.split('\n') {
        rows.push((offset, line.strip_suffix('\r').unwrap_or(line)));
        offset += line.len() + 1;
    }
    while rows.last().is_some_and(|(_, row)| row.trim().is_empty()) {
        rows.pop();
    }
    let height = rows.len();
    let width = rows.first().map_or(0, |(_, row)| row.chars().count());
    let mut ok = true;
    if !MAP_SIDE.contains(&height) || !MAP_SIDE.contains(&width) {
        cx.error(
            value.span().start,
            format!(
                "grid is {width}x{height}; width and height must each be {}..={}",
                MAP_SIDE.start(),
                MAP_SIDE.end()
            ),
        );
        ok = false;
    }
    let mut tiles = Vec::with_capacity(width * height);
    let (mut spawns, mut goals) = (Vec::new(), Vec::new());
    for (y, (row_start, row)) in rows.iter().enumerate() {
        let count = row.chars().count();
        if count != width {
            // Still read the row so its spawns and goals count: one short
            // row should not also report a missing goal.
            cx.error(
                at(*row_start),
                format!(
                    "grid row {} has {count} cells; the first row has {width}",
                    y + 1
                ),
            );
            ok = false;
        }
        for (x, (byte, ch)) in row.char_indices().enumerate() {
            let cell = Cell::new(to_u16(x), to_u16(y));
            let tile = match ch {
                '#' => Tile::Blocked,
                '.' => Tile::Buildable,
                '=' => Tile::Path,
                'S' => {
                    spawns.push(cell);
                    Tile::Path
                }
                'G' => {
                    goals.push(cell);
                    Tile::Path
                }
                other => {
                    cx.error(
                        at(row_start + byte),
                        format!("unknown grid character {other:?}; use # . = S G"),
                    );
                    ok = false;
                    Tile::Blocked
                }
            };
            tiles.push(tile);
        }
    }
    ok &= endpoint_counts(cx, value.span().start, spawns.len(), goals.len());
    ok.then(|| Grid::new(to_u16(width), to_u16(height), tiles, spawns, goals))
}

fn endpoint_counts(cx: &mut Cx<'_>, at: usize, spawns: usize, goals: usize) -> bool {
    let mut ok = true;
    for (what, count) in [("spawn", spawns), ("goal", goals)] {
        if count == 0 {
            cx.error(at, format!("map has no {what}"));
            ok = false;
        } else if count > MAX_ENDPOINTS {
            cx.error(
                at,
                format!("map has {count} {what}s; at most {MAX_ENDPOINTS}"),
            );
            ok = false;
        }
    }
    ok
}

/// Adds the file's `spawns` and `goals` to an imported grid; they become
/// path cells so no tower can sit on them.
fn imported_grid(cx: &mut Cx<'_>, tab: &Tab<'_, '_>, grid: Grid) -> Option<Grid> {
    if !MAP_SIDE.contains(&usize::from(grid.width()))
        || !MAP_SIDE.contains(&usize::from(grid.height()))
    {
        let at = tab.table.get("import").map_or(0, |v| v.span().start);
        cx.error(
            at,
            format!(
                "imported grid is {}x{}; sides must be 4..=1024",
                grid.width(),
                grid.height()
            ),
        );
        return None;
    }
    let mut tiles = grid.tiles().to_vec();
    let mut ok = true;
    let mut lists = [Vec::new(), Vec::new()];
    for (list, key) in lists.iter_mut().zip(["spawns", "goals"]) {
        let Some((array, _)) = cx.array(tab, key, true) else {
            ok = false;
            continue;
        };
        for item in array.iter() {
            let Some((x, y, at)) = cx.cell(item, key) else {
                ok = false;
                continue;
            };
            if !grid.contains(x as i32, y as i32) {
                cx.error(
                    at,
                    format!(
                        "({x}, {y}) is outside the {}x{} grid",
                        grid.width(),
                        grid.height()
                    ),
                );
                ok = false;
                continue;
            }
            let cell = Cell::new(x as u16, y as u16);
            let index = grid.index(cell);
            if tiles[index] == Tile::Blocked {
                cx.error(at, format!("({x}, {y}) is blocked terrain"));
                ok = false;
            } else if tiles[index] == Tile::Path {
                cx.error(at, format!("({x}, {y}) is already a spawn or goal"));
                ok = false;
            }
            tiles[index] = Tile::Path;
            list.push(cell);
        }
    }
    let [spawns, goals] = lists;
    ok &= endpoint_counts(cx, tab.at, spawns.len(), goals.len());
    ok.then(|| Grid::new(grid.width(), grid.height(), tiles, spawns, goals))
}

/// Which cells can walk to some goal, by the movement rules the game uses:
/// the simulation's own flow field, so content and play never disagree.
fn reaches_goal(grid: &Grid, walkable: &[bool]) -> Vec<bool> {
    let goals: Vec<usize> = grid
        .goals()
        .iter()
        .map(|goal| grid.index(*goal))
        .filter(|&goal| walkable[goal])
        .collect();
    let mut field = FlowField::new(grid.width(), grid.height());
    field.compute(walkable, &goals);
    (0..grid.len())
        .map(|index| field.reachable(index))
        .collect()
}

#[cfg(test)]
mod tests;
