//! The server's stores: opening them from the configuration, the
//! write-behind persister the host hands sessions to, and adoption, which
//! resumes sessions whose owner is gone.
//!
//! Adoption runs once at startup (before the API opens), and then, with
//! Redis, every third of a lease: a running session in the database whose
//! lease nobody holds has lost its owner (crashed, or drained and released).
//! The adopter takes the lease (`SET NX`: one instance wins), claims the
//! session in the database (the new epoch fences the old owner out of both
//! stores), reads the newest snapshot with the commands since, and hands the
//! rebuilt session to the host. Without Redis there are no leases: the one
//! instance using the database resumes every running session at startup.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rampart_persistence::{
    Database, DbError, HotError, HotOptions, HotState, HotStore, MatchOutcome, PersistConfig,
    Persister,
};
use rampart_sim::log::{CommandLog, LogEnd, LogEntry};
use rampart_sim::{Content, SessionConfig};

use crate::config::Config;
use crate::content::{ContentVersions, Loaded, VersionError};
use crate::host::{HostError, HostHandle, ResumeError, SaveCadence, Saves, SessionId, resume};

/// The opened stores and this instance's name as an owner.
#[derive(Clone)]
pub struct Stores {
    /// The durable store (PostgreSQL, or the embedded SQLite file).
    pub database: Database,
    /// The hot store and leases, when configured.
    pub hot: Option<HotStore>,
    /// The owner name written into leases and the database.
    pub instance: String,
    /// How long a lease lasts unrenewed.
    pub lease: Duration,
    /// The content versions sessions were started from.
    pub versions: ContentVersions,
}

/// The database URL the configuration names, or the embedded default.
fn database_location(config: &Config) -> String {
    match &config.database_url {
        Some(url) => url
            .strip_prefix("sqlite://")
            .map_or_else(|| url.clone(), str::to_owned),
        None => config.data_dir.join("rampart.db").display().to_string(),
    }
}

/// Opens the database and applies the migrations (`rampart migrate` and
/// server startup).
///
/// # Errors
/// The database cannot be opened or migrated; the message names it.
pub async fn open_database(config: &Config) -> anyhow::Result<Database> {
    let location = database_location(config);
    let shown = redact(&location);
    let database = Database::open(&location)
        .await
        .with_context(|| format!("opening the database {shown}"))?;
    database.migrate().await.with_context(|| {
        format!("migrating the database {shown} (is it running and reachable?)")
    })?;
    tracing::info!(
        backend = database.backend_name(),
        database = %shown,
        "database ready"
    );
    Ok(database)
}

/// Hides a password in a URL for logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// `rampart migrate`: applies the schema and exits.
///
/// # Errors
/// The database cannot be opened or migrated.
pub fn migrate(args: &crate::config::ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    let config =
        Config::load(args, &|key| std::env::var(key).ok()).context("invalid configuration")?;
    crate::telemetry::init_logging(config.log_format)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the IO runtime")?;
    runtime.block_on(open_database(&config))?;
    println!("database schema is up to date");
    Ok(std::process::ExitCode::SUCCESS)
}

/// Arguments of `rampart export-log`.
#[derive(clap::Args)]
pub struct ExportLogArgs {
    /// Session id (16 hex digits, as the API shows it).
    session: String,
    /// The server's configuration: the database (--database-url,
    /// DATABASE_URL, or the embedded default under --data-dir) and the
    /// content (--assets).
    #[command(flatten)]
    serve: crate::config::ServeArgs,
}

/// `rampart export-log`: prints the command log of a session's latest
/// checkpoint (from its start, whichever instances ran it), ending with the
/// checkpoint's tick and state hash, so `rampart replay` re-runs it and
/// checks it reaches the same state. For bug reports and audits.
///
/// # Errors
/// Unknown session, no checkpoint, or a log this version cannot read.
pub fn export_log(args: &ExportLogArgs) -> anyhow::Result<std::process::ExitCode> {
    let config = Config::load(&args.serve, &|key| std::env::var(key).ok())
        .context("invalid configuration")?;
    let id: SessionId = args
        .session
        .parse()
        .with_context(|| format!("{:?} is not a session id (16 hex digits)", args.session))?;
    let content = crate::load_content(&config.assets)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the IO runtime")?;
    let (epoch, log) = runtime.block_on(async {
        let database = Database::open(&database_location(&config))
            .await
            .context("opening the database")?;
        recorded_log(&database, &content, id).await
    })?;
    print!(
        "# session {id}, checkpoint of owner epoch {epoch}\n{}",
        log.to_text(&content)
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// A session's command log as the database recorded it: the session's
/// settings, every command logged with its checkpoints, and the latest
/// checkpoint's tick and state hash as the end; with the epoch of the
/// owner that wrote that checkpoint.
///
/// # Errors
/// Unknown session, no checkpoint, a line this version cannot read, or the
/// database failing.
pub async fn recorded_log(
    database: &Database,
    content: &Content,
    id: SessionId,
) -> anyhow::Result<(u64, CommandLog)> {
    let context = || format!("reading session {id}'s log");
    let record = database
        .session(id.0)
        .await
        .with_context(context)?
        .with_context(|| format!("session {id} is not in the database"))?;
    let checkpoint = database
        .load_checkpoint(id.0)
        .await
        .with_context(context)?
        .with_context(|| format!("session {id} has no checkpoint"))?;
    let lines = database.command_log(id.0).await.with_context(context)?;
    let row = record.row;
    let mut log = CommandLog::new(
        content,
        SessionConfig {
            map: row.map,
            scenario: row.scenario,
            players: row.players,
            seed: row.seed,
            tick_hz: u32::from(row.tick_hz),
        },
    );
    log.content_version = row.content_version;
    for line in lines {
        let text = std::str::from_utf8(&line.command)
            .map_err(|_| anyhow::anyhow!("a command at tick {} is not UTF-8", line.tick))
            .with_context(context)?;
        log.entries
            .push(LogEntry::parse_line(text, content).with_context(context)?);
    }
    log.end = Some(LogEnd {
        ticks: checkpoint.tick,
        state_hash: checkpoint.state_hash,
    });
    Ok((checkpoint.epoch, log))
}

impl Stores {
    /// Opens every configured store, migrates the database, and records the
    /// content (its files, for sessions resumed after it changes, and its
    /// maps).
    ///
    /// # Errors
    /// A store is unreachable or misconfigured; the message says which.
    pub async fn open(config: &Config, loaded: &Loaded) -> anyhow::Result<Self> {
        let database = open_database(config).await?;
        let versions = ContentVersions::new(database.clone());
        versions
            .record(loaded)
            .await
            .context("recording the content and its maps in the database")?;
        let hot = match &config.redis_url {
            Some(url) => {
                let options = HotOptions {
                    prefix: config.redis_prefix.clone(),
                    ..HotOptions::default()
                };
                let hot = HotStore::open(url, options).await.with_context(|| {
                    format!("connecting to Redis at {} (is it running?)", redact(url))
                })?;
                tracing::info!(redis = %redact(url), "hot store ready");
                Some(hot)
            }
            None => {
                tracing::info!(
                    "no REDIS_URL: session snapshots go to the database and sessions hold no \
                     leases (run one instance per database)"
                );
                None
            }
        };
        Ok(Self {
            database,
            hot,
            instance: config
                .instance_id
                .clone()
                .unwrap_or_else(default_instance_id),
            lease: Duration::from_millis(config.lease_ms),
            versions,
        })
    }

    /// Starts the write-behind persister on `runtime` and returns it with
    /// the host's end of it.
    pub fn start_persister(
        &self,
        config: &Config,
        runtime: &tokio::runtime::Handle,
    ) -> (Persister, Saves) {
        let persist_config = PersistConfig {
            instance: self.instance.clone(),
            lease_ttl: self.lease,
            drain_deadline: config.drain_deadline(),
            ..PersistConfig::default()
        };
        let (persister, handle, events) = Persister::start(
            persist_config,
            Some(self.database.clone()),
            self.hot.clone(),
            runtime,
        );
        (
            persister,
            Saves {
                handle,
                events,
                cadence: SaveCadence {
                    snapshot_interval: Duration::from_millis(config.snapshot_interval_ms),
                    checkpoint_interval: Duration::from_secs(config.checkpoint_seconds),
                },
            },
        )
    }
}

/// The host name plus a random suffix: a restarted process is a new owner,
/// so its leases never look like the dead process's.
fn default_instance_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "rampart".to_owned());
    let noise = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(40);
    format!("{host}-{:06x}", crate::host::splitmix64(noise) & 0xff_ffff)
}

/// Why one session could not be adopted.
#[derive(Debug, thiserror::Error)]
enum AdoptError {
    #[error("database: {0}")]
    Database(#[from] DbError),
    #[error("redis: {0}")]
    Redis(#[from] HotError),
    #[error(transparent)]
    Resume(#[from] ResumeError),
    #[error(transparent)]
    Content(#[from] VersionError),
    #[error("host: {0}")]
    Host(#[from] HostError),
}

/// Finds sessions without a live owner and resumes them here.
pub struct Adopter {
    stores: Stores,
    host: HostHandle,
    /// Sessions this instance will not try again: content it cannot get,
    /// or a checkpoint it cannot read (an instance of another version may).
    passed_over: HashSet<u64>,
}

impl Adopter {
    /// An adopter for `host` over `stores`.
    pub fn new(stores: Stores, host: HostHandle) -> Self {
        Self {
            stores,
            host,
            passed_over: HashSet::new(),
        }
    }

    /// Looks for orphans once; returns how many sessions were adopted.
    pub async fn pass(&mut self) -> usize {
        let running = match self.stores.database.running_sessions().await {
            Ok(running) => running,
            Err(error) => {
                tracing::warn!(%error, "adoption: cannot list running sessions");
                return 0;
            }
        };
        let mut adopted = 0;
        for candidate in running {
            let id = candidate.id;
            if self.passed_over.contains(&id) || self.host.get(SessionId(id)).is_some() {
                continue;
            }
            let status = self.host.status();
            if status.draining || status.lobby + status.running >= status.max_sessions {
                break;
            }
            if let Some(hot) = &self.stores.hot {
                match hot.lease_holder(id).await {
                    Ok(None) => {}
                    Ok(Some(_)) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "adoption: cannot read leases");
                        return adopted;
                    }
                }
            }
            match self.adopt(id).await {
                Ok(true) => adopted += 1,
                Ok(false) => {}
                Err(error) => {
                    tracing::error!(session = %SessionId(id), %error, "adoption failed");
                    metrics::counter!("rampart_adoptions_failed_total").increment(1);
                }
            }
        }
        adopted
    }

    /// Adopts orphans until the host drains: with Redis, every third of a
    /// lease, so a dead owner's sessions resume within about a lease and
    /// a third of its death. Each time it also advertises `address` (this
    /// instance's public HTTP base URL) for a lease, so other instances
    /// send the players of the sessions it owns here; the advertisement
    /// lapses with the instance.
    pub async fn run(mut self, address: String) {
        let Some(hot) = self.stores.hot.clone() else {
            // No leases: nothing can be orphaned while this instance runs.
            return;
        };
        let mut every = tokio::time::interval(self.stores.lease / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            if self.host.status().draining {
                return;
            }
            if let Err(error) = hot
                .advertise(&self.stores.instance, &address, self.stores.lease)
                .await
            {
                tracing::warn!(%error, "cannot advertise this instance's address");
            }
            self.pass().await;
        }
    }

    /// True when the session now runs here.
    async fn adopt(&mut self, id: u64) -> Result<bool, AdoptError> {
        let Some(record) = self.stores.database.session(id).await? else {
            return Ok(false);
        };
        // A session resumes on the content it started with, whatever the
        // assets on disk say now.
        let version = record.row.content_version;
        let current = self.host.content();
        let stored = if version == current.version {
            Ok(Some(current))
        } else {
            self.stores.versions.get(version).await
        };
        let content = match stored {
            Ok(Some(content)) => content,
            Ok(None) => {
                tracing::warn!(
                    session = %SessionId(id),
                    content = format_args!("{version:016x}"),
                    "not adopting a session whose content version is not stored; an instance \
                     running that content will"
                );
                self.passed_over.insert(id);
                return Ok(false);
            }
            Err(error @ VersionError::Database { .. }) => return Err(error.into()),
            Err(error) => {
                self.passed_over.insert(id);
                return Err(error.into());
            }
        };
        let instance = self.stores.instance.clone();
        if let Some(hot) = &self.stores.hot
            && !hot.acquire_lease(id, &instance, self.stores.lease).await?
        {
            return Ok(false);
        }
        let adopted = self.take_over(id, &content, record.row.players).await;
        if !matches!(adopted, Ok(true))
            && let Some(hot) = &self.stores.hot
        {
            // Let another instance try.
            let _ = hot.release_lease(id, &instance).await;
        }
        adopted
    }

    async fn take_over(
        &mut self,
        id: u64,
        content: &Arc<Content>,
        players: u8,
    ) -> Result<bool, AdoptError> {
        let epoch = self
            .stores
            .database
            .claim(id, &self.stores.instance)
            .await?;
        let (hot_snapshot, commands) = match &self.stores.hot {
            Some(hot) => match hot.adopt(id, epoch).await? {
                Some(HotState {
                    snapshot, commands, ..
                }) => (snapshot, commands),
                None => (None, Vec::new()),
            },
            None => (None, Vec::new()),
        };
        // Redis's snapshot is normally the newer; after a Redis outage (or
        // a Redis that lost its data) the database checkpoint may be. The
        // command stream runs unbroken from Redis's snapshot on, so it
        // continues either.
        let checkpoint = self
            .stores
            .database
            .load_checkpoint(id)
            .await?
            .filter(|checkpoint| !checkpoint.snapshot.is_empty());
        let newest = match (hot_snapshot, checkpoint) {
            (Some(hot), Some(durable)) if durable.tick > hot.tick => {
                Some((durable.snapshot, durable.state_hash, "database"))
            }
            (Some(hot), _) => Some((hot.bytes, hot.state_hash, "redis")),
            (None, Some(durable)) => Some((durable.snapshot, durable.state_hash, "database")),
            (None, None) => None,
        };
        let Some((bytes, hash, source)) = newest else {
            tracing::error!(
                session = %SessionId(id),
                "a running session with no checkpoint anywhere (its owner died before its \
                 first save): recording it as lost"
            );
            let outcome = MatchOutcome {
                outcome: "lost".to_owned(),
                ticks: 0,
                players,
            };
            self.stores
                .database
                .finish(id, epoch, "lost", &[], &outcome)
                .await?;
            return Ok(false);
        };
        let rebuilding = content.clone();
        let resumed =
            tokio::task::spawn_blocking(move || resume(&rebuilding, &bytes, Some(hash), &commands))
                .await
                .map_err(|_| HostError::Stopped)?;
        let resumed = match resumed {
            Ok(resumed) => resumed,
            Err(error) => {
                self.passed_over.insert(id);
                return Err(error.into());
            }
        };
        let checkpoint_tick = resumed.checkpoint_tick;
        let info = self.host.adopt(SessionId(id), epoch, resumed).await?;
        metrics::counter!("rampart_sessions_adopted_total", "source" => source).increment(1);
        tracing::info!(
            session = %info.id,
            epoch,
            source,
            checkpoint_tick,
            resumed_tick = info.tick,
            "resumed a session whose owner is gone"
        );
        Ok(true)
    }
}
