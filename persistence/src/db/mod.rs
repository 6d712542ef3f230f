//! The durable store: one `Database` over PostgreSQL (pooled, through
//! diesel-async) and SQLite (one connection, the embedded default), so the
//! host and its tests do not care which one `DATABASE_URL` names.
//!
//! diesel-async has no released async `MultiConnection`, so the query layer
//! is the `with_conn!` macro: it expands one query body once per backend,
//! and Diesel type-checks each expansion against its own backend.
//!
//! This file: errors, options, opening and migrating, the macros and the
//! value conversions every query shares; the queries are in `lifecycle.rs`
//! (sessions, checkpoints, the command log, ends), `records.rs` (players,
//! maps, leaderboards, histories) and `contents.rs` (the content versions
//! sessions were started from).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::upsert::excluded;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{
    AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection,
};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use tokio::sync::Mutex;

use crate::records::{
    Checkpoint, LeaderboardEntry, LoggedCommand, MapRecord, MatchOutcome, MatchSummary, PlayerGame,
    PlayerRecord, RowState, RunningSession, SeatResult, SessionRecord, SessionRow,
};
use crate::schema::{
    checkpoints, content_versions, maps, match_history, players, results, session_log, sessions,
};

const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Set on every SQLite connection. WAL lets readers (the HTTP API, a backup)
/// run beside the writer; NORMAL is durable across process crashes in WAL
/// mode; the busy timeout covers a second process (e.g. `rampart migrate`)
/// holding the lock; foreign keys are off by default in SQLite.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; \
     PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;";

/// Serialises migrations of instances that start together on one
/// PostgreSQL (an arbitrary constant: "rampart" in ASCII).
const MIGRATION_LOCK: i64 = 0x72_61_6d_70_61_72_74;

type SqliteConn = SyncConnectionWrapper<SqliteConnection>;

/// Why a database call failed, worded for the operator who has to act.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The SQLite file could not be opened or prepared.
    #[error("cannot open the SQLite database at {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A `DATABASE_URL` this crate cannot use.
    #[error("unusable DATABASE_URL: {0}")]
    Url(String),
    /// No PostgreSQL connection could be had (server down, wrong URL or
    /// credentials, pool exhausted for longer than the wait timeout).
    #[error("no PostgreSQL connection: {0}; check that the server is up and DATABASE_URL is right")]
    Connect(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    /// Migrations failed; the schema is left at the last one that succeeded.
    #[error("running the database migrations failed: {0}")]
    Migrate(String),
    /// A newer owner has claimed the session: this instance must stop
    /// running it and must not write it again.
    #[error(
        "session {session} was taken over (owner epoch {current}, ours {ours}): stop running it here"
    )]
    Fenced {
        /// The session.
        session: u64,
        /// The stored epoch.
        current: u64,
        /// The epoch the refused write carried.
        ours: u64,
    },
    /// The session is not in the database (or, for a claim, has ended).
    #[error(
        "session {0} is not in the database (or has ended): create it before claiming or writing it"
    )]
    UnknownSession(u64),
    /// `create_session` for an id that exists.
    #[error("session {0} already exists in the database")]
    SessionExists(u64),
    /// A value the caller passed does not fit its column.
    #[error("{what} {value} does not fit its database column")]
    OutOfRange {
        /// Which value.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A stored value is out of the range this version writes: another
    /// writer or a hand edit put it there.
    #[error("stored {what} is out of range ({value}); was the row edited by hand?")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The stored value.
        value: String,
    },
}

/// Options beyond the URL; the defaults suit a laptop and a pod alike.
#[derive(Clone, Debug)]
pub struct DbOptions {
    /// PostgreSQL pool size (DESIGN.md: 10 per instance).
    pub pool_size: usize,
    /// How long a caller waits for a pooled connection, or for a new one to
    /// be established, before `Connect` is returned: a dead database must
    /// fail calls, not hang the writer.
    pub connect_timeout: Duration,
    /// PostgreSQL schema to work in (`search_path`), for tests and shared
    /// servers; `None` uses the server's default.
    pub schema: Option<String>,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            pool_size: 10,
            connect_timeout: Duration::from_secs(5),
            schema: None,
        }
    }
}

/// The durable store. Cheap to clone: clones share the pool (PostgreSQL) or
/// the one writer connection (SQLite).
#[derive(Clone)]
pub struct Database {
    backend: Backend,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.backend {
            Backend::Postgres(_) => f.write_str("Database(PostgreSQL)"),
            Backend::Sqlite { path, .. } => write!(f, "Database(SQLite at {})", path.display()),
        }
    }
}

#[derive(Clone)]
enum Backend {
    Postgres(Pool<AsyncPgConnection>),
    Sqlite {
        conn: Arc<Mutex<SqliteConn>>,
        path: PathBuf,
    },
}

/// Runs `$body` with `$conn` bound to a connection of whichever backend the
/// database has. The body is expanded twice, so it must compile for both.
/// `with_conn!(db, |conn| postgres: a, sqlite: b)` gives each backend its
/// own body, for SQL only one of them has (row locks).
macro_rules! with_conn {
    ($db:expr, |$conn:ident| $body:expr) => {
        with_conn!($db, |$conn| postgres: $body, sqlite: $body)
    };
    ($db:expr, |$conn:ident| postgres: $postgres:expr, sqlite: $sqlite:expr) => {
        match &$db.backend {
            Backend::Postgres(pool) => {
                let mut pooled = pool
                    .get()
                    .await
                    .map_err(|error| DbError::Connect(error.to_string()))?;
                let $conn: &mut AsyncPgConnection = &mut pooled;
                $postgres
            }
            Backend::Sqlite { conn, .. } => {
                let mut guard = conn.lock().await;
                let $conn: &mut SqliteConn = &mut guard;
                $sqlite
            }
        }
    };
}

/// Why a fenced write of `$session` at epoch `$ours` wrote nothing: a newer
/// owner (`Fenced`) or no such session.
macro_rules! refusal {
    ($conn:ident, $session:expr, $ours:expr) => {{
        let current: Option<i64> = sessions::table
            .find(to_db($session))
            .select(sessions::owner_epoch)
            .first($conn)
            .await
            .optional()?;
        refused($session, $ours, current)
    }};
}

/// Why a fenced write to `session` by epoch `ours` wrote nothing, from the
/// owner epoch stored now (`None`: no such session).
fn refused(session: u64, ours: u64, current: Option<i64>) -> DbError {
    match current {
        Some(current) => DbError::Fenced {
            session,
            current: from_db(current),
            ours,
        },
        None => DbError::UnknownSession(session),
    }
}

/// Inside a write transaction: passes when `ours` is at least the stored
/// owner epoch. On PostgreSQL the no-op update also locks the session row
/// until the transaction ends, so a concurrent claim waits for this write
/// (and is ordered after it) instead of slipping in between check and write.
macro_rules! fence {
    ($conn:ident, $session:expr, $ours:expr) => {{
        let id = to_db($session);
        let passed = diesel::update(
            sessions::table
                .filter(sessions::id.eq(id))
                .filter(sessions::owner_epoch.le(to_db($ours))),
        )
        .set(sessions::owner_epoch.eq(sessions::owner_epoch))
        .execute($conn)
        .await?;
        if passed == 0 {
            return Err(refusal!($conn, $session, $ours));
        }
    }};
}

mod contents;
mod fenced_checkpoint;
mod lifecycle;
mod records;

pub use lifecycle::CheckpointWrite;

impl Database {
    /// Opens the store `url` names with default options.
    ///
    /// # Errors
    /// See [`Database::open_with`].
    pub async fn open(url: &str) -> Result<Self, DbError> {
        Self::open_with(url, DbOptions::default()).await
    }

    /// `postgres://` or `postgresql://` opens a pool (lazily: no connection
    /// is made until the first call, so an instance starts while PostgreSQL
    /// is down); anything else is a SQLite file path, whose parent directory
    /// is created.
    ///
    /// # Errors
    /// `Url` for `:memory:` or a bad schema name, `Open` when the SQLite
    /// file cannot be created or configured.
    pub async fn open_with(url: &str, options: DbOptions) -> Result<Self, DbError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Self::open_postgres(url, options);
        }
        if url.is_empty() || url.contains(":memory:") || url.starts_with("file:") {
            return Err(DbError::Url(format!(
                "{url:?} is not a file path: use postgres://... or a SQLite file such as ./data/rampart.db"
            )));
        }
        let path = PathBuf::from(url);
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| DbError::Open {
                path: path.clone(),
                reason: format!("creating {}: {error}", parent.display()),
            })?;
        }
        let conn = open_sqlite(&path).await?;
        Ok(Self {
            backend: Backend::Sqlite {
                conn: Arc::new(Mutex::new(conn)),
                path,
            },
        })
    }

    fn open_postgres(url: &str, options: DbOptions) -> Result<Self, DbError> {
        let mut config = ManagerConfig::<AsyncPgConnection>::default();
        if let Some(schema) = options.schema {
            if schema.is_empty()
                || !schema
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                return Err(DbError::Url(format!(
                    "schema {schema:?} must be lowercase letters, digits and underscores"
                )));
            }
            let set_path = format!("SET search_path TO {schema}");
            config.custom_setup = Box::new(move |url| {
                let url = url.to_owned();
                let set_path = set_path.clone();
                Box::pin(async move {
                    let mut conn = AsyncPgConnection::establish(&url).await?;
                    conn.batch_execute(&set_path)
                        .await
                        .map_err(diesel::ConnectionError::CouldntSetupConfiguration)?;
                    Ok(conn)
                })
            });
        }
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .runtime(deadpool::Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|error| DbError::Url(error.to_string()))?;
        Ok(Self {
            backend: Backend::Postgres(pool),
        })
    }

    /// Which backend this is, for logs and `/ready`: `postgres` or `sqlite`.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite { .. } => "sqlite",
        }
    }

    /// Brings the schema up to date with the migrations embedded in this
    /// binary; a no-op when it already is. Run at startup and by
    /// `rampart migrate`. Instances starting together on one PostgreSQL take
    /// turns (an advisory lock).
    ///
    /// # Panics
    /// On PostgreSQL, when called on tokio's current-thread runtime: Diesel's
    /// migration harness is synchronous and runs through `block_in_place`.
    ///
    /// # Errors
    /// `Connect`, `Open` or `Migrate`.
    pub async fn migrate(&self) -> Result<(), DbError> {
        match &self.backend {
            Backend::Postgres(pool) => {
                let mut conn = pool
                    .get()
                    .await
                    .map_err(|error| DbError::Connect(error.to_string()))?;
                conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .await?;
                let mut harness = AsyncMigrationHarness::new(conn);
                let outcome = harness
                    .run_pending_migrations(POSTGRES_MIGRATIONS)
                    .map(|_| ())
                    .map_err(|error| DbError::Migrate(error.to_string()));
                let mut conn = harness.into_inner();
                conn.batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .await?;
                outcome
            }
            Backend::Sqlite { conn, path } => {
                // The harness is synchronous; our writer connection is async
                // and shared. Holding its lock keeps writes out meanwhile.
                let _writer = conn.lock().await;
                let path = sqlite_path_str(path)?.to_owned();
                tokio::task::spawn_blocking(move || {
                    let mut conn = SqliteConnection::establish(&path)
                        .map_err(|error| DbError::Migrate(error.to_string()))?;
                    diesel::connection::SimpleConnection::batch_execute(&mut conn, SQLITE_PRAGMAS)?;
                    conn.run_pending_migrations(SQLITE_MIGRATIONS)
                        .map(|_| ())
                        .map_err(|error| DbError::Migrate(error.to_string()))
                })
                .await
                .map_err(|error| DbError::Migrate(error.to_string()))?
            }
        }
    }

    /// Answers when the store does: for `/ready` and the circuit breaker.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn ping(&self) -> Result<(), DbError> {
        with_conn!(self, |conn| conn.batch_execute("SELECT 1").await?);
        Ok(())
    }
}

/// A checkpoint row's columns, in the order `checkpoint` writes them and
/// `load_checkpoint` reads them.
const CHECKPOINT_COLUMNS: (
    checkpoints::session_id,
    checkpoints::epoch,
    checkpoints::tick,
    checkpoints::state_hash,
    checkpoints::snapshot,
    checkpoints::written_at,
) = (
    checkpoints::session_id,
    checkpoints::epoch,
    checkpoints::tick,
    checkpoints::state_hash,
    checkpoints::snapshot,
    checkpoints::written_at,
);

/// The `maps` columns [`map_record`] reads, in its order.
const MAP_COLUMNS: (
    maps::key,
    maps::name,
    maps::content_hash,
    maps::width,
    maps::height,
) = (
    maps::key,
    maps::name,
    maps::content_hash,
    maps::width,
    maps::height,
);

/// A `maps` row (read as [`MAP_COLUMNS`]) as the game's types.
fn map_record(
    (key, name, hash, width, height): (String, String, i64, i32, i32),
) -> Result<MapRecord, DbError> {
    Ok(MapRecord {
        key,
        name,
        content_hash: from_db(hash),
        width: narrow(width, "maps.width")?,
        height: narrow(height, "maps.height")?,
    })
}

async fn open_sqlite(path: &Path) -> Result<SqliteConn, DbError> {
    let text = sqlite_path_str(path)?;
    let open_error = |reason: String| DbError::Open {
        path: path.to_owned(),
        reason,
    };
    let mut conn = SqliteConn::establish(text)
        .await
        .map_err(|error| open_error(error.to_string()))?;
    conn.batch_execute(SQLITE_PRAGMAS)
        .await
        .map_err(|error| open_error(error.to_string()))?;
    Ok(conn)
}

fn sqlite_path_str(path: &Path) -> Result<&str, DbError> {
    path.to_str().ok_or_else(|| DbError::Open {
        path: path.to_owned(),
        reason: "the path is not valid UTF-8".to_owned(),
    })
}

/// Milliseconds since the Unix epoch; a clock before 1970 reads as 0.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// u64 ids, seeds, hashes and epochs are stored bit-cast: every value
/// round-trips, and ordering holds below 2^63 (epochs and ticks never get
/// there).
fn to_db(value: u64) -> i64 {
    i64::from_ne_bytes(value.to_ne_bytes())
}

fn from_db(value: i64) -> u64 {
    u64::from_ne_bytes(value.to_ne_bytes())
}

fn to_db_u32(value: u32, what: &'static str) -> Result<i32, DbError> {
    i32::try_from(value).map_err(|_| DbError::OutOfRange {
        what,
        value: value.to_string(),
    })
}

fn to_db_u16(value: u16, what: &'static str) -> Result<i16, DbError> {
    i16::try_from(value).map_err(|_| DbError::OutOfRange {
        what,
        value: value.to_string(),
    })
}

fn narrow<T: TryFrom<S>, S: Copy + ToString>(value: S, what: &'static str) -> Result<T, DbError> {
    T::try_from(value).map_err(|_| DbError::Corrupt {
        what,
        value: value.to_string(),
    })
}
