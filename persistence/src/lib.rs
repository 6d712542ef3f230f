//! rampart-persistence: where sessions outlive the instance running them.
//!
//! Two stores, two jobs:
//!
//! - [`HotStore`] (Redis): per running session, the latest snapshot and the
//!   accepted commands since it (a stream), written every flush interval by
//!   the [`Persister`]'s writer ([`HotStore::flush`], pipelined for
//!   hundreds of sessions per call), and the ownership lease. Everything
//!   expires 30 minutes after its last write. It also caches what the HTTP
//!   API reads from the database ([`CachedRecord`]: map metadata,
//!   leaderboards, histories), each record for a short TTL.
//! - [`Database`] (PostgreSQL, or SQLite as the embedded default): players,
//!   maps, sessions with their owner epoch, the latest checkpoint of each
//!   session (every 10 s, at wave end, on drain), and, when a session ends,
//!   its per-seat results and history line, from which leaderboards and
//!   player histories are read.
//!
//! # Who calls what, when
//!
//! - **Startup** (`rampart serve`, `rampart migrate`): [`Database::open`]
//!   then [`Database::migrate`]; [`HotStore::open`] when `REDIS_URL` is set.
//! - **Content load**: [`Database::upsert_map`] per map. **Join**:
//!   [`Database::upsert_player`].
//! - **A session starts running** (lobbies are never persisted: a lobby
//!   has nothing to lose and is never adopted): the host hands the
//!   [`Persister`] a [`PersistJob::Start`] with the row in state `running`,
//!   and the writer takes the lease ([`HotStore::acquire_lease`]) before it
//!   writes the row ([`Database::create_session`], then [`Database::claim`]),
//!   so another instance never finds the session running with no lease
//!   holder. The tick thread cannot wait for the claim; a fresh row's first
//!   claim is always epoch 1, so the host uses epoch 1 for the session's
//!   later jobs at once, and the writer holds them until the start is done.
//! - **While it runs**: the [`Persister`] renews its lease
//!   ([`HotStore::renew_leases`]; a lease held elsewhere means another
//!   instance owns it: stop ticking it), flushes snapshots and commands
//!   ([`HotStore::flush`]), and checkpoints with
//!   [`Database::checkpoint`]. Every write carries the epoch from the claim.
//! - **It ends**: [`Database::finish`] (results and history in one
//!   transaction), then [`HotStore::invalidate_records`] (the map's
//!   leaderboard and latest matches, each seated player's history: the
//!   [`FinishJob`] names the map and the players), then [`HotStore::forget`]
//!   and [`HotStore::release_lease`].
//! - **The HTTP API reads records** (cache-aside): [`HotStore::cached_record`];
//!   on a miss [`Database::maps`], [`Database::map`], [`Database::leaderboard`],
//!   [`Database::player_history`] or [`Database::recent_matches`], then
//!   [`HotStore::cache_record`]. Without Redis, or while it fails, the
//!   database alone.
//! - **Adoption** (an instance starts, or sees a lease lapse): for each of
//!   [`Database::running_sessions`] with no [`HotStore::lease_holder`]:
//!   [`HotStore::acquire_lease`], [`Database::claim`] (the new epoch fences
//!   the old owner out of the database), then [`HotStore::adopt`] (fences it
//!   out of Redis, then returns the snapshot plus the commands since), or
//!   [`Database::load_checkpoint`] when Redis has no snapshot, and replay.
//!
//! # The write-behind path
//!
//! The host's tick thread never calls the stores itself: it hands
//! [`PersistJob`]s (starts, snapshots with the commands since, finishes,
//! releases)
//! to [`PersistHandle::try_send`], which never blocks, and the
//! [`Persister`]'s tokio task writes them: coalesced per session, pipelined
//! to Redis every flush interval, checkpointed to the database every 10 s
//! (or at once for durable jobs), behind a circuit breaker per store, with
//! the sessions' leases renewed on the way. Lost ownership comes back as
//! [`PersistEvent::LostOwnership`].
//!
//! # Fencing
//!
//! The durable epoch lives in the database and only [`Database::claim`]
//! raises it. Every write names the epoch it was issued under; the database
//! (one conditional statement inside a transaction) and Redis (a Lua script
//! per session, keys sharing the `{id}` hash tag so Redis Cluster keeps them
//! in one slot) refuse a write whose epoch is older than the stored one. A
//! paused old owner that wakes up gets [`DbError::Fenced`] or
//! [`HotError::Fenced`] and must stop running the session.

mod breaker;
mod db;
mod hot;
mod persister;
mod records;
mod schema;

pub use breaker::BreakerConfig;

pub use db::{CheckpointWrite, Database, DbError, DbOptions};
pub use hot::{
    CachedRecord, CommandEntry, FlushedSnapshot, HotError, HotOptions, HotSnapshot, HotState,
    HotStore, SessionFlush,
};
pub use persister::{
    FinishJob, PersistConfig, PersistEvent, PersistHandle, PersistJob, PersistStats, Persister,
    SendError, ShutdownReport, Store, describe_metrics,
};
pub use records::{
    Checkpoint, LeaderboardEntry, LoggedCommand, MapRecord, MatchOutcome, MatchSummary, PlayerGame,
    PlayerRecord, RowState, RunningSession, SeatResult, SessionRecord, SessionRow,
};
