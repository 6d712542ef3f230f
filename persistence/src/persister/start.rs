//! Registering a session in the stores before anything else of it is
//! written: the lease first, then the row `running` with this instance's
//! claim (epoch 1), so another instance never finds the session running
//! without a lease holder and adopts it. Starts run in parallel tasks, off
//! the writer's state; a store error leaves the start pending for the next
//! round, a lease or row held elsewhere is lost ownership.

use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::breaker::{Fault, within};
use crate::{Database, DbError, HotStore, SessionRow};

use super::entry::Phase;
use super::writer::Writer;
use super::{Store, answer};

/// How a start that reached every store it asked went.
enum Registered {
    /// Leased and registered: the session's other work may be written.
    Done,
    /// The lease or the row is another instance's.
    Lost(Store),
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
    /// Takes the lease, then registers the row; a store that did not answer
    /// comes back as its fault.
    async fn run(&self, row: &SessionRow) -> Result<Registered, (Store, Fault)> {
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
            match within(self.redis_timeout, lease).await {
                Ok(true) => {}
                Ok(false) => return Ok(Registered::Lost(Store::Redis)),
                Err(fault) => return Err((Store::Redis, fault)),
            }
        }
        if let Some(db) = &self.database {
            let registered = async { answer(register(db, row, instance).await) };
            match within(self.db_timeout, registered).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    // The lease just taken would keep the row's owner from
                    // renewing its own: give it back (best effort; it
                    // expires anyway).
                    if let Some(hot) = &self.hot {
                        let release = hot.release_lease(session, instance);
                        let _ = within(self.redis_timeout, release).await;
                    }
                    return Ok(Registered::Lost(Store::Database));
                }
                Ok(Err(refused)) => return Ok(Registered::Refused(refused)),
                Err(fault) => return Err((Store::Database, fault)),
            }
        }
        Ok(Registered::Done)
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

impl Writer {
    /// Registers the sessions whose start is pending. Both stores must be
    /// ready: a lease taken while the database cannot be written would only
    /// lapse.
    pub(super) async fn start_round(&mut self, now: Instant) -> bool {
        let mut work: Vec<(u64, Box<SessionRow>)> = self
            .sessions
            .iter()
            .filter_map(|(id, entry)| match &entry.phase {
                Phase::Starting { row, .. } => Some((*id, row.clone())),
                _ => None,
            })
            .collect();
        if work.is_empty() {
            return false;
        }
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

    fn start_outcome(&mut self, session: u64, outcome: Result<Registered, (Store, Fault)>) {
        // The lease comes first: any outcome but a Redis fault means Redis
        // answered, and the database answered unless it faulted or was not
        // asked (the lease was someone else's).
        let (registered, db_answered) = match outcome {
            Err((Store::Redis, fault)) => {
                self.redis_breaker
                    .book("lease acquire", Err::<(), _>(fault));
                return;
            }
            Err((Store::Database, fault)) => {
                self.redis_answered();
                self.db_breaker.book("session start", Err::<(), _>(fault));
                return;
            }
            Ok(registered) => {
                let asked = !matches!(registered, Registered::Lost(Store::Redis));
                (registered, asked)
            }
        };
        self.redis_answered();
        if db_answered && self.database.is_some() {
            self.db_breaker.success();
        }
        match registered {
            Registered::Done => {
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.started();
                }
            }
            Registered::Lost(store) => self.lost(session, store),
            Registered::Refused(error) => {
                // This row can never go in. The session runs on, its later
                // database writes refused.
                tracing::error!(session, %error, "the database refused a session's start");
                if let Some(entry) = self.sessions.get_mut(&session) {
                    entry.started();
                }
                self.count_dropped_durable("refused", 1);
            }
        }
    }

    fn redis_answered(&mut self) {
        if self.hot.is_some() {
            self.redis_breaker.success();
        }
    }
}
