//! The hot store: per running session, in Redis, the latest snapshot and the
//! commands accepted since (a stream), plus the ownership lease. It is what
//! lets another instance resume a session with at most a flush interval
//! lost, and it is written often (every tick batch), so every write of many
//! sessions goes out as one pipeline.
//!
//! Keys of one session share the `{id}` hash tag so Redis Cluster keeps them
//! in one slot, which the Lua scripts need:
//! `<prefix>sess:{<id>}:lease`, `:epoch`, `:snap` (a hash), `:cmds` (a
//! stream whose entry ids are `<tick>-<n>`, so trimming to a snapshot's tick
//! is `XTRIM MINID`).
//!
//! It also caches the records the HTTP API reads from the database (see
//! [`CachedRecord`]), and holds where players reach each live instance
//! (`<prefix>instance:<id>`), so a player who asks the wrong one is sent on.
//!
//! This file: the types and opening the store; `scripts.rs` the Lua
//! scripts, `state.rs` a session's state (fenced writes, adoption, loading),
//! `leases.rs` ownership leases and where instances are reached,
//! `cache.rs` the HTTP records' cache.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{Client, RedisError, Script, Value};

mod cache;
mod leases;
mod scripts;
mod state;

pub use cache::CachedRecord;
use scripts::{CACHE_SCRIPT, RELEASE_SCRIPT, RENEW_SCRIPT, WRITE_SCRIPT};

/// Why a hot-store call failed.
#[derive(Debug, thiserror::Error)]
pub enum HotError {
    /// Redis did not answer, or answered with an error. Writes are safe to
    /// retry: a repeated snapshot is replaced, and the circuit breaker above
    /// decides when.
    #[error("Redis call failed: {0}; check that Redis is up and REDIS_URL is right")]
    Redis(#[from] RedisError),
    /// A newer owner writes this session: stop running it here.
    #[error(
        "session {session} was taken over (epoch {current} in Redis, ours {ours}): stop running it here"
    )]
    Fenced {
        /// The session.
        session: u64,
        /// The stored epoch.
        current: u64,
        /// The epoch the refused write carried.
        ours: u64,
    },
    /// A write older than what the same owner already stored: the writer
    /// reordered its own flushes. Nothing was written.
    #[error(
        "session {session}: write at tick {tick} is older than the stored tick {last}; flushes must go out in tick order"
    )]
    OutOfOrder {
        /// The session.
        session: u64,
        /// The oldest tick of the refused write.
        tick: u64,
        /// The newest tick already stored.
        last: u64,
    },
    /// A stored value that this crate did not write.
    #[error("session {session}: stored {what} is unreadable; delete the session's keys")]
    Corrupt {
        /// The session.
        session: u64,
        /// Which value.
        what: &'static str,
    },
}

/// Settings of the hot store; the defaults are the product's.
#[derive(Clone, Debug)]
pub struct HotOptions {
    /// Put before every key, so tests (and several deployments on one
    /// Redis) do not meet.
    pub prefix: String,
    /// How long a session's hot state outlives its last write.
    pub ttl: Duration,
    /// Upper bound on a session's command stream when snapshots stop
    /// trimming it (approximate, `MAXLEN ~`).
    pub max_commands: u64,
    /// How long one call waits for Redis before failing.
    pub response_timeout: Duration,
}

impl Default for HotOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            ttl: Duration::from_secs(30 * 60),
            max_commands: 100_000,
            response_timeout: Duration::from_millis(500),
        }
    }
}

/// One accepted command: the tick it applies at and its encoded bytes
/// (the host's encoding; this crate does not look inside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandEntry {
    /// Tick the command is applied at.
    pub tick: u64,
    /// Encoded command.
    pub bytes: Vec<u8>,
}

/// A session snapshot: the simulation's save bytes at a tick.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotSnapshot {
    /// Tick the snapshot was taken at (commands from this tick on are
    /// not in it).
    pub tick: u64,
    /// `state_hash` at that tick.
    pub state_hash: u64,
    /// Opaque bytes from the simulation's save.
    pub bytes: Vec<u8>,
}

/// What an adopter finds for a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HotState {
    /// The newest epoch that wrote the session.
    pub epoch: u64,
    /// The latest snapshot, if one was written.
    pub snapshot: Option<HotSnapshot>,
    /// Commands from the snapshot's tick on, in order: replay them on the
    /// snapshot.
    pub commands: Vec<CommandEntry>,
}

/// One session's share of a flush; it borrows its parts, so the
/// write-behind task sends the snapshot bytes it shares with the tick
/// thread without copying them.
#[derive(Clone, Copy, Debug)]
pub struct SessionFlush<'a> {
    /// Session.
    pub session: u64,
    /// The writer's epoch.
    pub epoch: u64,
    /// Commands accepted since the last flush, in tick order.
    pub commands: &'a [CommandEntry],
    /// The writer's number of `commands[0]` (counted from 0 per epoch), so
    /// a retry skips what a cut-off earlier try already appended; `None`
    /// appends every command.
    pub first_command: Option<u64>,
    /// A new snapshot, taken after those commands, when one is due.
    pub snapshot: Option<FlushedSnapshot<'a>>,
}

/// A snapshot in a [`SessionFlush`]: a borrowed [`HotSnapshot`].
#[derive(Clone, Copy, Debug)]
pub struct FlushedSnapshot<'a> {
    /// Tick the snapshot was taken at.
    pub tick: u64,
    /// `state_hash` at that tick.
    pub state_hash: u64,
    /// Opaque bytes from the simulation's save.
    pub bytes: &'a [u8],
}

/// The Redis side of persistence. Cheap to clone: clones share one
/// reconnecting connection.
#[derive(Clone)]
pub struct HotStore {
    conn: ConnectionManager,
    options: HotOptions,
    write: Script,
    renew: Script,
    release: Script,
    cache: Script,
}

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotStore")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl HotStore {
    /// Connects to `url` (`redis://host:port/db`). The connection reconnects
    /// by itself after a failure; the call that met the failure still fails.
    ///
    /// # Errors
    /// `Redis` when the URL is malformed or Redis does not answer.
    pub async fn open(url: &str, options: HotOptions) -> Result<Self, HotError> {
        let client = Client::open(url)?;
        // Reconnects wait at most a second between attempts (the default
        // backoff grows to several seconds): the write-behind task's circuit
        // breaker paces the calls, so the connection should be back as soon
        // as Redis is.
        let config = ConnectionManagerConfig::new()
            .set_max_delay(Duration::from_secs(1))
            .set_response_timeout(Some(options.response_timeout))
            .set_connection_timeout(Some(options.response_timeout.max(Duration::from_secs(1))));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            options,
            write: Script::new(WRITE_SCRIPT),
            renew: Script::new(RENEW_SCRIPT),
            release: Script::new(RELEASE_SCRIPT),
            cache: Script::new(CACHE_SCRIPT),
        })
    }

    fn key(&self, session: u64, part: &str) -> String {
        format!("{}sess:{{{session}}}:{part}", self.options.prefix)
    }

    /// Answers when Redis does: for `/ready` and the circuit breaker.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn ping(&self) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

/// Whole milliseconds, at least one: `PX 0` is an error in Redis.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
