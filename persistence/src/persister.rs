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

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::breaker::{Breaker, BreakerConfig};
use crate::hot::{FlushRef, SnapRef};
use crate::{
    CachedRecord, CommandEntry, Database, DbError, HotError, HotStore, MatchOutcome, SeatResult,
    SessionRow,
};

/// How long a session whose ownership was lost is remembered, so its late
/// jobs are ignored rather than refused (and reported) again.
const FENCED_MEMORY: Duration = Duration::from_secs(600);

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
    /// A session's snapshot goes to the database at most this often, unless
    /// a job asks for a durable checkpoint (wave end, drain). Without Redis
    /// every snapshot goes to the database instead.
    pub checkpoint_interval: Duration,
    /// The lease a session's owner holds in Redis; renewed every third of it.
    pub lease_ttl: Duration,
    /// Sessions per Redis pipeline (a catch-up after an outage is split).
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
            checkpoint_interval: Duration::from_secs(10),
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
    Snapshot {
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
        /// host's encoding of seat and command text).
        commands: Vec<CommandEntry>,
        /// Checkpoint to the database now (wave end, drain), not just on
        /// the checkpoint cadence.
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
            Self::Snapshot { session, epoch, .. }
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
    queue_full: AtomicU64,
    hot_writes: AtomicU64,
    checkpoints: AtomicU64,
    finished: AtomicU64,
    dropped_hot: AtomicU64,
    dropped_durable: AtomicU64,
    lost_ownership: AtomicU64,
    redis_up: AtomicBool,
    database_up: AtomicBool,
    /// Milliseconds after `started` of the last queue-full warning, so a
    /// full queue logs once a second, not once a job.
    last_full_warning: AtomicU64,
    started: Instant,
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
pub struct DrainReport {
    /// Sessions with state no store took before the deadline (0: nothing
    /// was lost).
    pub unwritten_sessions: usize,
}

/// The running writer task; shut it down to flush what is queued.
#[derive(Debug)]
pub struct Persister {
    task: JoinHandle<DrainReport>,
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
        let writer = Writer {
            redis_breaker: Breaker::new(Store::Redis, config.breaker.clone(), shared.clone()),
            db_breaker: Breaker::new(Store::Database, config.breaker.clone(), shared.clone()),
            next_renewal: Instant::now() + config.lease_ttl / 3,
            config,
            database,
            hot,
            sessions: HashMap::new(),
            events: events_tx,
            shared: shared.clone(),
            age: 0,
            stale: Vec::new(),
        };
        let task = runtime.spawn(writer.run(rx, stop_rx));
        (Self { task, stop }, PersistHandle { tx, shared }, events)
    }

    /// Stops taking jobs, writes everything queued and held (every unwritten
    /// snapshot becomes a checkpoint), for at most `within`, and says what
    /// could not be written. For the drain.
    pub async fn shutdown(self, within: Duration) -> DrainReport {
        // A send error means the writer already stopped; its report follows.
        let _ = self.stop.send(Some(within));
        self.task.await.unwrap_or_else(|error| {
            tracing::error!(%error, "persistence writer failed");
            DrainReport {
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

#[derive(Clone)]
struct Snap {
    tick: u64,
    state_hash: u64,
    bytes: Arc<[u8]>,
}

/// What the writer holds for one session it owns.
struct Entry {
    epoch: u64,
    /// Ownership was lost at `epoch` (and when): its jobs are ignored.
    fenced: Option<Instant>,
    /// The newest snapshot, while some store still needs it.
    latest: Option<Snap>,
    /// `latest` is not in Redis yet.
    hot_dirty: bool,
    /// Commands accepted since the last Redis write.
    commands: Vec<CommandEntry>,
    command_bytes: usize,
    /// This epoch's number of `commands[0]`; numbers make retries
    /// idempotent (see the write script).
    first_command: u64,
    next_command: u64,
    /// Commands up to this tick were dropped: nothing more goes to Redis
    /// until a snapshot newer than them goes with it, or the stream would
    /// have a gap an adopter replays across.
    gap_through: Option<u64>,
    /// `latest` is not in the database yet.
    durable_dirty: bool,
    /// A job asked for a checkpoint now.
    durable_forced: bool,
    next_checkpoint: Instant,
    /// When hot state became pending (a counter): the oldest goes first.
    pending_since: u64,
    finish: Option<Box<FinishJob>>,
    /// The end is in the database; Redis keys and lease still to drop.
    finish_written: bool,
    release: bool,
    /// The session is not registered in the stores yet (no lease, no row):
    /// nothing else of it may be written until it is.
    start: Option<Box<SessionRow>>,
}

impl Entry {
    fn new(epoch: u64, next_checkpoint: Instant) -> Self {
        Self {
            epoch,
            fenced: None,
            latest: None,
            hot_dirty: false,
            commands: Vec::new(),
            command_bytes: 0,
            first_command: 0,
            next_command: 0,
            gap_through: None,
            durable_dirty: false,
            durable_forced: false,
            next_checkpoint,
            pending_since: 0,
            finish: None,
            finish_written: false,
            release: false,
            start: None,
        }
    }

    /// Hot state waiting for a Redis write it may have now.
    fn hot_work(&self) -> bool {
        self.start.is_none() && self.hot_pending()
    }

    /// Hot state waiting for a Redis write, started or not (the memory
    /// bound may drop it either way).
    fn hot_pending(&self) -> bool {
        let gap_closed = self.gap_through.is_none_or(|through| {
            self.hot_dirty && self.latest.as_ref().is_some_and(|s| s.tick > through)
        });
        self.fenced.is_none()
            && !self.finish_written
            && (self.hot_dirty || !self.commands.is_empty())
            && gap_closed
    }

    fn durable_due(&self, now: Instant) -> bool {
        self.fenced.is_none()
            && self.start.is_none()
            && ((self.finish.is_some() && !self.finish_written)
                || (self.durable_dirty
                    && self.latest.is_some()
                    && (self.durable_forced || now >= self.next_checkpoint)))
    }

    fn bytes(&self) -> usize {
        self.latest.as_ref().map_or(0, |s| s.bytes.len())
            + self.command_bytes
            + self.finish.as_ref().map_or(0, |f| f.bytes.len())
    }

    /// Drops the unwritten hot state; the snapshot stays while the database
    /// still needs it.
    fn drop_hot(&mut self) {
        if let Some(last) = self.commands.last() {
            self.gap_through = Some(self.gap_through.map_or(last.tick, |t| t.max(last.tick)));
        }
        self.hot_dirty = false;
        self.commands = Vec::new();
        self.command_bytes = 0;
        self.first_command = self.next_command;
        self.pending_since = 0;
        if !self.durable_dirty {
            self.latest = None;
        }
    }

    /// After a Redis write of everything pending.
    fn hot_written(&mut self, with_snapshot: bool) {
        if with_snapshot {
            self.hot_dirty = false;
            self.gap_through = None;
        }
        self.commands.clear();
        self.command_bytes = 0;
        self.first_command = self.next_command;
        self.pending_since = 0;
        if !self.hot_dirty && !self.durable_dirty {
            self.latest = None;
        }
    }
}

/// How one try of a session's start went.
enum StartOutcome {
    /// Leased and registered: the session's other work may be written.
    Done,
    /// The lease or the row is another instance's.
    Lost(Store),
    /// A store did not answer (or failed): retried next round.
    Failed {
        store: Store,
        error: String,
        timed_out: bool,
    },
    /// The database refused the row for good (a value out of range).
    Refused(DbError),
}

/// One try of a session's start, off the writer's state so tries run in
/// parallel.
#[derive(Clone)]
struct TryStart {
    hot: Option<HotStore>,
    database: Option<Database>,
    instance: String,
    lease_ttl: Duration,
    redis_timeout: Duration,
    db_timeout: Duration,
}

impl TryStart {
    async fn run(&self, row: &SessionRow) -> StartOutcome {
        let session = row.id;
        let instance = self.instance.as_str();
        if let Some(hot) = &self.hot {
            let lease = async {
                if hot.acquire_lease(session, instance, self.lease_ttl).await? {
                    return Ok(true);
                }
                // Held already: ours when an earlier try's reply was lost
                // (then this refreshes it), else another instance's.
                hot.renew_lease(session, instance, self.lease_ttl).await
            };
            match tokio::time::timeout(self.redis_timeout, lease).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return StartOutcome::Lost(Store::Redis),
                Ok(Err(error)) => {
                    return StartOutcome::Failed {
                        store: Store::Redis,
                        error: error.to_string(),
                        timed_out: false,
                    };
                }
                Err(_) => {
                    return StartOutcome::Failed {
                        store: Store::Redis,
                        error: "lease acquire timed out".to_owned(),
                        timed_out: true,
                    };
                }
            }
        }
        if let Some(db) = &self.database {
            match tokio::time::timeout(self.db_timeout, register(db, row, instance)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    // The lease just taken would keep the row's owner from
                    // renewing its own: give it back (best effort; it
                    // expires anyway).
                    if let Some(hot) = &self.hot {
                        let release = hot.release_lease(session, instance);
                        let _ = tokio::time::timeout(self.redis_timeout, release).await;
                    }
                    return StartOutcome::Lost(Store::Database);
                }
                Ok(Err(error @ (DbError::Connect(_) | DbError::Query(_)))) => {
                    return StartOutcome::Failed {
                        store: Store::Database,
                        error: error.to_string(),
                        timed_out: false,
                    };
                }
                Ok(Err(error)) => return StartOutcome::Refused(error),
                Err(_) => {
                    return StartOutcome::Failed {
                        store: Store::Database,
                        error: "session start timed out".to_owned(),
                        timed_out: true,
                    };
                }
            }
        }
        StartOutcome::Done
    }
}

/// Creates the session's row and claims it: true when this instance holds
/// it at epoch 1. A retry after a lost reply finds its own row (claimed, or
/// not yet) and carries on from there; a row anyone else made or claimed is
/// false.
async fn register(db: &Database, row: &SessionRow, instance: &str) -> Result<bool, DbError> {
    match db.create_session(row).await {
        Ok(()) => {}
        Err(DbError::SessionExists(_)) => {
            let Some(stored) = db.session(row.id).await? else {
                return Ok(false);
            };
            match (stored.owner_instance.as_deref(), stored.owner_epoch) {
                (Some(owner), 1) if owner == instance => return Ok(true),
                // Inserted by an earlier try whose claim never ran.
                (None, 0) if stored.row == *row => {}
                _ => return Ok(false),
            }
        }
        Err(error) => return Err(error),
    }
    match db.claim(row.id, instance).await {
        Ok(epoch) => Ok(epoch == 1),
        // Ended meanwhile: not ours to run.
        Err(DbError::UnknownSession(_)) => Ok(false),
        Err(error) => Err(error),
    }
}

/// One database write of a round.
enum DbWork {
    Checkpoint(Snap),
    Finish(Box<FinishJob>),
}

struct Writer {
    config: PersistConfig,
    database: Option<Database>,
    hot: Option<HotStore>,
    sessions: HashMap<u64, Entry>,
    events: std_mpsc::Sender<PersistEvent>,
    shared: Arc<Shared>,
    redis_breaker: Breaker,
    db_breaker: Breaker,
    next_renewal: Instant,
    /// Source of `Entry::pending_since`.
    age: u64,
    /// Ends written to the database this round whose cached records are
    /// still to be deleted (only with Redis).
    stale: Vec<FinishJob>,
}

impl Writer {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<PersistJob>,
        mut stop: watch::Receiver<Option<Duration>>,
    ) -> DrainReport {
        let period = self.config.flush_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let within = loop {
            let tick = tokio::select! {
                job = rx.recv() => match job {
                    Some(job) => {
                        self.absorb(job);
                        false
                    }
                    None => break self.config.drain_deadline,
                },
                _ = ticker.tick() => true,
                changed = stop.changed() => {
                    // An error: the `Persister` was dropped without a
                    // shutdown; drain as if asked.
                    let asked = *stop.borrow();
                    if changed.is_err() || asked.is_some() {
                        break asked.unwrap_or(self.config.drain_deadline);
                    }
                    false
                }
            };
            if tick {
                self.round(rx.len(), false).await;
            }
        };
        rx.close();
        while let Ok(job) = rx.try_recv() {
            self.absorb(job);
        }
        let deadline = Instant::now() + within;
        loop {
            self.round(0, true).await;
            let left = self.unwritten();
            if left == 0 || Instant::now() >= deadline {
                if left > 0 {
                    tracing::warn!(
                        sessions = left,
                        "persistence drain deadline passed with state unwritten"
                    );
                    self.count_dropped_durable("shutdown", left);
                }
                return DrainReport {
                    unwritten_sessions: left,
                };
            }
            let wake = [self.redis_breaker.retry_at(), self.db_breaker.retry_at()]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or_else(|| Instant::now() + period)
                .min(deadline);
            tokio::time::sleep_until(wake.into()).await;
        }
    }

    fn absorb(&mut self, job: PersistJob) {
        let (session, epoch) = job.owner();
        let now = Instant::now();
        let checkpoint_at = now + self.config.checkpoint_interval;
        let has_hot = self.hot.is_some();
        let has_db = self.database.is_some();
        if let PersistJob::Start(row) = job {
            // A new life for the id: whatever was held for it is moot.
            let mut entry = Entry::new(epoch, checkpoint_at);
            if has_hot || has_db {
                entry.start = Some(row);
            }
            self.sessions.insert(session, entry);
            return;
        }
        let entry = self
            .sessions
            .entry(session)
            .or_insert_with(|| Entry::new(epoch, checkpoint_at));
        if epoch > entry.epoch {
            // Claimed again (by this instance): the old epoch's state would
            // be refused anyway.
            *entry = Entry::new(epoch, checkpoint_at);
        }
        if epoch < entry.epoch
            || entry.fenced.is_some()
            || entry.finish.is_some()
            || entry.finish_written
        {
            metrics::counter!("rampart_persist_dropped_total", "reason" => "stale").increment(1);
            return;
        }
        let add_commands = |entry: &mut Entry, commands: Vec<CommandEntry>| {
            // Without Redis there is no command stream: the database keeps
            // snapshots only, and every snapshot contains its commands.
            if !has_hot || commands.is_empty() {
                return;
            }
            if entry.commands.is_empty() {
                entry.first_command = entry.next_command;
            }
            entry.next_command += commands.len() as u64;
            entry.command_bytes += commands.iter().map(|c| c.bytes.len()).sum::<usize>();
            entry.commands.extend(commands);
        };
        match job {
            PersistJob::Snapshot {
                tick,
                state_hash,
                bytes,
                commands,
                durable,
                ..
            } => {
                add_commands(&mut *entry, commands);
                if (has_hot || has_db) && entry.latest.as_ref().is_none_or(|s| s.tick <= tick) {
                    entry.latest = Some(Snap {
                        tick,
                        state_hash,
                        bytes,
                    });
                    entry.hot_dirty = has_hot;
                    if has_db {
                        entry.durable_dirty = true;
                        entry.durable_forced |= durable || !has_hot;
                    }
                }
            }
            PersistJob::Commands { commands, .. } => add_commands(&mut *entry, commands),
            // Without a database there are no results to write: the end
            // only drops the hot state.
            PersistJob::Finish(finish) if has_db => entry.finish = Some(finish),
            PersistJob::Finish(_) => {
                entry.drop_hot();
                entry.latest = None;
                entry.finish_written = true;
            }
            PersistJob::Release { .. } => {
                entry.release = true;
                entry.durable_forced |= entry.durable_dirty;
            }
            // Taken before the checks above.
            PersistJob::Start(_) => {}
        }
        if entry.pending_since == 0 && (entry.hot_dirty || !entry.commands.is_empty()) {
            self.age += 1;
            entry.pending_since = self.age;
        }
    }

    /// One writing round: pending starts, Redis, then the database, then
    /// leases, then the memory bound. `draining` checkpoints every
    /// unwritten snapshot.
    async fn round(&mut self, queued: usize, draining: bool) {
        let started = Instant::now();
        if draining {
            for entry in self.sessions.values_mut() {
                entry.durable_forced |= entry.durable_dirty;
            }
        }
        let mut wrote = self.start_round(started).await;
        wrote |= self.redis_round(started).await;
        wrote |= self.database_round(started).await;
        self.invalidate_stale_records(started).await;
        self.renew_leases(started).await;
        self.sweep(started);
        self.enforce_bound();
        if wrote {
            metrics::histogram!("rampart_persist_flush_seconds")
                .record(started.elapsed().as_secs_f64());
        }
        let pending = self
            .sessions
            .values()
            .filter(|e| e.hot_work() || e.durable_dirty || e.finish.is_some() || e.start.is_some())
            .count();
        let bytes: usize = self.sessions.values().map(Entry::bytes).sum();
        metrics::gauge!("rampart_persist_queue_depth").set(queued as f64);
        metrics::gauge!("rampart_persist_pending_sessions").set(pending as f64);
        metrics::gauge!("rampart_persist_pending_bytes").set(bytes as f64);
    }

    /// Whether the store may be called now; probes an open circuit first.
    async fn redis_ready(&mut self, now: Instant) -> Option<HotStore> {
        let hot = self.hot.clone()?;
        self.redis_breaker
            .admit(now, hot.ping())
            .await
            .then_some(hot)
    }

    /// Registers the sessions whose start is pending, before anything else
    /// of them is written: the lease first, then the row `running` with our
    /// claim (epoch 1), so another instance never finds the session running
    /// without a lease holder. A store error leaves the start pending for
    /// the next round; a lease or row held elsewhere is lost ownership.
    async fn start_round(&mut self, now: Instant) -> bool {
        let mut work: Vec<(u64, Box<SessionRow>)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.fenced.is_none())
            .filter_map(|(id, e)| e.start.clone().map(|row| (*id, row)))
            .collect();
        if work.is_empty() {
            return false;
        }
        // Both stores must be ready: a lease taken while the database
        // cannot be written would only lapse.
        let database = match self.database.clone() {
            Some(db) => {
                if !self.db_breaker.admit(now, db.ping()).await {
                    return false;
                }
                Some(db)
            }
            None => None,
        };
        let hot = if self.hot.is_some() {
            let Some(hot) = self.redis_ready(now).await else {
                return false;
            };
            Some(hot)
        } else {
            None
        };
        work.sort_unstable_by_key(|(id, _)| *id);
        let try_start = TryStart {
            hot,
            database,
            instance: self.config.instance.clone(),
            lease_ttl: self.config.lease_ttl,
            redis_timeout: self.redis_breaker.call_timeout(),
            db_timeout: self.db_breaker.call_timeout(),
        };
        let mut tasks = JoinSet::new();
        let mut work = work.into_iter();
        loop {
            while tasks.len() < self.config.db_concurrency.max(1)
                && !self.redis_breaker.is_open()
                && !self.db_breaker.is_open()
            {
                let Some((session, row)) = work.next() else {
                    break;
                };
                let try_start = try_start.clone();
                tasks.spawn(async move { (session, try_start.run(&row).await) });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok((session, outcome)) => self.start_outcome(session, outcome),
                Err(error) => tracing::error!(%error, "a session start task failed"),
            }
        }
        true
    }

    fn start_outcome(&mut self, session: u64, outcome: StartOutcome) {
        // The lease comes first: any outcome but a Redis failure means Redis
        // answered.
        let redis_answered = !matches!(
            outcome,
            StartOutcome::Failed {
                store: Store::Redis,
                ..
            }
        );
        if self.hot.is_some() && redis_answered {
            self.redis_breaker.success();
        }
        match outcome {
            StartOutcome::Done => {
                if self.database.is_some() {
                    self.db_breaker.success();
                }
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.start = None;
                }
            }
            StartOutcome::Lost(store) => {
                if store == Store::Database {
                    self.db_breaker.success();
                }
                self.lost(session, store);
            }
            StartOutcome::Failed {
                store,
                error,
                timed_out,
            } => match store {
                Store::Redis => self.redis_breaker.failure(&error, timed_out),
                Store::Database => self.db_breaker.failure(&error, timed_out),
            },
            StartOutcome::Refused(error) => {
                // The database answered; this row can never go in. The
                // session runs on, its later database writes refused.
                self.db_breaker.success();
                tracing::error!(session, %error, "the database refused a session's start");
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.start = None;
                }
                self.count_dropped_durable("refused", 1);
            }
        }
    }

    async fn redis_round(&mut self, now: Instant) -> bool {
        let has_work = self.sessions.values().any(|e| {
            e.hot_work()
                || ((e.finish_written || e.release) && e.fenced.is_none() && e.start.is_none())
        });
        if !has_work {
            return false;
        }
        let Some(hot) = self.redis_ready(now).await else {
            return false;
        };
        let mut ids: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.hot_work())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        let timeout = self.redis_breaker.call_timeout();
        for chunk in ids.chunks(self.config.max_batch.max(1)) {
            let reply = {
                let flushes: Vec<FlushRef<'_>> = chunk
                    .iter()
                    .filter_map(|id| self.sessions.get(id).map(|e| (*id, e)))
                    .map(|(session, e)| FlushRef {
                        session,
                        epoch: e.epoch,
                        commands: &e.commands,
                        first_command: Some(e.first_command),
                        snapshot: e.latest.as_ref().filter(|_| e.hot_dirty).map(|s| SnapRef {
                            tick: s.tick,
                            state_hash: s.state_hash,
                            bytes: &s.bytes,
                        }),
                    })
                    .collect();
                tokio::time::timeout(timeout, hot.flush_refs(&flushes)).await
            };
            let outcomes = match reply {
                Ok(Ok(outcomes)) => outcomes,
                Ok(Err(error)) => {
                    self.redis_breaker.failure(&error.to_string(), false);
                    return true;
                }
                Err(_) => {
                    self.redis_breaker.failure("flush timed out", true);
                    return true;
                }
            };
            self.redis_breaker.success();
            for (session, outcome) in chunk.iter().zip(outcomes) {
                self.hot_outcome(*session, outcome);
            }
        }
        self.forget_ended(&hot).await;
        true
    }

    fn hot_outcome(&mut self, session: u64, outcome: Result<(), HotError>) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        match outcome {
            Ok(()) => {
                let with_snapshot = entry.hot_dirty;
                entry.hot_written(with_snapshot);
                self.shared.hot_writes.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("rampart_persist_written_total", "store" => "redis").increment(1);
            }
            Err(HotError::Fenced { .. }) => self.lost(session, Store::Redis),
            Err(error) => {
                tracing::error!(session, %error, "Redis refused a session's hot state: dropped until its next snapshot");
                entry.drop_hot();
                self.count_dropped_hot("refused", 1);
            }
        }
    }

    /// Ended sessions whose end is durable, and released ones with nothing
    /// left to write: drop their Redis keys or lease.
    async fn forget_ended(&mut self, hot: &HotStore) {
        let timeout = self.redis_breaker.call_timeout();
        let instance = self.config.instance.clone();
        let done: Vec<(u64, bool)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.fenced.is_none() && e.start.is_none())
            .filter(|(_, e)| e.finish_written || (e.release && !e.hot_work() && !e.durable_dirty))
            .map(|(id, e)| (*id, e.finish_written))
            .collect();
        for (session, ended) in done {
            let call = async {
                if ended {
                    hot.forget(session).await?;
                }
                hot.release_lease(session, &instance).await
            };
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(_)) => {
                    self.sessions.remove(&session);
                }
                Ok(Err(error)) => {
                    self.redis_breaker.failure(&error.to_string(), false);
                    return;
                }
                Err(_) => {
                    self.redis_breaker.failure("release timed out", true);
                    return;
                }
            }
        }
    }

    async fn database_round(&mut self, now: Instant) -> bool {
        let Some(db) = self.database.clone() else {
            return false;
        };
        let mut work: Vec<(u64, u64, DbWork)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.durable_due(now))
            .filter_map(|(id, e)| {
                let item = match (&e.finish, &e.latest) {
                    (Some(finish), _) => DbWork::Finish(finish.clone()),
                    (None, Some(snap)) => DbWork::Checkpoint(snap.clone()),
                    (None, None) => return None,
                };
                Some((*id, e.epoch, item))
            })
            .collect();
        if work.is_empty() || !self.db_breaker.admit(now, db.ping()).await {
            return false;
        }
        work.sort_unstable_by_key(|(id, _, _)| *id);
        let timeout = self.db_breaker.call_timeout();
        let mut tasks = JoinSet::new();
        let mut work = work.into_iter();
        loop {
            while tasks.len() < self.config.db_concurrency.max(1) && !self.db_breaker.is_open() {
                let Some((session, epoch, item)) = work.next() else {
                    break;
                };
                let db = db.clone();
                tasks.spawn(async move {
                    let call = async {
                        match &item {
                            DbWork::Checkpoint(snap) => {
                                db.checkpoint(
                                    session,
                                    epoch,
                                    snap.tick,
                                    snap.state_hash,
                                    &snap.bytes,
                                )
                                .await
                            }
                            DbWork::Finish(finish) => {
                                // No bytes: the session could not be saved
                                // (it crashed); its last checkpoint stays.
                                if !finish.bytes.is_empty() {
                                    db.checkpoint(
                                        session,
                                        epoch,
                                        finish.tick,
                                        finish.state_hash,
                                        &finish.bytes,
                                    )
                                    .await?;
                                }
                                db.finish(
                                    session,
                                    epoch,
                                    &finish.end_reason,
                                    &finish.seats,
                                    &finish.outcome,
                                )
                                .await
                            }
                        }
                    };
                    let outcome = tokio::time::timeout(timeout, call).await;
                    (session, item, outcome)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (session, item, outcome) = match joined {
                Ok(done) => done,
                Err(error) => {
                    tracing::error!(%error, "a database write task failed");
                    continue;
                }
            };
            match outcome {
                Ok(result) => self.db_outcome(session, &item, result, now),
                Err(_) => self.db_breaker.failure("database call timed out", true),
            }
        }
        true
    }

    fn db_outcome(
        &mut self,
        session: u64,
        item: &DbWork,
        result: Result<(), DbError>,
        now: Instant,
    ) {
        match result {
            Ok(()) => {
                self.db_breaker.success();
                let Some(entry) = self.sessions.get_mut(&session) else {
                    return;
                };
                match item {
                    DbWork::Checkpoint(snap) => {
                        if entry.latest.as_ref().is_some_and(|s| s.tick == snap.tick) {
                            entry.durable_dirty = false;
                            entry.durable_forced = false;
                            if !entry.hot_dirty {
                                entry.latest = None;
                            }
                        }
                        entry.next_checkpoint = now + self.config.checkpoint_interval;
                        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("rampart_persist_written_total", "store" => "database")
                            .increment(1);
                    }
                    DbWork::Finish(finish) => {
                        if self.hot.is_some() {
                            self.stale.push(FinishJob::clone(finish));
                        }
                        entry.finish_written = true;
                        entry.durable_dirty = false;
                        entry.hot_dirty = false;
                        entry.commands = Vec::new();
                        entry.command_bytes = 0;
                        entry.latest = None;
                        if self.hot.is_none() {
                            self.sessions.remove(&session);
                        }
                        self.shared.finished.fetch_add(1, Ordering::Relaxed);
                        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                        let _ = self.events.send(PersistEvent::Finished { session });
                    }
                }
            }
            Err(DbError::Fenced { .. }) => {
                self.db_breaker.success();
                self.lost(session, Store::Database);
            }
            Err(error @ (DbError::Connect(_) | DbError::Query(_))) => {
                self.db_breaker.failure(&error.to_string(), false);
            }
            Err(error) => {
                // The store answered; this write can never succeed.
                self.db_breaker.success();
                tracing::error!(session, %error, "the database refused a session's state: dropped");
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.durable_dirty = false;
                    entry.durable_forced = false;
                    entry.finish = None;
                    if !entry.hot_dirty {
                        entry.latest = None;
                    }
                }
                self.count_dropped_durable("refused", 1);
            }
        }
    }

    /// Deletes the cached records that the ends written this round changed,
    /// in one Redis call. Tried once: a failure (or an open circuit) is
    /// logged and counted and the records stay stale until their TTL, which
    /// is short for that reason; retrying would hold ends in memory for as
    /// long as Redis is down.
    async fn invalidate_stale_records(&mut self, now: Instant) {
        if self.stale.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut self.stale);
        let ends = stale.len() as u64;
        let failure = match self.redis_ready(now).await {
            None => "the Redis circuit is open".to_owned(),
            Some(hot) => {
                let records: Vec<CachedRecord<'_>> = stale
                    .iter()
                    .flat_map(|finish| finish.stale_records())
                    .collect();
                let timeout = self.redis_breaker.call_timeout();
                match tokio::time::timeout(timeout, hot.invalidate_records(&records)).await {
                    Ok(Ok(())) => {
                        self.redis_breaker.success();
                        metrics::counter!("rampart_cache_invalidations_total", "result" => "ok")
                            .increment(ends);
                        return;
                    }
                    Ok(Err(error)) => {
                        let error = error.to_string();
                        self.redis_breaker.failure(&error, false);
                        error
                    }
                    Err(_) => {
                        self.redis_breaker
                            .failure("cache invalidation timed out", true);
                        "timed out".to_owned()
                    }
                }
            }
        };
        tracing::warn!(
            sessions = ends,
            %failure,
            "cached records of ended sessions not invalidated: stale until they expire"
        );
        metrics::counter!("rampart_cache_invalidations_total", "result" => "failed")
            .increment(ends);
    }

    /// Renews the lease of every session this instance writes, each third of
    /// the lease. A lapsed lease nobody took is taken back (an outage may
    /// outlast the lease); one held by another instance means it is theirs.
    /// A session whose start is pending has no lease to renew: each try of
    /// the start takes it afresh.
    async fn renew_leases(&mut self, now: Instant) {
        if self.hot.is_none() || now < self.next_renewal {
            return;
        }
        let owned: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, e)| {
                e.fenced.is_none() && e.start.is_none() && !e.finish_written && !e.release
            })
            .map(|(id, _)| *id)
            .collect();
        if owned.is_empty() {
            self.next_renewal = now + self.config.lease_ttl / 3;
            return;
        }
        let Some(hot) = self.redis_ready(now).await else {
            return;
        };
        self.next_renewal = now + self.config.lease_ttl / 3;
        let ttl = self.config.lease_ttl;
        let timeout = self.redis_breaker.call_timeout();
        let instance = self.config.instance.clone();
        for chunk in owned.chunks(self.config.max_batch.max(1)) {
            let renewed = match tokio::time::timeout(
                timeout,
                hot.renew_leases(chunk, &instance, ttl),
            )
            .await
            {
                Ok(Ok(renewed)) => renewed,
                Ok(Err(error)) => {
                    self.redis_breaker.failure(&error.to_string(), false);
                    return;
                }
                Err(_) => {
                    self.redis_breaker.failure("lease renewal timed out", true);
                    return;
                }
            };
            self.redis_breaker.success();
            for (&session, renewed) in chunk.iter().zip(renewed) {
                if renewed {
                    continue;
                }
                let retaken =
                    tokio::time::timeout(timeout, hot.acquire_lease(session, &instance, ttl)).await;
                match retaken {
                    Ok(Ok(true)) => {
                        tracing::warn!(session, "lease had lapsed; taken back");
                    }
                    Ok(Ok(false)) => self.lost(session, Store::Redis),
                    Ok(Err(error)) => {
                        self.redis_breaker.failure(&error.to_string(), false);
                        return;
                    }
                    Err(_) => {
                        self.redis_breaker.failure("lease acquire timed out", true);
                        return;
                    }
                }
            }
        }
    }

    /// Another instance owns the session: drop its state, ignore its later
    /// jobs at this epoch, tell the host. Never retried.
    fn lost(&mut self, session: u64, store: Store) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        if entry.fenced.is_some() {
            return;
        }
        let epoch = entry.epoch;
        *entry = Entry::new(epoch, Instant::now());
        entry.fenced = Some(Instant::now());
        tracing::warn!(
            session,
            epoch,
            store = store.as_str(),
            "session owned by another instance: stop running it here"
        );
        self.shared.lost_ownership.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("rampart_persist_dropped_total", "reason" => "fenced").increment(1);
        let _ = self.events.send(PersistEvent::LostOwnership {
            session,
            epoch,
            store,
        });
    }

    /// Forgets sessions with nothing left to do here.
    fn sweep(&mut self, now: Instant) {
        let has_hot = self.hot.is_some();
        self.sessions.retain(|_, e| match e.fenced {
            Some(at) => now.duration_since(at) < FENCED_MEMORY,
            // With Redis, `forget_ended` lets go (keys and lease); without,
            // nothing remains once the database has it.
            None => {
                has_hot
                    || e.start.is_some()
                    || !(e.finish_written || (e.release && !e.durable_dirty && e.finish.is_none()))
            }
        });
    }

    /// Sessions with something no store has taken yet.
    fn unwritten(&self) -> usize {
        let has_hot = self.hot.is_some();
        self.sessions
            .values()
            .filter(|e| {
                (e.start.is_some() && e.fenced.is_none())
                    || e.hot_work()
                    || e.durable_dirty
                    || (e.finish.is_some() && !e.finish_written)
                    || (has_hot && e.fenced.is_none() && (e.finish_written || e.release))
            })
            .count()
    }

    /// Over the memory bound: the oldest sessions' hot state goes first
    /// (their next snapshot replaces it), then durable snapshots, oldest
    /// session first. Finish records (results) and pending starts are kept:
    /// without its start nothing of a session can be written at all.
    fn enforce_bound(&mut self) {
        let limit = self.config.memory_limit;
        let max_sessions = self.config.max_pending_sessions;
        let mut bytes: usize = self.sessions.values().map(Entry::bytes).sum();
        let mut pending = self.sessions.values().filter(|e| e.bytes() > 0).count();
        if bytes <= limit && pending <= max_sessions {
            return;
        }
        let mut by_age: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.hot_pending())
            .map(|(id, e)| (e.pending_since, *id))
            .collect();
        by_age.sort_unstable();
        let mut dropped_hot = 0;
        for (_, session) in by_age {
            if bytes <= limit && pending <= max_sessions {
                break;
            }
            let Some(entry) = self.sessions.get_mut(&session) else {
                continue;
            };
            let before = entry.bytes();
            entry.drop_hot();
            let after = entry.bytes();
            bytes -= before - after;
            if before > 0 && after == 0 {
                pending = pending.saturating_sub(1);
            }
            dropped_hot += 1;
        }
        self.count_dropped_hot("memory_bound", dropped_hot);
        let mut by_tick: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.durable_dirty && e.latest.is_some())
            .map(|(id, e)| (e.latest.as_ref().map_or(0, |s| s.tick), *id))
            .collect();
        by_tick.sort_unstable();
        let mut dropped_durable = 0;
        for (_, session) in by_tick {
            if bytes <= limit && pending <= max_sessions {
                break;
            }
            let Some(entry) = self.sessions.get_mut(&session) else {
                continue;
            };
            let before = entry.bytes();
            entry.drop_hot();
            entry.latest = None;
            entry.durable_dirty = false;
            entry.durable_forced = false;
            let after = entry.bytes();
            bytes -= before - after;
            if before > 0 && after == 0 {
                pending = pending.saturating_sub(1);
            }
            dropped_durable += 1;
        }
        self.count_dropped_durable("memory_bound", dropped_durable);
        if dropped_hot + dropped_durable > 0 {
            tracing::warn!(
                dropped_hot,
                dropped_durable,
                bytes,
                "persistence memory bound reached: oldest unwritten state dropped"
            );
        }
    }

    fn count_dropped_hot(&self, reason: &'static str, sessions: usize) {
        if sessions > 0 {
            self.shared
                .dropped_hot
                .fetch_add(sessions as u64, Ordering::Relaxed);
            metrics::counter!("rampart_persist_dropped_total", "reason" => reason, "state" => "hot")
                .increment(sessions as u64);
        }
    }

    fn count_dropped_durable(&self, reason: &'static str, sessions: usize) {
        if sessions > 0 {
            self.shared
                .dropped_durable
                .fetch_add(sessions as u64, Ordering::Relaxed);
            metrics::counter!("rampart_persist_dropped_total", "reason" => reason, "state" => "durable")
                .increment(sessions as u64);
        }
    }
}
