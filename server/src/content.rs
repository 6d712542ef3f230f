//! Content as a server holds it: read from the assets directory with its
//! files, and every version a session was started from kept in the
//! database, so a saved session is resumed on exactly the content it
//! started with even after the files on disk changed (a live reload, or a
//! restart on edited assets).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, Weak};

use anyhow::Context as _;
use rampart_persistence::{Database, DbError, MapRecord};
use rampart_sim::Content;
use rampart_sim::content::{BundleError, ContentError, ContentFiles};

/// Content read from a directory: its files, as the database keeps each
/// version, and the content they build.
pub struct Loaded {
    /// The files, as read.
    pub files: ContentFiles,
    /// What they build.
    pub content: Arc<Content>,
}

impl Loaded {
    /// Reads and checks `dir`, and that it is content a server can run
    /// (at least one map: matchmaking without a map opens the first).
    ///
    /// # Errors
    /// A file cannot be read, or the content breaks rules (every problem
    /// listed, with file, line and column).
    pub fn read(dir: &Path) -> Result<Self, ContentError> {
        let files = ContentFiles::read_dir(dir)?;
        let content = files.load()?;
        if content.maps.is_empty() {
            return Err(ContentError::Invalid(vec![
                rampart_sim::content::Diagnostic {
                    file: "maps".into(),
                    line: 1,
                    column: 1,
                    message: "a server needs at least one map (maps/*.toml)".to_owned(),
                },
            ]));
        }
        Ok(Self {
            files,
            content: Arc::new(content),
        })
    }

    /// [`Self::read`] for the binary: on failure the error points at
    /// `rampart check`, which lists every problem with its position.
    ///
    /// # Errors
    /// As [`Self::read`].
    pub fn read_for_startup(dir: &Path) -> anyhow::Result<Self> {
        Self::read(dir).with_context(|| {
            format!(
                "loading content from {} (run `rampart check {}` for details)",
                dir.display(),
                dir.display()
            )
        })
    }
}

/// Why a content version could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum VersionError {
    /// The database failed.
    #[error("reading content version {version:016x}: {source}")]
    Database {
        /// The version asked for.
        version: u64,
        /// What the database said.
        #[source]
        source: DbError,
    },
    /// The stored bundle is damaged or of a later format.
    #[error("content version {version:016x} is stored damaged: {source}")]
    Bundle {
        /// The version asked for.
        version: u64,
        /// What is wrong with it.
        #[source]
        source: BundleError,
    },
    /// The stored files no longer load (a rule this build adds) or load
    /// to another version.
    #[error("content version {version:016x} as stored does not load to itself: {problem}")]
    Mismatch {
        /// The version asked for.
        version: u64,
        /// The load error, or the version it loaded to.
        problem: String,
    },
}

/// Every content version a session here may need: the files of each are
/// stored when a server first runs it, and read back when a session of
/// that version is resumed. Versions read back are shared while sessions
/// use them, and dropped with their last session. Cheap to clone.
#[derive(Clone)]
pub struct ContentVersions {
    database: Database,
    shared: Arc<Mutex<BTreeMap<u64, Weak<Content>>>>,
}

impl ContentVersions {
    /// Versions kept in `database`.
    pub fn new(database: Database) -> Self {
        Self {
            database,
            shared: Arc::default(),
        }
    }

    /// Stores `loaded`'s files under its version and its maps' metadata
    /// (`/v1/maps`), before any session is built from it.
    ///
    /// # Errors
    /// The database fails.
    pub async fn record(&self, loaded: &Loaded) -> Result<(), DbError> {
        let content = &loaded.content;
        self.database
            .store_content_version(content.version, &loaded.files.encode())
            .await?;
        for map in &content.maps {
            let record = MapRecord {
                key: map.key.clone(),
                name: map.name.clone(),
                content_hash: content.version,
                width: u32::from(map.grid.width()),
                height: u32::from(map.grid.height()),
            };
            self.database.upsert_map(&record).await?;
        }
        self.share(content);
        Ok(())
    }

    /// Content `version`: one a session here still uses, else rebuilt from
    /// its stored files; `None` when it was never stored (a session of a
    /// server older than stored versions).
    ///
    /// # Errors
    /// The database fails, or the stored files are damaged or no longer
    /// load to this version.
    pub async fn get(&self, version: u64) -> Result<Option<Arc<Content>>, VersionError> {
        if let Some(content) = self.shared(version) {
            return Ok(Some(content));
        }
        let Some(bundle) = self
            .database
            .content_version_files(version)
            .await
            .map_err(|source| VersionError::Database { version, source })?
        else {
            return Ok(None);
        };
        let files = ContentFiles::decode(&bundle)
            .map_err(|source| VersionError::Bundle { version, source })?;
        let mismatch = |problem| VersionError::Mismatch { version, problem };
        let content = match tokio::task::spawn_blocking(move || files.load()).await {
            Ok(Ok(content)) if content.version == version => content,
            Ok(Ok(content)) => {
                return Err(mismatch(format!("it loads to {:016x}", content.version)));
            }
            Ok(Err(error)) => return Err(mismatch(error.to_string())),
            Err(error) => return Err(mismatch(format!("loading it failed: {error}"))),
        };
        let content = Arc::new(content);
        self.share(&content);
        Ok(Some(content))
    }

    fn shared(&self, version: u64) -> Option<Arc<Content>> {
        let shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.get(&version).and_then(Weak::upgrade)
    }

    fn share(&self, content: &Arc<Content>) {
        let mut shared = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        shared.retain(|_, weak| weak.strong_count() > 0);
        shared.insert(content.version, Arc::downgrade(content));
    }
}
