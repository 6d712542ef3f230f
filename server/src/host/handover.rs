//! The persistence seam: where a session goes when this instance lets go of
//! it (drain, end). The persistence layer fills this trait with Redis and
//! database stores; until then `FileHandOver` writes each session's command
//! log, which `rampart replay` (and a future instance) can resume from.

use std::path::{Path, PathBuf};

use super::SessionId;

/// Everything needed to resume or audit a session elsewhere.
#[derive(Clone, Debug)]
pub struct HandOverRecord {
    /// The session.
    pub id: SessionId,
    /// Why it is handed over: `drained`, or how it ended.
    pub reason: &'static str,
    /// Ticks stepped.
    pub tick: u64,
    /// State hash at that tick.
    pub state_hash: u64,
    /// The command log in its text format, ending with the `end` line:
    /// replaying it rebuilds the session exactly.
    pub log: String,
}

/// Why a hand-over failed.
#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A store that takes sessions this instance lets go of. Called from the
/// host's hand-over thread, never from the tick.
pub trait HandOver: Send {
    /// Stores one session durably.
    ///
    /// # Errors
    /// When the store cannot take it.
    fn hand_over(&mut self, record: &HandOverRecord) -> Result<(), HandOverError>;
}

/// Writes `<dir>/<id>.log`, replaced atomically (write then rename).
#[derive(Debug)]
pub struct FileHandOver {
    dir: PathBuf,
}

impl FileHandOver {
    /// Stores under `dir`, created on first use.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> HandOverError + '_ {
    move |source| HandOverError::Io {
        path: path.to_owned(),
        source,
    }
}

impl HandOver for FileHandOver {
    fn hand_over(&mut self, record: &HandOverRecord) -> Result<(), HandOverError> {
        std::fs::create_dir_all(&self.dir).map_err(io_error(&self.dir))?;
        let path = self.dir.join(format!("{}.log", record.id));
        let partial = self.dir.join(format!("{}.log.partial", record.id));
        let text = format!(
            "# handed over: {} at tick {}\n{}",
            record.reason, record.tick, record.log
        );
        std::fs::write(&partial, text).map_err(io_error(&partial))?;
        std::fs::rename(&partial, &path).map_err(io_error(&path))
    }
}
