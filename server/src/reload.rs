//! Live content reload for a designer's server: the assets directory read
//! and checked again, on a change under it (`watch_assets`) or on
//! `POST /v1/admin/reload`.
//!
//! Valid content is stored as a new content version (so sessions built
//! from it can be resumed after another change or a restart) and new
//! sessions are built from it; running sessions keep the content they
//! started with, and each tells its version (`content_version` in the API,
//! the welcome on the wire). Invalid content changes nothing: the server
//! goes on serving what it served, and every problem is logged as
//! `file:line:column: message`, as `rampart check` prints it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use rampart_sim::content::{ContentChanges, ContentError, Diagnostic};
use serde::Serialize;

use crate::content::{ContentVersions, Loaded};
use crate::host::{ContentVersion, HostHandle};

/// How long the directory must stay quiet before a change is reloaded:
/// an editor's save (a temporary file, a rename) or a `git checkout` is a
/// burst of events that should cost one reload, and a designer should see
/// the result at once.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Name of the reload counter, by trigger and result.
pub const RELOADS: &str = "rampart_content_reloads_total";

/// What asked for a reload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    /// A change under the assets directory.
    Watcher,
    /// `POST /v1/admin/reload`.
    Admin,
}

impl Trigger {
    /// Its metric label.
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Watcher => "watch",
            Trigger::Admin => "admin",
        }
    }
}

/// How a reload went: what the log says and what `POST /v1/admin/reload`
/// answers (as JSON, tagged by `outcome`).
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// New sessions are built from the new content.
    Reloaded {
        /// The new content.
        version: ContentVersion,
        /// The content served before, which running sessions keep.
        previous: ContentVersion,
        /// Maps, towers, enemies and scenarios added, removed, changed.
        changes: Box<ContentChanges>,
    },
    /// The files build the content already served (only the README
    /// changed, or a file was saved as it was).
    Unchanged {
        /// The content served.
        version: ContentVersion,
    },
    /// The files break rules; nothing changed.
    Invalid {
        /// The content still served.
        serving: ContentVersion,
        /// Every problem, as `file:line:column: message`.
        problems: Vec<String>,
    },
    /// The files could not be read, or the new version could not be
    /// stored; nothing changed.
    Failed {
        /// The content still served.
        serving: ContentVersion,
        /// What went wrong.
        error: String,
    },
}

impl ReloadOutcome {
    /// Its metric label.
    pub fn label(&self) -> &'static str {
        match self {
            ReloadOutcome::Reloaded { .. } => "reloaded",
            ReloadOutcome::Unchanged { .. } => "unchanged",
            ReloadOutcome::Invalid { .. } => "invalid",
            ReloadOutcome::Failed { .. } => "failed",
        }
    }
}

/// Reloads the assets directory into the host.
pub struct Reloader {
    dir: PathBuf,
    host: HostHandle,
    versions: ContentVersions,
    /// One reload at a time: the watcher's and an admin's would otherwise
    /// race to replace the content.
    running: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Reloads `dir` into `host`, storing each new version in `versions`.
    pub fn new(dir: PathBuf, host: HostHandle, versions: ContentVersions) -> Self {
        Self {
            dir,
            host,
            versions,
            running: tokio::sync::Mutex::new(()),
        }
    }

    /// Reads and checks the directory; on success new sessions use what it
    /// holds. Logs and counts the outcome.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let _one_at_a_time = self.running.lock().await;
        let serving = self.host.content();
        let dir = self.dir.clone();
        let outcome = match tokio::task::spawn_blocking(move || Loaded::read(&dir)).await {
            Ok(Ok(loaded)) if loaded.content.version == serving.version => {
                ReloadOutcome::Unchanged {
                    version: ContentVersion(serving.version),
                }
            }
            Ok(Ok(loaded)) => match self.versions.record(&loaded).await {
                Ok(()) => {
                    self.host.replace_content(loaded.content.clone());
                    ReloadOutcome::Reloaded {
                        version: ContentVersion(loaded.content.version),
                        previous: ContentVersion(serving.version),
                        changes: Box::new(ContentChanges::between(&serving, &loaded.content)),
                    }
                }
                Err(error) => ReloadOutcome::Failed {
                    serving: ContentVersion(serving.version),
                    error: format!(
                        "storing content version {:016x} in the database: {error}",
                        loaded.content.version
                    ),
                },
            },
            Ok(Err(ContentError::Invalid(problems))) => ReloadOutcome::Invalid {
                serving: ContentVersion(serving.version),
                problems: problems
                    .into_iter()
                    .map(|problem| self.located(problem).to_string())
                    .collect(),
            },
            Ok(Err(error)) => ReloadOutcome::Failed {
                serving: ContentVersion(serving.version),
                error: error.to_string(),
            },
            Err(error) => ReloadOutcome::Failed {
                serving: ContentVersion(serving.version),
                error: format!("reading the content stopped: {error}"),
            },
        };
        report(trigger, &outcome);
        outcome
    }

    /// The problem with its file named as the server was told the
    /// directory, so a designer can open it from the log line.
    fn located(&self, problem: Diagnostic) -> Diagnostic {
        Diagnostic {
            file: self.dir.join(&problem.file),
            ..problem
        }
    }

    /// Reloads after every burst of changes under the directory, until the
    /// returned guard is dropped.
    ///
    /// # Errors
    /// The directory cannot be watched (missing, or the system's watch
    /// limit reached).
    pub fn watch(self: &Arc<Self>) -> Result<Watching, notify_debouncer_mini::notify::Error> {
        // One slot: a change while a reload runs queues exactly one more,
        // which reads the files as they are by then.
        let (changed, mut changes) = tokio::sync::mpsc::channel::<()>(1);
        let mut debouncer =
            new_debouncer(DEBOUNCE, move |result: DebounceEventResult| match result {
                Ok(events) if !events.is_empty() => {
                    let _ = changed.try_send(());
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "watching the content directory"),
            })?;
        debouncer
            .watcher()
            .watch(&self.dir, RecursiveMode::Recursive)?;
        let reloader = self.clone();
        let task = tokio::spawn(async move {
            while changes.recv().await.is_some() {
                reloader.reload(Trigger::Watcher).await;
            }
        });
        tracing::info!(assets = %self.dir.display(), "watching the content directory: changes reload it");
        Ok(Watching {
            _debouncer: debouncer,
            task,
        })
    }
}

/// A running watch; dropping it stops watching.
pub struct Watching {
    _debouncer: Debouncer<RecommendedWatcher>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn report(trigger: Trigger, outcome: &ReloadOutcome) {
    metrics::counter!(RELOADS, "trigger" => trigger.label(), "result" => outcome.label())
        .increment(1);
    let trigger = trigger.label();
    match outcome {
        ReloadOutcome::Reloaded {
            version,
            previous,
            changes,
        } => tracing::info!(
            trigger,
            %version,
            %previous,
            %changes,
            "content reloaded: new sessions use it, running sessions keep theirs"
        ),
        ReloadOutcome::Unchanged { version } => {
            tracing::info!(trigger, %version, "content reload: nothing changed");
        }
        ReloadOutcome::Invalid { serving, problems } => {
            for problem in problems {
                tracing::error!(trigger, "content problem: {problem}");
            }
            tracing::error!(
                trigger,
                problems = problems.len(),
                %serving,
                "content reload refused: still serving the previous content"
            );
        }
        ReloadOutcome::Failed { serving, error } => tracing::error!(
            trigger,
            %error,
            %serving,
            "content reload failed: still serving the previous content"
        ),
    }
}
