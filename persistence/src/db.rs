//! The durable store: one `Database` over PostgreSQL (pooled, through
//! diesel-async) and SQLite (one connection, the embedded default), so the
//! host and its tests do not care which one `DATABASE_URL` names.
//!
//! diesel-async has no released async `MultiConnection`, so the query layer
//! is the `with_conn!` macro: it expands one query body once per backend,
//! and Diesel type-checks each expansion against its own backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::{BigInt, Binary};
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
use crate::schema::{checkpoints, maps, match_history, players, results, session_log, sessions};

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
        match current {
            Some(current) => DbError::Fenced {
                session: $session,
                current: from_db(current),
                ours: $ours,
            },
            None => DbError::UnknownSession($session),
        }
    }};
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

    /// Records a visit: creates the player, or updates their name and
    /// `last_seen_at`.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn upsert_player(&self, id: &str, name: &str) -> Result<(), DbError> {
        let now = now_ms();
        with_conn!(self, |conn| {
            diesel::insert_into(players::table)
                .values((
                    players::id.eq(id),
                    players::name.eq(name),
                    players::created_at.eq(now),
                    players::last_seen_at.eq(now),
                ))
                .on_conflict(players::id)
                .do_update()
                .set((players::name.eq(name), players::last_seen_at.eq(now)))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// One player, if known.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn player(&self, id: &str) -> Result<Option<PlayerRecord>, DbError> {
        let row: Option<(String, String, i64, i64)> = with_conn!(self, |conn| {
            players::table
                .find(id)
                .select((
                    players::id,
                    players::name,
                    players::created_at,
                    players::last_seen_at,
                ))
                .first(conn)
                .await
                .optional()?
        });
        Ok(
            row.map(|(id, name, created_at, last_seen_at)| PlayerRecord {
                id,
                name,
                created_at,
                last_seen_at,
            }),
        )
    }

    /// Stores a map's metadata (on content load and hot reload).
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn upsert_map(&self, map: &MapRecord) -> Result<(), DbError> {
        let now = now_ms();
        let width = to_db_u32(map.width, "map width")?;
        let height = to_db_u32(map.height, "map height")?;
        let hash = to_db(map.content_hash);
        with_conn!(self, |conn| {
            diesel::insert_into(maps::table)
                .values((
                    maps::key.eq(&map.key),
                    maps::name.eq(&map.name),
                    maps::content_hash.eq(hash),
                    maps::width.eq(width),
                    maps::height.eq(height),
                    maps::updated_at.eq(now),
                ))
                .on_conflict(maps::key)
                .do_update()
                .set((
                    maps::name.eq(excluded(maps::name)),
                    maps::content_hash.eq(excluded(maps::content_hash)),
                    maps::width.eq(excluded(maps::width)),
                    maps::height.eq(excluded(maps::height)),
                    maps::updated_at.eq(excluded(maps::updated_at)),
                ))
                .execute(conn)
                .await?
        });
        Ok(())
    }

    /// One map's metadata, if stored.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn map(&self, key: &str) -> Result<Option<MapRecord>, DbError> {
        let row: Option<(String, String, i64, i32, i32)> = with_conn!(self, |conn| {
            maps::table
                .find(key)
                .select(MAP_COLUMNS)
                .first(conn)
                .await
                .optional()?
        });
        row.map(map_record).transpose()
    }

    /// Every stored map's metadata, by key: the primary key's order, so the
    /// read is one index scan and the answer is stable between calls.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn maps(&self) -> Result<Vec<MapRecord>, DbError> {
        let rows: Vec<(String, String, i64, i32, i32)> = with_conn!(self, |conn| {
            maps::table
                .order(maps::key.asc())
                .select(MAP_COLUMNS)
                .load(conn)
                .await?
        });
        rows.into_iter().map(map_record).collect()
    }

    /// Records a new session, unowned (epoch 0): the creator claims it next.
    ///
    /// # Errors
    /// `SessionExists`, `Connect` or `Query`.
    pub async fn create_session(&self, row: &SessionRow) -> Result<(), DbError> {
        let now = now_ms();
        let values = (
            sessions::id.eq(to_db(row.id)),
            sessions::map.eq(&row.map),
            sessions::scenario.eq(row.scenario.as_deref()),
            sessions::seed.eq(to_db(row.seed)),
            sessions::players.eq(i16::from(row.players)),
            sessions::tick_hz.eq(to_db_u16(row.tick_hz, "tick rate")?),
            sessions::content_version.eq(to_db(row.content_version)),
            sessions::state.eq(row.state.as_str()),
            sessions::created_at.eq(now),
        );
        let inserted = with_conn!(self, |conn| {
            diesel::insert_into(sessions::table)
                .values(values)
                .execute(conn)
                .await
        });
        match inserted {
            Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                Err(DbError::SessionExists(row.id))
            }
            other => other.map(|_| ()).map_err(DbError::from),
        }
    }

    /// Takes ownership of a session that is not ended: sets the owner and
    /// increments the owner epoch in one statement, and returns the new
    /// epoch, the fencing token every later write of this owner carries.
    /// Writes carrying an older epoch are refused from now on.
    ///
    /// # Errors
    /// `UnknownSession` (absent or ended), `Connect` or `Query`.
    pub async fn claim(&self, session: u64, instance: &str) -> Result<u64, DbError> {
        let epoch: Option<i64> = with_conn!(self, |conn| {
            diesel::update(
                sessions::table
                    .filter(sessions::id.eq(to_db(session)))
                    .filter(sessions::state.ne(RowState::Ended.as_str())),
            )
            .set((
                sessions::owner_epoch.eq(sessions::owner_epoch + 1),
                sessions::owner_instance.eq(instance),
            ))
            .returning(sessions::owner_epoch)
            .get_result(conn)
            .await
            .optional()?
        });
        epoch.map(from_db).ok_or(DbError::UnknownSession(session))
    }

    /// Stores the session's latest checkpoint, replacing the previous one,
    /// and appends `log` (the commands accepted since the last checkpoint)
    /// to the session's command log, in one transaction, unless a newer
    /// owner has claimed the session since `epoch` was issued: then nothing
    /// is written and `Fenced` says so. Log lines already stored (a retry,
    /// an adopter repeating its predecessor's last ones) are kept as they
    /// are.
    ///
    /// # Errors
    /// `Fenced`, `UnknownSession`, `OutOfRange`, `Connect` or `Query`.
    pub async fn checkpoint(
        &self,
        session: u64,
        epoch: u64,
        tick: u64,
        state_hash: u64,
        snapshot: &[u8],
        log: &[LoggedCommand],
    ) -> Result<(), DbError> {
        // The row is written only if the session's stored epoch is at most
        // ours. On PostgreSQL `FOR UPDATE` locks the session row while it
        // writes, so a concurrent claim waits for the write (and a claim
        // that commits first makes the select find nothing); SQLite has
        // one writer.
        let owned = sessions::table
            .filter(sessions::id.eq(to_db(session)))
            .filter(sessions::owner_epoch.le(to_db(epoch)))
            .select((
                sessions::id,
                to_db(epoch).into_sql::<BigInt>(),
                to_db(tick).into_sql::<BigInt>(),
                to_db(state_hash).into_sql::<BigInt>(),
                snapshot.into_sql::<Binary>(),
                now_ms().into_sql::<BigInt>(),
            ));
        let id = to_db(session);
        let lines = log
            .iter()
            .map(|line| {
                let ordinal = i32::try_from(line.ordinal).map_err(|_| DbError::OutOfRange {
                    what: "command ordinal",
                    value: line.ordinal.to_string(),
                })?;
                Ok((
                    session_log::session_id.eq(id),
                    session_log::tick.eq(to_db(line.tick)),
                    session_log::ordinal.eq(ordinal),
                    session_log::command.eq(line.command.as_slice()),
                ))
            })
            .collect::<Result<Vec<_>, DbError>>()?;
        macro_rules! upsert {
            ($rows:expr) => {
                diesel::insert_into(checkpoints::table)
                    .values($rows)
                    .into_columns(CHECKPOINT_COLUMNS)
                    .on_conflict(checkpoints::session_id)
                    .do_update()
                    .set((
                        checkpoints::epoch.eq(excluded(checkpoints::epoch)),
                        checkpoints::tick.eq(excluded(checkpoints::tick)),
                        checkpoints::state_hash.eq(excluded(checkpoints::state_hash)),
                        checkpoints::snapshot.eq(excluded(checkpoints::snapshot)),
                        checkpoints::written_at.eq(excluded(checkpoints::written_at)),
                    ))
            };
        }
        if lines.is_empty() {
            // One statement, so one round trip and no transaction.
            with_conn!(self, |conn|
                postgres: {
                    if upsert!(owned.for_update()).execute(conn).await? == 0 {
                        return Err(refusal!(conn, session, epoch));
                    }
                },
                sqlite: {
                    if upsert!(owned).execute(conn).await? == 0 {
                        return Err(refusal!(conn, session, epoch));
                    }
                }
            );
            return Ok(());
        }
        with_conn!(self, |conn|
            postgres: {
                conn.transaction(async |conn| {
                    if upsert!(owned.for_update()).execute(conn).await? == 0 {
                        return Err(refusal!(conn, session, epoch));
                    }
                    // Bound parameters per statement are limited (65,535).
                    for chunk in lines.chunks(4096) {
                        diesel::insert_into(session_log::table)
                            .values(chunk)
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?;
                    }
                    Ok::<_, DbError>(())
                })
                .await
            },
            sqlite: {
                conn.transaction(async |conn| {
                    if upsert!(owned).execute(conn).await? == 0 {
                        return Err(refusal!(conn, session, epoch));
                    }
                    // diesel-async cannot batch inserts on SQLite; the
                    // transaction makes them one commit.
                    for line in &lines {
                        diesel::insert_into(session_log::table)
                            .values(*line)
                            .on_conflict_do_nothing()
                            .execute(conn)
                            .await?;
                    }
                    Ok::<_, DbError>(())
                })
                .await
            }
        )
    }

    /// The session's command log: every command it accepted, from its start
    /// across every instance that ran it, in order, up to its latest
    /// checkpoint. For `rampart export-log` and audits.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn command_log(&self, session: u64) -> Result<Vec<LoggedCommand>, DbError> {
        let rows: Vec<(i64, i32, Vec<u8>)> = with_conn!(self, |conn| {
            session_log::table
                .filter(session_log::session_id.eq(to_db(session)))
                .order((session_log::tick.asc(), session_log::ordinal.asc()))
                .select((
                    session_log::tick,
                    session_log::ordinal,
                    session_log::command,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(|(tick, ordinal, command)| {
                Ok(LoggedCommand {
                    tick: from_db(tick),
                    ordinal: u32::try_from(ordinal).map_err(|_| DbError::Corrupt {
                        what: "command ordinal",
                        value: ordinal.to_string(),
                    })?,
                    command,
                })
            })
            .collect()
    }

    /// The session's latest checkpoint, for adoption without Redis.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn load_checkpoint(&self, session: u64) -> Result<Option<Checkpoint>, DbError> {
        let row: Option<(i64, i64, i64, i64, Vec<u8>, i64)> = with_conn!(self, |conn| {
            checkpoints::table
                .find(to_db(session))
                .select(CHECKPOINT_COLUMNS)
                .first(conn)
                .await
                .optional()?
        });
        Ok(
            row.map(|(id, epoch, tick, hash, snapshot, written_at)| Checkpoint {
                session_id: from_db(id),
                epoch: from_db(epoch),
                tick: from_db(tick),
                state_hash: from_db(hash),
                snapshot,
                written_at,
            }),
        )
    }

    /// One session with its ownership, for adoption (what to rebuild) and
    /// the admin API.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn session(&self, session: u64) -> Result<Option<SessionRecord>, DbError> {
        type Row = (
            i64,
            String,
            Option<String>,
            i64,
            i16,
            i16,
            i64,
            String,
            Option<String>,
            i64,
            i64,
            Option<i64>,
            Option<String>,
        );
        let row: Option<Row> = with_conn!(self, |conn| {
            sessions::table
                .find(to_db(session))
                .select((
                    sessions::id,
                    sessions::map,
                    sessions::scenario,
                    sessions::seed,
                    sessions::players,
                    sessions::tick_hz,
                    sessions::content_version,
                    sessions::state,
                    sessions::owner_instance,
                    sessions::owner_epoch,
                    sessions::created_at,
                    sessions::ended_at,
                    sessions::end_reason,
                ))
                .first(conn)
                .await
                .optional()?
        });
        let Some((
            id,
            map,
            scenario,
            seed,
            seats,
            tick_hz,
            content_version,
            state,
            owner_instance,
            owner_epoch,
            created_at,
            ended_at,
            end_reason,
        )) = row
        else {
            return Ok(None);
        };
        let state = RowState::parse(&state).ok_or_else(|| DbError::Corrupt {
            what: "sessions.state",
            value: state.clone(),
        })?;
        Ok(Some(SessionRecord {
            row: SessionRow {
                id: from_db(id),
                map,
                scenario,
                seed: from_db(seed),
                players: narrow(seats, "sessions.players")?,
                tick_hz: narrow(tick_hz, "sessions.tick_hz")?,
                content_version: from_db(content_version),
                state,
            },
            owner_instance,
            owner_epoch: from_db(owner_epoch),
            created_at,
            ended_at,
            end_reason,
        }))
    }

    /// Every running session with its owner and epoch: an instance that
    /// starts, or sees a lease expire, adopts the ones whose owner is gone.
    ///
    /// # Errors
    /// `Connect` or `Query`.
    pub async fn running_sessions(&self) -> Result<Vec<RunningSession>, DbError> {
        let rows: Vec<(i64, Option<String>, i64)> = with_conn!(self, |conn| {
            sessions::table
                .filter(sessions::state.eq(RowState::Running.as_str()))
                .order(sessions::id.asc())
                .select((
                    sessions::id,
                    sessions::owner_instance,
                    sessions::owner_epoch,
                ))
                .load(conn)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(id, owner_instance, epoch)| RunningSession {
                id: from_db(id),
                owner_instance,
                owner_epoch: from_db(epoch),
            })
            .collect())
    }

    /// Ends a session (fenced) and writes its per-seat results and its
    /// history line in the same transaction, so a reader never sees an
    /// ended session without results. Repeating it (a retry after a lost
    /// reply) rewrites the same rows.
    ///
    /// # Errors
    /// `Fenced`, `UnknownSession`, `Connect` or `Query`.
    pub async fn finish(
        &self,
        session: u64,
        epoch: u64,
        end_reason: &str,
        seats: &[SeatResult],
        outcome: &MatchOutcome,
    ) -> Result<(), DbError> {
        let now = now_ms();
        let id = to_db(session);
        let ticks = to_db(outcome.ticks);
        let players = i16::from(outcome.players);
        with_conn!(self, |conn| {
            conn.transaction(async |conn| {
                fence!(conn, session, epoch);
                let map: String = diesel::update(sessions::table.find(id))
                    .set((
                        sessions::state.eq(RowState::Ended.as_str()),
                        sessions::ended_at.eq(now),
                        sessions::end_reason.eq(end_reason),
                    ))
                    .returning(sessions::map)
                    .get_result(conn)
                    .await?;
                // One statement per seat (at most eight): diesel-async cannot
                // batch inserts on SQLite, and the transaction makes them one
                // commit.
                for seat in seats {
                    let values = (
                        results::session_id.eq(id),
                        results::seat.eq(i16::from(seat.seat)),
                        results::map.eq(&map),
                        results::player_id.eq(seat.player_id.as_deref()),
                        results::score.eq(i64::from(seat.score)),
                        results::kills.eq(i64::from(seat.kills)),
                        results::leaks.eq(i64::from(seat.leaks)),
                        results::gold_earned.eq(i64::from(seat.gold_earned)),
                        results::victory.eq(seat.victory),
                    );
                    diesel::insert_into(results::table)
                        .values(values)
                        .on_conflict((results::session_id, results::seat))
                        .do_update()
                        .set((
                            results::player_id.eq(excluded(results::player_id)),
                            results::score.eq(excluded(results::score)),
                            results::kills.eq(excluded(results::kills)),
                            results::leaks.eq(excluded(results::leaks)),
                            results::gold_earned.eq(excluded(results::gold_earned)),
                            results::victory.eq(excluded(results::victory)),
                        ))
                        .execute(conn)
                        .await?;
                }
                diesel::insert_into(match_history::table)
                    .values((
                        match_history::session_id.eq(id),
                        match_history::map.eq(&map),
                        match_history::outcome.eq(&outcome.outcome),
                        match_history::ticks.eq(ticks),
                        match_history::players.eq(players),
                        match_history::ended_at.eq(now),
                    ))
                    .on_conflict(match_history::session_id)
                    .do_update()
                    .set((
                        match_history::outcome.eq(excluded(match_history::outcome)),
                        match_history::ticks.eq(excluded(match_history::ticks)),
                        match_history::players.eq(excluded(match_history::players)),
                        match_history::ended_at.eq(excluded(match_history::ended_at)),
                    ))
                    .execute(conn)
                    .await?;
                Ok::<_, DbError>(())
            })
            .await
        })
    }

    /// A map's best single-game scores by people (bot seats excluded),
    /// highest first, with names: one query over the `(map, score)` index.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn leaderboard(
        &self,
        map: &str,
        limit: u32,
    ) -> Result<Vec<LeaderboardEntry>, DbError> {
        type Row = (i64, i16, String, Option<String>, i64, i64, bool);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            results::table
                .left_join(players::table)
                .filter(results::map.eq(map))
                .filter(results::player_id.is_not_null())
                .order((
                    results::score.desc(),
                    results::session_id.asc(),
                    results::seat.asc(),
                ))
                .limit(i64::from(limit))
                .select((
                    results::session_id,
                    results::seat,
                    results::player_id.assume_not_null(),
                    players::name.nullable(),
                    results::score,
                    results::kills,
                    results::victory,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(
                |(session_id, seat, player_id, player_name, score, kills, victory)| {
                    Ok(LeaderboardEntry {
                        session_id: from_db(session_id),
                        seat: narrow(seat, "results.seat")?,
                        player_id,
                        player_name,
                        score: narrow(score, "results.score")?,
                        kills: narrow(kills, "results.kills")?,
                        victory,
                    })
                },
            )
            .collect()
    }

    /// A player's games, newest first: one join of their results (by the
    /// player index) with the history lines.
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn player_history(
        &self,
        player: &str,
        limit: u32,
    ) -> Result<Vec<PlayerGame>, DbError> {
        type Row = (i64, String, i16, String, i64, i64, i64, i64, i64, bool, i64);
        let rows: Vec<Row> = with_conn!(self, |conn| {
            results::table
                .inner_join(match_history::table)
                .filter(results::player_id.eq(player))
                .order((
                    match_history::ended_at.desc(),
                    results::session_id.desc(),
                    results::seat.asc(),
                ))
                .limit(i64::from(limit))
                .select((
                    results::session_id,
                    match_history::map,
                    results::seat,
                    match_history::outcome,
                    match_history::ticks,
                    results::score,
                    results::kills,
                    results::leaks,
                    results::gold_earned,
                    results::victory,
                    match_history::ended_at,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(
                |(
                    session_id,
                    map,
                    seat,
                    outcome,
                    ticks,
                    score,
                    kills,
                    leaks,
                    gold_earned,
                    victory,
                    ended_at,
                )| {
                    Ok(PlayerGame {
                        session_id: from_db(session_id),
                        map,
                        seat: narrow(seat, "results.seat")?,
                        outcome,
                        ticks: from_db(ticks),
                        score: narrow(score, "results.score")?,
                        kills: narrow(kills, "results.kills")?,
                        leaks: narrow(leaks, "results.leaks")?,
                        gold_earned: narrow(gold_earned, "results.gold_earned")?,
                        victory,
                        ended_at,
                    })
                },
            )
            .collect()
    }

    /// A map's latest ended sessions, newest first (the `(map, ended_at)`
    /// index).
    ///
    /// # Errors
    /// `Connect`, `Query` or `Corrupt`.
    pub async fn recent_matches(
        &self,
        map: &str,
        limit: u32,
    ) -> Result<Vec<MatchSummary>, DbError> {
        let rows: Vec<(i64, String, i64, i16, i64)> = with_conn!(self, |conn| {
            match_history::table
                .filter(match_history::map.eq(map))
                .order((
                    match_history::ended_at.desc(),
                    match_history::session_id.desc(),
                ))
                .limit(i64::from(limit))
                .select((
                    match_history::session_id,
                    match_history::outcome,
                    match_history::ticks,
                    match_history::players,
                    match_history::ended_at,
                ))
                .load(conn)
                .await?
        });
        rows.into_iter()
            .map(|(session_id, outcome, ticks, players, ended_at)| {
                Ok(MatchSummary {
                    session_id: from_db(session_id),
                    outcome,
                    ticks: from_db(ticks),
                    players: narrow(players, "match_history.players")?,
                    ended_at,
                })
            })
            .collect()
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
