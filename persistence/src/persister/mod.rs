//! The write-behind path from the tick thread to the stores. The tick must
//! never wait on IO, so it hands each session's state to a bounded queue
//! ([`PersistHandle::try_send`], which never blocks) and one tokio task
//! does the writing: it coalesces (per session only the newest snapshot
//! matters, commands accumulate), flushes hot state to Redis in pipelined
//! rounds, checkpoints to the database on its own cadence, renews the
//! leases of the sessions it writes, and puts a circuit breaker in front of
//! each store so an outage degrades persistence, never the game. A session
//! it starts is registered (lease, then row) before anything else of it is
//! written: the database refuses checkpoints of a session it has no row
//! for, and its epoch (1) is only this instance's once the claim is made.
//!
//! While a store is down the newest state of every session is held in
//! memory, up to a bound; over it, the oldest sessions' hot state goes
//! first (a later snapshot replaces it), durable state only after that.
//! When the store returns, every session that changed meanwhile is written.
//! A fenced refusal (another instance owns the session) is not retried: it
//! becomes [`PersistEvent::LostOwnership`] for the host.
//!
//! A session's end, once written, also deletes the cached records it
//! changed (leaderboard, latest matches, the players' histories), once:
//! those expire soon anyway, so a failed deletion is only counted.

mod bound;
mod database;
mod entry;
mod redis;
mod start;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::breaker::BreakerConfig;
use crate::{
    CachedRecord, CommandEntry, Database, DbError, HotStore, MatchOutcome, SeatResult, SessionRow,
};
use writer::Writer;

/// Settings of the write-behind path; the defaults are the product's.
#[derive(Clone, Debug)]
pub struct PersistConfig {
    /// This instance's id: the lease holder's name.
    pub instance: String,
    /// Jobs the queue holds before [`PersistHandle::try_send`] says `Full`.
    pub queue_capacity: usize,
    /// How often the writer writes what it gathered: coalescing window and
    /// the delay a snapshot waits at most while the stores are up.
    pub flush_interval: Duration,
    /// The lease a session's owner holds in Redis; renewed every third of it.
    pub lease_ttl: Duration,
    /// Sessions per Redis pipeline and checkpoints per database
    /// transaction (a catch-up after an outage is split).
    pub max_batch: usize,
    /// Database writes in flight at once (PostgreSQL's pool serves them;
    /// SQLite takes them in turn).
    pub db_concurrency: usize,
    /// Bytes of unwritten state (snapshots and commands) held while a store
    /// is slow or down.
    pub memory_limit: usize,
    /// Sessions with unwritten state held while a store is slow or down.
    pub max_pending_sessions: usize,
    /// How long [`Persister::shutdown`] and a closed queue keep writing
    /// what is left.
    pub drain_deadline: Duration,
    /// The breakers in front of both stores.
    pub breaker: BreakerConfig,
}

impl Default for PersistConfig {
    fn default() -> Self {
        Self {
            instance: "rampart".to_owned(),
            queue_capacity: 4096,
            flush_interval: Duration::from_millis(100),
            lease_ttl: Duration::from_secs(6),
            max_batch: 512,
            db_concurrency: 8,
            memory_limit: 256 << 20,
            max_pending_sessions: 20_000,
            drain_deadline: Duration::from_secs(20),
            breaker: BreakerConfig::default(),
        }
    }
}

/// One thing the tick thread hands over. Snapshot bytes are shared
/// (`Arc<[u8]>`), so a job costs the tick one allocation for the save and
/// none for handing it on.
#[derive(Clone, Debug)]
pub enum PersistJob {
    /// The session starts ticking: register it in the stores. Lobbies are
    /// never persisted (nothing to lose), so this is the session's first
    /// job. The tick thread cannot wait for the claim, and a fresh row's
    /// first claim always returns epoch 1, so the host sends every later
    /// job of the session at epoch 1 right away; the writer holds them
    /// until the start is done. The lease is taken before the row is
    /// written `running`, so no other instance ever sees the session
    /// running without a lease holder and adopts it; a lease or row held
    /// by another instance comes back as [`PersistEvent::LostOwnership`].
    /// The host sets `state` to [`crate::SessionState::Running`].
    Start(Box<SessionRow>),
    /// The session's state at `tick` and the commands accepted since the
    /// previous job (applied at or before `tick`).
    Save {
        /// Session.
        session: u64,
        /// The owner epoch from the claim (1 for a session this instance
        /// started); every write is fenced by it.
        epoch: u64,
        /// Tick the save was taken at.
        tick: u64,
        /// `state_hash` at that tick.
        state_hash: u64,
        /// `Session::save` bytes.
        bytes: Arc<[u8]>,
        /// Commands accepted since the previous job, in tick order (the
        /// host's encoding of seat and command text): for the Redis stream
        /// and the database's command log.
        commands: Vec<CommandEntry>,
        /// Commands an adopter recovered (from the checkpoint and the Redis
        /// stream) that its predecessor may not have logged in the
        /// database: for the command log only, where lines already there
        /// are kept.
        recovered: Vec<CommandEntry>,
        /// Checkpoint to the database: the host's checkpoint cadence, a
        /// wave's end, a drain. With Redis, other saves go to Redis only;
        /// without it, every save is a checkpoint.
        durable: bool,
    },
    /// Commands accepted since the previous job, between snapshots, so the
    /// command stream in Redis trails the game by one flush interval.
    Commands {
        /// Session.
        session: u64,
        /// Owner epoch.
        epoch: u64,
        /// In tick order.
        commands: Vec<CommandEntry>,
    },
    /// The session ended: final checkpoint, results and history, then its
    /// hot state and lease are dropped.
    Finish(Box<FinishJob>),
    /// This instance lets go of the session (drain): once what was queued
    /// for it is written, the lease is released so another instance adopts
    /// it at once.
    Release {
        /// Session.
        session: u64,
        /// Owner epoch.
        epoch: u64,
    },
}

/// Everything an ended session leaves behind.
#[derive(Clone, Debug)]
pub struct FinishJob {
    /// Session.
    pub session: u64,
    /// The session's map key: the cached leaderboard and latest matches of
    /// this map are invalidated once the end is written.
    pub map: String,
    /// Owner epoch.
    pub epoch: u64,
    /// The last tick.
    pub tick: u64,
    /// `state_hash` at the last tick.
    pub state_hash: u64,
    /// Commands accepted since the previous job.
    pub commands: Vec<CommandEntry>,
    /// `Session::save` bytes at the last tick (the final checkpoint);
    /// empty when the session could not be saved (it crashed), which keeps
    /// its last checkpoint.
    pub bytes: Arc<[u8]>,
    /// `victory`, `defeat`, `idle`, `crashed`, ...
    pub end_reason: String,
    /// One per seat; each seated person's cached history is invalidated
    /// once the end is written.
    pub seats: Vec<SeatResult>,
    /// The history line.
    pub outcome: MatchOutcome,
}

impl FinishJob {
    /// The cached records this end makes stale: its map's leaderboard and
    /// latest matches, and the history of every person seated.
    fn stale_records(&self) -> impl Iterator<Item = CachedRecord<'_>> {
        let players = self
            .seats
            .iter()
            .filter_map(|seat| seat.player_id.as_deref())
            .map(CachedRecord::PlayerHistory);
        [
            CachedRecord::Leaderboard(&self.map),
            CachedRecord::RecentMatches(&self.map),
        ]
        .into_iter()
        .chain(players)
    }
}

impl PersistJob {
    fn owner(&self) -> (u64, u64) {
        match self {
            Self::Start(row) => (row.id, 1),
            Self::Save { session, epoch, .. }
            | Self::Commands { session, epoch, .. }
            | Self::Release { session, epoch } => (*session, *epoch),
            Self::Finish(finish) => (finish.session, finish.epoch),
        }
    }
}

/// Why [`PersistHandle::try_send`] refused a job. The job comes back so the
/// host can carry its commands into its next job: a dropped job's commands
/// would leave a gap in the command stream.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The queue is full: the writer is behind. Counted and logged.
    #[error("the persistence queue is full")]
    Full(PersistJob),
    /// The writer has stopped (shutdown).
    #[error("the persistence writer has stopped")]
    Closed(PersistJob),
}

/// A store, for events, metrics and [`PersistHandle::store_up`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Store {
    /// The hot store.
    Redis,
    /// The durable store.
    Database,
}

impl Store {
    /// The `store` label of the metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Redis => "redis",
            Self::Database => "database",
        }
    }
}

/// What the writer tells the host; polled from the tick thread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistEvent {
    /// Another instance owns the session (a fenced write, or a lease held
    /// by someone else): stop running it here. Its unwritten state was
    /// dropped and its later jobs at this epoch are ignored.
    LostOwnership {
        /// Session.
        session: u64,
        /// The epoch that was refused.
        epoch: u64,
        /// Which store said so.
        store: Store,
    },
    /// The session's end is durable (results and history written).
    Finished {
        /// Session.
        session: u64,
    },
}

/// Counters since start, for tests, `/ready` and logs (the same numbers go
/// to metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistStats {
    /// Jobs refused because the queue was full.
    pub queue_full: u64,
    /// Session writes Redis accepted.
    pub hot_writes: u64,
    /// Checkpoints the database accepted.
    pub checkpoints: u64,
    /// Sessions whose end was written.
    pub finished: u64,
    /// Sessions whose unwritten hot state was dropped (memory bound, a
    /// refused write).
    pub dropped_hot: u64,
    /// Sessions whose unwritten durable state was dropped (memory bound,
    /// unknown session, shutdown deadline).
    pub dropped_durable: u64,
    /// Sessions reported as owned elsewhere.
    pub lost_ownership: u64,
    /// Redis breaker closed (or no Redis).
    pub redis_up: bool,
    /// Database breaker closed (or no database).
    pub database_up: bool,
}

/// What the writer and every handle share: counters and breaker states.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) queue_full: AtomicU64,
    pub(crate) hot_writes: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) finished: AtomicU64,
    pub(crate) dropped_hot: AtomicU64,
    pub(crate) dropped_durable: AtomicU64,
    pub(crate) lost_ownership: AtomicU64,
    pub(crate) redis_up: AtomicBool,
    pub(crate) database_up: AtomicBool,
    /// Milliseconds after `started` of the last queue-full warning, so a
    /// full queue logs once a second, not once a job.
    pub(crate) last_full_warning: AtomicU64,
    pub(crate) started: Instant,
}

impl Shared {
    pub(crate) fn up(&self, store: Store) -> &AtomicBool {
        match store {
            Store::Redis => &self.redis_up,
            Store::Database => &self.database_up,
        }
    }
}

/// The tick thread's end of the queue. Cheap to clone; never blocks.
#[derive(Clone, Debug)]
pub struct PersistHandle {
    tx: mpsc::Sender<PersistJob>,
    shared: Arc<Shared>,
}

impl PersistHandle {
    /// Queues a job without waiting. A full queue is counted
    /// (`rampart_persist_dropped_total{reason="queue_full"}`), logged at
    /// most once a second, and returns the job.
    ///
    /// # Errors
    /// `Full` or `Closed`, with the job.
    pub fn try_send(&self, job: PersistJob) -> Result<(), SendError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(job)) => {
                let shared = &self.shared;
                let total = shared.queue_full.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("rampart_persist_dropped_total", "reason" => "queue_full")
                    .increment(1);
                let now = u64::try_from(shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                let last = shared.last_full_warning.load(Ordering::Relaxed);
                if (total == 1 || now.saturating_sub(last) >= 1000)
                    && shared
                        .last_full_warning
                        .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                        .is_ok()
                {
                    tracing::warn!(
                        refused = total,
                        "persistence queue full: the writer is behind, jobs are refused"
                    );
                }
                Err(SendError::Full(job))
            }
            Err(mpsc::error::TrySendError::Closed(job)) => Err(SendError::Closed(job)),
        }
    }

    /// Jobs waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }

    /// Whether the store's circuit is closed (true for a store not in use):
    /// for `/ready`.
    pub fn store_up(&self, store: Store) -> bool {
        self.shared.up(store).load(Ordering::Relaxed)
    }

    /// The counters so far.
    pub fn stats(&self) -> PersistStats {
        let s = &self.shared;
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        PersistStats {
            queue_full: get(&s.queue_full),
            hot_writes: get(&s.hot_writes),
            checkpoints: get(&s.checkpoints),
            finished: get(&s.finished),
            dropped_hot: get(&s.dropped_hot),
            dropped_durable: get(&s.dropped_durable),
            lost_ownership: get(&s.lost_ownership),
            redis_up: s.redis_up.load(Ordering::Relaxed),
            database_up: s.database_up.load(Ordering::Relaxed),
        }
    }
}

/// What was still unwritten when the writer stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions with state no store took before the deadline (0: nothing
    /// was lost).
    pub unwritten_sessions: usize,
}

/// The running writer task; shut it down to flush what is queued.
#[derive(Debug)]
pub struct Persister {
    task: JoinHandle<ShutdownReport>,
    stop: watch::Sender<Option<Duration>>,
}

impl Persister {
    /// Starts the writer on `runtime`. Without `hot`, snapshots go to the
    /// database at the snapshot interval (the embedded default); without
    /// `database`, only Redis is written. The events receiver is for the
    /// tick thread to poll (`try_recv`).
    pub fn start(
        config: PersistConfig,
        database: Option<Database>,
        hot: Option<HotStore>,
        runtime: &tokio::runtime::Handle,
    ) -> (Self, PersistHandle, std_mpsc::Receiver<PersistEvent>) {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let (events_tx, events) = std_mpsc::channel();
        let (stop, stop_rx) = watch::channel(None);
        let shared = Arc::new(Shared {
            queue_full: AtomicU64::new(0),
            hot_writes: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            dropped_hot: AtomicU64::new(0),
            dropped_durable: AtomicU64::new(0),
            lost_ownership: AtomicU64::new(0),
            redis_up: AtomicBool::new(true),
            database_up: AtomicBool::new(true),
            last_full_warning: AtomicU64::new(0),
            started: Instant::now(),
        });
        let writer = Writer::new(config, database, hot, events_tx, shared.clone());
        let task = runtime.spawn(writer.run(rx, stop_rx));
        (Self { task, stop }, PersistHandle { tx, shared }, events)
    }

    /// Stops taking jobs, writes everything queued and held (every unwritten
    /// snapshot becomes a checkpoint), for at most `within`, and says what
    /// could not be written. For the drain.
    pub async fn shutdown(self, within: Duration) -> ShutdownReport {
        // A send error means the writer already stopped; its report follows.
        let _ = self.stop.send(Some(within));
        self.task.await.unwrap_or_else(|error| {
            tracing::error!(%error, "persistence writer failed");
            ShutdownReport {
                unwritten_sessions: usize::MAX,
            }
        })
    }
}

/// Describes the metrics this module records, for the exporter's help text.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!(
        "rampart_persist_queue_depth",
        "Persistence jobs waiting for the writer."
    );
    describe_gauge!(
        "rampart_persist_pending_sessions",
        "Sessions with state not yet written to every store."
    );
    describe_gauge!(
        "rampart_persist_pending_bytes",
        Unit::Bytes,
        "Bytes of unwritten session state held by the writer."
    );
    describe_histogram!(
        "rampart_persist_flush_seconds",
        Unit::Seconds,
        "Duration of one writer round that wrote to a store."
    );
    describe_gauge!(
        "rampart_store_up",
        "1 while the store's circuit breaker is closed, 0 while open."
    );
    describe_counter!(
        "rampart_persist_dropped_total",
        "Persistence state given up, by reason."
    );
    describe_counter!(
        "rampart_persist_written_total",
        "Session writes accepted, by store."
    );
    describe_counter!(
        "rampart_persist_store_errors_total",
        "Failed or timed-out store calls, by store."
    );
    describe_counter!(
        "rampart_cache_requests_total",
        "HTTP record reads with Redis configured, by result: hit (answered from Redis), miss (from the database, then cached), error (Redis failed or its circuit was open: answered from the database)."
    );
    describe_counter!(
        "rampart_cache_invalidations_total",
        "Written session ends whose cached records (leaderboard, latest matches, player histories) were deleted from Redis, by result (ok, failed); a failed one stays stale until its TTL."
    );
}

/// Splits a database reply into an outage (a failed connection or query:
/// the breaker's business) and an answer (the session's: written, fenced,
/// refused).
fn answer<T>(reply: Result<T, DbError>) -> Result<Result<T, DbError>, DbError> {
    match reply {
        Err(error @ (DbError::Connect(_) | DbError::Query(_))) => Err(error),
        answer => Ok(answer),
    }
}
