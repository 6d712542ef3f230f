//! The writer task: takes jobs from the queue into each session's
//! [`Entry`], and every flush interval runs one writing round (starts,
//! Redis, the database, cache invalidation, leases, the memory bound). The
//! rounds live beside it, one file per store; this file is the loop and the
//! bookkeeping they share.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

use crate::breaker::Breaker;
use crate::{Database, HotStore};

use super::entry::{AfterStart, Entry, Phase, Snap};
use super::{FinishJob, PersistConfig, PersistEvent, PersistJob, Shared, ShutdownReport, Store};

/// How long a session whose ownership was lost is remembered, so its late
/// jobs are ignored rather than refused (and reported) again.
const FENCED_MEMORY: Duration = Duration::from_secs(600);

pub(super) struct Writer {
    pub config: PersistConfig,
    pub database: Option<Database>,
    pub hot: Option<HotStore>,
    pub sessions: HashMap<u64, Entry>,
    pub events: std_mpsc::Sender<PersistEvent>,
    pub shared: Arc<Shared>,
    pub redis_breaker: Breaker,
    pub db_breaker: Breaker,
    pub next_renewal: Instant,
    /// Source of `Entry::pending_since`.
    pub age: u64,
    /// Ends written to the database this round whose cached records are
    /// still to be deleted (only with Redis).
    pub stale: Vec<FinishJob>,
}

impl Writer {
    pub fn new(
        config: PersistConfig,
        database: Option<Database>,
        hot: Option<HotStore>,
        events: std_mpsc::Sender<PersistEvent>,
        shared: Arc<Shared>,
    ) -> Self {
        Self {
            redis_breaker: Breaker::new(Store::Redis, config.breaker.clone(), shared.clone()),
            db_breaker: Breaker::new(Store::Database, config.breaker.clone(), shared.clone()),
            next_renewal: Instant::now() + config.lease_ttl / 3,
            config,
            database,
            hot,
            sessions: HashMap::new(),
            events,
            shared,
            age: 0,
            stale: Vec::new(),
        }
    }

    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<PersistJob>,
        mut stop: watch::Receiver<Option<Duration>>,
    ) -> ShutdownReport {
        let period = self.config.flush_interval;
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let within = 'ticking: loop {
            tokio::select! {
                _ = ticker.tick() => {}
                changed = stop.changed() => {
                    // An error: the `Persister` was dropped without a
                    // shutdown; drain as if asked.
                    let asked = *stop.borrow();
                    if changed.is_err() || asked.is_some() {
                        break asked.unwrap_or(self.config.drain_deadline);
                    }
                    continue;
                }
            }
            // Jobs wait in the queue for the round, which writes them
            // anyway: taking each as it came woke this task, and a core,
            // once per job (a thousand times a second in a host of a
            // thousand sessions), preempting the step threads.
            let queued = rx.len();
            loop {
                match rx.try_recv() {
                    Ok(job) => self.absorb(job),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        break 'ticking self.config.drain_deadline;
                    }
                }
            }
            self.round(queued, false).await;
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
                return ShutdownReport {
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
        let has_hot = self.hot.is_some();
        let has_db = self.database.is_some();
        if let PersistJob::Start(row) = job {
            // A new life for the id: whatever was held for it is moot.
            let phase = if has_hot || has_db {
                Phase::Starting {
                    row,
                    then: AfterStart::Run,
                }
            } else {
                Phase::Running
            };
            self.sessions.insert(session, Entry::new(epoch, phase));
            return;
        }
        let entry = self
            .sessions
            .entry(session)
            .or_insert_with(|| Entry::new(epoch, Phase::Running));
        if epoch > entry.epoch {
            // Claimed again (by this instance): the old epoch's state would
            // be refused anyway.
            *entry = Entry::new(epoch, Phase::Running);
        }
        if epoch < entry.epoch || !entry.takes_jobs() {
            metrics::counter!("rampart_persist_dropped_total", "reason" => "stale").increment(1);
            return;
        }
        match job {
            PersistJob::Save {
                tick,
                state_hash,
                bytes,
                commands,
                recovered,
                durable,
                ..
            } => {
                if has_hot {
                    entry.add_commands(&commands);
                }
                if has_db {
                    entry.add_log(recovered);
                    entry.add_log(commands);
                }
                if (has_hot || has_db) && entry.latest.as_ref().is_none_or(|s| s.tick <= tick) {
                    entry.latest = Some(Snap {
                        tick,
                        state_hash,
                        bytes,
                    });
                    entry.hot_dirty = has_hot;
                    entry.durable_due |= has_db && (durable || !has_hot);
                }
            }
            PersistJob::Commands { commands, .. } => {
                if has_hot {
                    entry.add_commands(&commands);
                }
                if has_db {
                    entry.add_log(commands);
                }
            }
            // Without a database there are no results to write: the end
            // only drops the hot state.
            PersistJob::Finish(mut finish) => {
                if has_db {
                    entry.add_log(std::mem::take(&mut finish.commands));
                }
                entry.end(has_db.then_some(finish));
            }
            PersistJob::Release { .. } => entry.release(),
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
        if draining && self.database.is_some() {
            for entry in self.sessions.values_mut() {
                entry.durable_due |= entry.latest.is_some();
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
        let has_hot = self.hot.is_some();
        let pending = self
            .sessions
            .values()
            .filter(|e| e.unwritten(has_hot))
            .count();
        let bytes: usize = self.sessions.values().map(Entry::bytes).sum();
        metrics::gauge!("rampart_persist_queue_depth").set(queued as f64);
        metrics::gauge!("rampart_persist_pending_sessions").set(pending as f64);
        metrics::gauge!("rampart_persist_pending_bytes").set(bytes as f64);
    }

    /// Another instance owns the session: drop its state, ignore its later
    /// jobs at this epoch, tell the host. Never retried.
    pub fn lost(&mut self, session: u64, store: Store) {
        let Some(entry) = self.sessions.get_mut(&session) else {
            return;
        };
        if entry.is_fenced() {
            return;
        }
        entry.fence(Instant::now());
        let epoch = entry.epoch;
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
        self.sessions.retain(|_, entry| match entry.phase {
            Phase::Fenced { since } => now.duration_since(since) < FENCED_MEMORY,
            // With Redis, `forget_ended` lets go (keys and lease); without,
            // nothing remains once the database has it.
            _ => has_hot || !entry.ready_to_let_go(),
        });
    }

    /// Sessions with something no store has taken yet.
    fn unwritten(&self) -> usize {
        let has_hot = self.hot.is_some();
        self.sessions
            .values()
            .filter(|entry| entry.unwritten(has_hot))
            .count()
    }
}
