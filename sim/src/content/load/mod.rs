//! Reads `assets/` and checks every rule a designer can break, reporting all
//! problems of all files in one run with the line and column at fault, so a
//! designer fixes a whole batch at once instead of one error per attempt.
//!
//! Files are parsed with spans (`toml::de::DeTable`) and walked by hand rather
//! than through serde, because serde stops at the first error and loses the
//! position of keys it does not know. A problem is recorded and the walk goes
//! on with a placeholder value; since any recorded problem fails the load, a
//! placeholder never reaches a session.
//!
//! This module finds the files, tells their kinds apart and loads them in
//! dependency order. `walker` is the span-keeping walk every kind shares;
//! each kind has its own module with its keys and rules: `towers`, `tribes`
//! (with their enemy kinds), `maps` (drawn or imported grids, their spawns,
//! goals and paths), `waves`, `scenarios`.

mod maps;
mod scenarios;
mod towers;
mod tribes;
mod walker;
mod warnings;
mod waves;

pub use walker::{ContentError, Diagnostic};
pub use warnings::WarningRules;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use toml::de::DeTable;

use self::maps::MapDraft;
use self::walker::{Cx, Source, valid_key};
use super::{Content, ContentFiles, MapDef, RulesCache, Scenario, WaveSet};
use crate::grid::Grid;
use crate::hash::StableHasher;

/// Loads and validates every content file under `dir`.
///
/// # Errors
/// A file cannot be read, or the files break rules (every problem listed).
pub fn load_dir(dir: &Path) -> Result<Content, ContentError> {
    ContentFiles::read_dir(dir)?.load()
}

/// Content that loaded, and what in it will likely play badly.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The content.
    pub content: Content,
    /// Warnings, sorted by file and position; they do not stop a server.
    pub warnings: Vec<Diagnostic>,
}

/// Validates files already read (relative paths, sorted), builds the
/// content they describe and weighs it against `rules`.
pub(super) fn load_files(
    files: &[(PathBuf, Vec<u8>)],
    rules: WarningRules,
) -> Result<Checked, ContentError> {
    let mut loader = Loader {
        rules,
        ..Loader::default()
    };
    let content = loader.load(files);
    let sort = |found: &mut Vec<Diagnostic>| {
        found.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    };
    if !loader.report.is_empty() {
        let mut diagnostics = loader.report;
        sort(&mut diagnostics);
        return Err(ContentError::Invalid(diagnostics));
    }
    loader.warn_across_files(&content);
    let mut warnings = loader.warnings;
    sort(&mut warnings);
    Ok(Checked { content, warnings })
}

/// The path with `/` separators, so the version is the same on every OS.
pub(super) fn slash_path(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

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

/// One load: files are checked in dependency order (towers, tribes, maps,
/// waves, scenarios) so references resolve against what came before, and
/// every problem lands in one shared report.
#[derive(Default)]
struct Loader {
    report: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
    places: warnings::Places,
    rules: WarningRules,
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
            let key = source.stem();
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
            rules: RulesCache::default(),
        }
    }

    fn parse<'a, 's: 'a>(&'a mut self, source: &'s Source) -> (DeTable<'s>, Cx<'a>) {
        let (root, errors) = DeTable::parse_recoverable(&source.text);
        let mut cx = Cx {
            source,
            report: &mut self.report,
            warnings: &mut self.warnings,
            places: &mut self.places,
            rules: self.rules,
        };
        for error in errors {
            let at = error.span().map_or(0, |span| span.start);
            cx.error(at, format!("TOML syntax: {}", error.message().trim()));
        }
        (root.into_inner(), cx)
    }
}

#[cfg(test)]
mod tests;
