//! A content directory's files as bytes, before they are checked: what
//! [`load_dir`](super::load_dir) reads, and what a server keeps of each
//! content version it ran, so a session built from content that has since
//! changed on disk can be rebuilt from exactly the files it started with.
//!
//! The bundle form ([`ContentFiles::encode`]) is a format byte, then the
//! file count and each file's path and bytes, every length an unsigned
//! LEB128 varint. Decoding never trusts its input: a bundle cut short, a
//! length past its end or a path that climbs out of the directory is an
//! error, never a panic.

use std::path::{Component, Path, PathBuf};

use super::load::{Checked, ContentError, WarningRules};
use crate::leb128;

/// The bundle layout written by [`ContentFiles::encode`].
const BUNDLE_FORMAT: u8 = 1;

/// One content file: its path relative to the content directory and its bytes.
pub type ContentFile = (PathBuf, Vec<u8>);

/// Every file of a content directory, paths relative to it and sorted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentFiles {
    files: Vec<ContentFile>,
}

/// Why bytes are not a content bundle.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// Written by a later version of this format.
    #[error("content bundle format {0} is not known to this version (expected {BUNDLE_FORMAT})")]
    Format(u8),
    /// A length runs past the end, or a varint is malformed.
    #[error("content bundle cut short or corrupt")]
    Truncated,
    /// A path that is not UTF-8 or not a plain relative path.
    #[error("content bundle names a bad path {0:?}")]
    Path(String),
}

impl From<leb128::Leb128Error> for BundleError {
    fn from(_: leb128::Leb128Error) -> Self {
        BundleError::Truncated
    }
}

impl ContentFiles {
    /// Reads every file under `dir`.
    ///
    /// # Errors
    /// A directory or file cannot be read.
    pub fn read_dir(dir: &Path) -> Result<Self, ContentError> {
        let mut paths = Vec::new();
        list_files(dir, Path::new(""), &mut paths)?;
        paths.sort();
        let mut files = Vec::with_capacity(paths.len());
        for rel in paths {
            let path = dir.join(&rel);
            let bytes = std::fs::read(&path).map_err(|source| ContentError::Io { path, source })?;
            files.push((rel, bytes));
        }
        Ok(Self { files })
    }

    /// Checks the files and builds the content they describe.
    ///
    /// # Errors
    /// Every rule the files break, with file, line and column.
    pub fn load(&self) -> Result<super::Content, ContentError> {
        Ok(self.check(WarningRules::default())?.content)
    }

    /// [`Self::load`], with the warnings `rules` ask for: content that
    /// loads but will likely play badly.
    ///
    /// # Errors
    /// Every rule the files break, with file, line and column.
    pub fn check(&self, rules: WarningRules) -> Result<Checked, ContentError> {
        super::load::load_files(&self.files, rules)
    }

    /// The files' bytes to edit in memory before loading them (balance runs
    /// that vary a value); paths stay as read.
    pub fn files_mut(&mut self) -> &mut [ContentFile] {
        &mut self.files
    }

    /// The bundle form, for storing a content version beside the sessions
    /// built from it.
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .files
            .iter()
            .map(|(path, bytes)| path.as_os_str().len() + bytes.len() + 10)
            .sum();
        let mut out = Vec::with_capacity(size + 10);
        out.push(BUNDLE_FORMAT);
        leb128::write(&mut out, self.files.len() as u64);
        for (path, bytes) in &self.files {
            let path = super::load::slash_path(path);
            leb128::write(&mut out, path.len() as u64);
            out.extend_from_slice(path.as_bytes());
            leb128::write(&mut out, bytes.len() as u64);
            out.extend_from_slice(bytes);
        }
        out
    }

    /// Reads a bundle written by [`Self::encode`].
    ///
    /// # Errors
    /// An unknown format, a bundle cut short, or a path that is not a plain
    /// relative path.
    pub fn decode(bytes: &[u8]) -> Result<Self, BundleError> {
        let (&format, mut rest) = bytes.split_first().ok_or(BundleError::Truncated)?;
        if format != BUNDLE_FORMAT {
            return Err(BundleError::Format(format));
        }
        let count;
        (count, rest) = leb128::read(rest)?;
        let mut files = Vec::new();
        for _ in 0..count {
            let path;
            (path, rest) = take(rest)?;
            let path = std::str::from_utf8(path)
                .map_err(|_| BundleError::Path(String::from_utf8_lossy(path).into_owned()))?;
            let rel = PathBuf::from(path);
            if path.is_empty()
                || !rel
                    .components()
                    .all(|part| matches!(part, Component::Normal(_)))
            {
                return Err(BundleError::Path(path.to_owned()));
            }
            let contents;
            (contents, rest) = take(rest)?;
            files.push((rel, contents.to_vec()));
        }
        if !rest.is_empty() {
            return Err(BundleError::Truncated);
        }
        files.sort();
        Ok(Self { files })
    }
}

/// A length-prefixed run of bytes from the front of `bytes`, and the rest.
fn take(bytes: &[u8]) -> Result<(&[u8], &[u8]), BundleError> {
    let (len, rest) = leb128::read(bytes)?;
    let len = usize::try_from(len).map_err(|_| BundleError::Truncated)?;
    if len > rest.len() {
        return Err(BundleError::Truncated);
    }
    Ok(rest.split_at(len))
}

/// Hidden files and editors' swap, lock and backup files (`.towers.toml.swp`,
/// `.#towers.toml`, `#towers.toml#`, `towers.toml~`): they come and go
/// while a designer edits, and are no content, so a server watching the
/// directory must not refuse the content because of them.
fn is_editor_scratch(name: &str) -> bool {
    name.starts_with('.') || name.starts_with('#') || name.ends_with('~')
}

fn list_files(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), ContentError> {
    let full = dir.join(rel);
    let io = |source| ContentError::Io {
        path: full.clone(),
        source,
    };
    for entry in std::fs::read_dir(&full).map_err(io)? {
        let entry = entry.map_err(io)?;
        if is_editor_scratch(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let rel = rel.join(entry.file_name());
        if entry.file_type().map_err(io)?.is_dir() {
            list_files(dir, &rel, out)?;
        } else {
            out.push(rel);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn assets() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
    }

    #[test]
    fn a_bundle_rebuilds_the_same_content_version() {
        let files = ContentFiles::read_dir(&assets()).unwrap();
        let bundle = files.encode();
        let decoded = ContentFiles::decode(&bundle).unwrap();
        assert_eq!(decoded, files);
        assert_eq!(
            decoded.load().unwrap().version,
            files.load().unwrap().version
        );
    }

    #[test]
    fn editors_scratch_files_are_not_content() {
        for name in [
            ".towers.toml.swp",
            ".#towers.toml",
            "#towers.toml#",
            "towers.toml~",
        ] {
            assert!(is_editor_scratch(name), "{name}");
        }
        for name in ["towers.toml", "README.md", "arena.map"] {
            assert!(!is_editor_scratch(name), "{name}");
        }
    }

    #[test]
    fn damaged_bundles_are_errors() {
        let bundle = ContentFiles::read_dir(&assets()).unwrap().encode();
        for cut in [0, 1, 2, bundle.len() / 2, bundle.len() - 1] {
            assert!(
                ContentFiles::decode(&bundle[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut later = bundle.clone();
        later[0] = 9;
        assert!(matches!(
            ContentFiles::decode(&later),
            Err(BundleError::Format(9))
        ));
        let mut climbing = vec![BUNDLE_FORMAT, 1];
        for field in [&b"../towers.toml"[..], b"x"] {
            leb128::write(&mut climbing, field.len() as u64);
            climbing.extend_from_slice(field);
        }
        assert!(matches!(
            ContentFiles::decode(&climbing),
            Err(BundleError::Path(_))
        ));
    }
}
