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

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::streams::StreamRangeReply;
use redis::{Client, RedisError, Script, Value};

/// Fenced write of one session: commands, then the snapshot, then TTLs
/// (with neither, it only raises the stored epoch: see `HotStore::adopt`).
/// Refuses (code 0, stored epoch) a writer older than the stored epoch, and
/// (code 2, last tick) commands or a snapshot older than what this epoch
/// already wrote, before changing anything. Stream ids are
/// `<tick>-<n>` with `n` from 1 (Redis refuses `0-0`).
///
/// A retried write must not append its commands twice (a pipeline cut
/// mid-way may or may not have run): a writer that numbers its commands
/// passes the number of the first one, the script remembers (`cepoch`,
/// `cseq` in the snapshot hash) how many this epoch has written, and skips
/// the ones already there. An empty number writes every command.
///
/// KEYS: epoch, snap, cmds. ARGV: epoch, ttl_ms, maxlen, has_snap (`1`/`0`),
/// snap tick, snap hash, snap bytes, first command number (or empty), then
/// (tick, bytes) per command.
const WRITE_SCRIPT: &str = r"
local epoch = tonumber(ARGV[1])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current > epoch then return {0, tostring(current)} end
local ttl = ARGV[2]
local first = 9
local numbered = ARGV[8] ~= '' and #ARGV > 8
local written = -1
if numbered then
  local done = redis.call('HMGET', KEYS[2], 'cepoch', 'cseq')
  if done[1] and tonumber(done[1]) == epoch then
    written = tonumber(done[2])
    local skip = written - tonumber(ARGV[8])
    if skip > 0 then first = 9 + 2 * skip end
  end
end
local last_tick, last_seq = -1, 0
if #ARGV >= first then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    local info = redis.call('XINFO', 'STREAM', KEYS[3])
    for i = 1, #info, 2 do
      if info[i] == 'last-generated-id' then
        local id = info[i + 1]
        local dash = string.find(id, '-', 1, true)
        last_tick = tonumber(string.sub(id, 1, dash - 1))
        last_seq = tonumber(string.sub(id, dash + 1))
      end
    end
  end
  local prev = last_tick
  for i = first, #ARGV, 2 do
    local t = tonumber(ARGV[i])
    if t < prev then return {2, tostring(prev)} end
    prev = t
  end
end
if ARGV[4] == '1' then
  local stored = redis.call('HMGET', KEYS[2], 'epoch', 'tick')
  if stored[1] and tonumber(stored[1]) == epoch and tonumber(stored[2]) > tonumber(ARGV[5]) then
    return {2, stored[2]}
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = first, #ARGV, 2 do
  local t = tonumber(ARGV[i])
  if t == last_tick then last_seq = last_seq + 1 else last_tick = t; last_seq = 1 end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[3], ARGV[i] .. '-' .. last_seq, 'c', ARGV[i + 1])
end
if numbered then
  local total = tonumber(ARGV[8]) + (#ARGV - 8) / 2
  if total > written then
    redis.call('HSET', KEYS[2], 'cepoch', ARGV[1], 'cseq', string.format('%d', total))
  end
end
if ARGV[4] == '1' then
  redis.call('HSET', KEYS[2], 'epoch', ARGV[1], 'tick', ARGV[5], 'hash', ARGV[6], 'data', ARGV[7])
  redis.call('XTRIM', KEYS[3], 'MINID', ARGV[5] .. '-0')
end
redis.call('PEXPIRE', KEYS[2], ttl)
redis.call('PEXPIRE', KEYS[3], ttl)
return {1, ARGV[1]}
";

/// Extends the lease only while we hold it.
const RENEW_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

/// Deletes the lease only while we hold it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Stores one form of a cached record and starts the record's time to live
/// only when it has none, so a form added later does not extend the life of
/// the others: every form is at most one TTL old. (`PEXPIRE ... NX` would do
/// in one command, but needs Redis 7.)
///
/// KEYS: the record. ARGV: form, bytes, ttl_ms.
const CACHE_SCRIPT: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
";

/// A record the HTTP API serves from the database through Redis
/// (cache-aside), named by what a write changes rather than by request.
///
/// Each record is one Redis hash, `<prefix>cache:<kind>:<name>`, with one
/// field per form of the answer (for a page, its size: `leaderboard?limit=10`
/// and `?limit=20` are two fields of one hash). A written result therefore
/// invalidates a record with one `DEL` whatever page sizes were asked for,
/// without knowing them. The kinds end in `:` and never prefix one another,
/// so no two records share a key whatever the names contain. Each record is
/// its own key (no hash tag): they are deleted one `DEL` each, so Redis
/// Cluster may put them in any slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CachedRecord<'a> {
    /// Every map's metadata.
    Maps,
    /// One map's metadata, by key.
    Map(&'a str),
    /// A map's leaderboard, by map key.
    Leaderboard(&'a str),
    /// A map's latest ended sessions, by map key.
    RecentMatches(&'a str),
    /// A player's games, by player id.
    PlayerHistory(&'a str),
}

impl CachedRecord<'_> {
    fn key(self, prefix: &str) -> String {
        match self {
            Self::Maps => format!("{prefix}cache:maps"),
            Self::Map(key) => format!("{prefix}cache:map:{key}"),
            Self::Leaderboard(map) => format!("{prefix}cache:leaderboard:{map}"),
            Self::RecentMatches(map) => format!("{prefix}cache:matches:{map}"),
            Self::PlayerHistory(player) => format!("{prefix}cache:history:{player}"),
        }
    }
}

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

    /// Takes the session's lease if nobody holds it (`SET NX PX`): true when
    /// `instance` now holds it for `ttl`.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn acquire_lease(
        &self,
        session: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(session, "lease"))
            .arg(instance)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    /// Extends the lease to `ttl` from now, only if `instance` holds it:
    /// false means the lease lapsed or another instance took it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn renew_lease(
        &self,
        session: u64,
        instance: &str,
        ttl: Duration,
    ) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let renewed: i64 = self
            .renew
            .key(self.key(session, "lease"))
            .arg(instance)
            .arg(millis(ttl))
            .invoke_async(&mut conn)
            .await?;
        Ok(renewed == 1)
    }

    /// Gives the lease up (drain, end) so another instance can adopt at
    /// once; false when `instance` did not hold it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn release_lease(&self, session: u64, instance: &str) -> Result<bool, HotError> {
        let mut conn = self.conn.clone();
        let released: i64 = self
            .release
            .key(self.key(session, "lease"))
            .arg(instance)
            .invoke_async(&mut conn)
            .await?;
        Ok(released == 1)
    }

    /// Who holds the session's lease now.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn lease_holder(&self, session: u64) -> Result<Option<String>, HotError> {
        let mut conn = self.conn.clone();
        let holder: Option<String> = redis::cmd("GET")
            .arg(self.key(session, "lease"))
            .query_async(&mut conn)
            .await?;
        Ok(holder)
    }

    /// Publishes where players reach `instance` (its public HTTP base URL)
    /// for `ttl`, so another instance can send a player whose session moved
    /// here on to it. Refreshed like a lease, it lapses with its instance.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn advertise(
        &self,
        instance: &str,
        url: &str,
        ttl: Duration,
    ) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.instance_key(instance))
            .arg(url)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Where players reach `instance`, if it has advertised lately.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn advertised(&self, instance: &str) -> Result<Option<String>, HotError> {
        let mut conn = self.conn.clone();
        let url: Option<String> = redis::cmd("GET")
            .arg(self.instance_key(instance))
            .query_async(&mut conn)
            .await?;
        Ok(url)
    }

    fn instance_key(&self, instance: &str) -> String {
        format!("{}instance:{instance}", self.options.prefix)
    }

    /// Writes many sessions in one pipeline (one round trip): each session's
    /// commands, then its snapshot if any, fenced per session by the write
    /// script. The outer error is Redis failing the whole call; the inner
    /// results, one per flush in order, say which sessions were refused.
    ///
    /// # Errors
    /// `Redis` for the whole batch.
    pub async fn flush(
        &self,
        flushes: &[SessionFlush<'_>],
    ) -> Result<Vec<Result<(), HotError>>, HotError> {
        if flushes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        // Loading first makes EVALSHA safe after a Redis restart or failover
        // flushed the script cache; it costs one short command per batch.
        pipe.load_script(&self.write).ignore();
        let ttl = millis(self.options.ttl);
        for flush in flushes {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.write.get_hash())
                .arg(3)
                .arg(self.key(flush.session, "epoch"))
                .arg(self.key(flush.session, "snap"))
                .arg(self.key(flush.session, "cmds"))
                .arg(flush.epoch)
                .arg(ttl)
                .arg(self.options.max_commands);
            match &flush.snapshot {
                Some(snapshot) => cmd
                    .arg("1")
                    .arg(snapshot.tick)
                    .arg(snapshot.state_hash)
                    .arg(snapshot.bytes),
                None => cmd.arg("0").arg(0).arg(0).arg(""),
            };
            match flush.first_command {
                Some(first) => cmd.arg(first),
                None => cmd.arg(""),
            };
            for entry in flush.commands {
                cmd.arg(entry.tick).arg(entry.bytes.as_slice());
            }
        }
        let mut conn = self.conn.clone();
        let replies: Vec<(i64, String)> = pipe.query_async(&mut conn).await?;
        Ok(flushes
            .iter()
            .zip(replies)
            .map(|(flush, (code, value))| {
                let number = || {
                    value.parse::<u64>().map_err(|_| HotError::Corrupt {
                        session: flush.session,
                        what: "epoch or tick",
                    })
                };
                match code {
                    1 => Ok(()),
                    0 => Err(HotError::Fenced {
                        session: flush.session,
                        current: number()?,
                        ours: flush.epoch,
                    }),
                    _ => Err(HotError::OutOfOrder {
                        session: flush.session,
                        tick: flush
                            .commands
                            .first()
                            .map(|c| c.tick)
                            .or(flush.snapshot.as_ref().map(|s| s.tick))
                            .unwrap_or(0),
                        last: number()?,
                    }),
                }
            })
            .collect())
    }

    /// [`HotStore::renew_lease`] for many sessions in one pipeline: the
    /// owner renews every session it runs each third of the lease, and one
    /// round trip per session would not scale to thousands.
    ///
    /// # Errors
    /// `Redis` for the whole batch.
    pub async fn renew_leases(
        &self,
        sessions: &[u64],
        instance: &str,
        ttl: Duration,
    ) -> Result<Vec<bool>, HotError> {
        if sessions.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.load_script(&self.renew).ignore();
        for &session in sessions {
            pipe.cmd("EVALSHA")
                .arg(self.renew.get_hash())
                .arg(1)
                .arg(self.key(session, "lease"))
                .arg(instance)
                .arg(millis(ttl));
        }
        let mut conn = self.conn.clone();
        let renewed: Vec<i64> = pipe.query_async(&mut conn).await?;
        Ok(renewed.into_iter().map(|r| r == 1).collect())
    }

    /// Fences the session at `epoch` (the one [`crate::Database::claim`]
    /// just returned), then loads it. Fencing first matters: until the new
    /// owner's first write, Redis still holds the old epoch and would take
    /// the old owner's writes; after it, the old owner is refused, and
    /// everything it wrote before is in what this returns.
    ///
    /// # Errors
    /// `Fenced` (an even newer owner exists), `Redis` or `Corrupt`.
    pub async fn adopt(&self, session: u64, epoch: u64) -> Result<Option<HotState>, HotError> {
        let raise_epoch = SessionFlush {
            session,
            epoch,
            commands: &[],
            first_command: None,
            snapshot: None,
        };
        let mut outcomes = self.flush(&[raise_epoch]).await?;
        outcomes.pop().unwrap_or(Ok(()))?;
        self.load(session).await
    }

    /// The session's hot state, read atomically: the stored epoch, the
    /// latest snapshot and the commands since. `None` when Redis has nothing
    /// for the session (never written, expired, or Redis lost it). Adopters
    /// use [`HotStore::adopt`]; a state without a snapshot there means
    /// falling back to the database checkpoint (or, with no commands
    /// either, the session's start).
    ///
    /// # Errors
    /// `Redis` or `Corrupt`.
    pub async fn load(&self, session: u64) -> Result<Option<HotState>, HotError> {
        type Snap = (Option<String>, Option<String>, Option<Vec<u8>>);
        let mut conn = self.conn.clone();
        let (epoch, snap, stream): (Option<String>, Snap, StreamRangeReply) = redis::pipe()
            .atomic()
            .cmd("GET")
            .arg(self.key(session, "epoch"))
            .cmd("HMGET")
            .arg(self.key(session, "snap"))
            .arg("tick")
            .arg("hash")
            .arg("data")
            .cmd("XRANGE")
            .arg(self.key(session, "cmds"))
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        let corrupt = |what| HotError::Corrupt { session, what };
        let parse = |text: &str, what| text.parse::<u64>().map_err(|_| corrupt(what));
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let epoch = parse(&epoch, "epoch")?;
        let snapshot = match snap {
            (Some(tick), Some(hash), Some(bytes)) => Some(HotSnapshot {
                tick: parse(&tick, "snapshot tick")?,
                state_hash: parse(&hash, "snapshot hash")?,
                bytes,
            }),
            _ => None,
        };
        let from = snapshot.as_ref().map_or(0, |s| s.tick);
        let mut commands = Vec::with_capacity(stream.ids.len());
        for entry in stream.ids {
            let tick = entry
                .id
                .split_once('-')
                .and_then(|(tick, _)| tick.parse::<u64>().ok())
                .ok_or_else(|| corrupt("command id"))?;
            let Some(Value::BulkString(bytes)) = entry.map.get("c") else {
                return Err(corrupt("command bytes"));
            };
            if tick >= from {
                commands.push(CommandEntry {
                    tick,
                    bytes: bytes.clone(),
                });
            }
        }
        Ok(Some(HotState {
            epoch,
            snapshot,
            commands,
        }))
    }

    /// Deletes the session's hot state and lease: it ended and its durable
    /// record is written.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn forget(&self, session: u64) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.key(session, "epoch"))
            .arg(self.key(session, "snap"))
            .arg(self.key(session, "cmds"))
            .arg(self.key(session, "lease"))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// One form (e.g. a page size) of a cached record, if Redis has it.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn cached_record(
        &self,
        record: CachedRecord<'_>,
        form: &str,
    ) -> Result<Option<Vec<u8>>, HotError> {
        let mut conn = self.conn.clone();
        let bytes: Option<Vec<u8>> = redis::cmd("HGET")
            .arg(record.key(&self.options.prefix))
            .arg(form)
            .query_async(&mut conn)
            .await?;
        Ok(bytes)
    }

    /// Stores one form of a record for at most `ttl` (counted from the
    /// record's first form; see [`CachedRecord`]). The TTL bounds how long a
    /// missed invalidation leaves a stale answer.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn cache_record(
        &self,
        record: CachedRecord<'_>,
        form: &str,
        bytes: &[u8],
        ttl: Duration,
    ) -> Result<(), HotError> {
        let mut conn = self.conn.clone();
        self.cache
            .key(record.key(&self.options.prefix))
            .arg(form)
            .arg(bytes)
            .arg(millis(ttl))
            .invoke_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Deletes records, every form of each, in one round trip: a write
    /// changed what they were read from.
    ///
    /// # Errors
    /// `Redis`.
    pub async fn invalidate_records(&self, records: &[CachedRecord<'_>]) -> Result<(), HotError> {
        if records.is_empty() {
            return Ok(());
        }
        // One `DEL` per key, not one for all: keys in different Redis
        // Cluster slots cannot share a command.
        let mut pipe = redis::pipe();
        for record in records {
            pipe.cmd("DEL")
                .arg(record.key(&self.options.prefix))
                .ignore();
        }
        let mut conn = self.conn.clone();
        pipe.query_async::<()>(&mut conn).await?;
        Ok(())
    }
}

/// Whole milliseconds, at least one: `PX 0` is an error in Redis.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}
