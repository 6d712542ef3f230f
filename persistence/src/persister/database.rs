//! The writer's database side: checkpoints (durable saves; every save
//! without Redis) with the command log lines accepted since, and a
//! session's end (final checkpoint, results, history), `db_concurrency`
//! writes at a time; checkpoints `max_batch` to a transaction.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::task::JoinSet;

use crate::breaker::within;
use crate::{CheckpointWrite, Database, DbError, LoggedCommand};

use super::entry::{Phase, Snap};
use super::writer::Writer;
use super::{FinishJob, PersistEvent, Store, answer};

/// One database write of a round, with the log lines that go with it.
struct DbWork {
    item: DbItem,
    /// Shared with the batch's `CheckpointWrite`: copied once from the
    /// session's pending lines, not again for the write.
    log: Arc<[LoggedCommand]>,
}

enum DbItem {
    Checkpoint(Snap),
    Finish(Box<FinishJob>),
}

/// Writes a batch of the round: checkpoints in one transaction, or one
/// session's end. The outer error (the store failed) is the breaker's; the
/// answers say, in order, what became of each session's write.
async fn write(
    db: &Database,
    batch: &[(u64, u64, DbWork)],
) -> Result<Vec<Result<(), DbError>>, DbError> {
    if let [
        (
            session,
            epoch,
            DbWork {
                item: DbItem::Finish(finish),
                log,
            },
        ),
    ] = batch
    {
        return answer(finish_session(db, *session, *epoch, finish, log).await)
            .map(|one| vec![one]);
    }
    let checkpoints = batch
        .iter()
        .filter_map(|(session, epoch, work)| match &work.item {
            DbItem::Checkpoint(snap) => Some(CheckpointWrite {
                session: *session,
                epoch: *epoch,
                tick: snap.tick,
                state_hash: snap.state_hash,
                snapshot: snap.bytes.clone(),
                log: work.log.clone(),
            }),
            DbItem::Finish(_) => None,
        })
        .collect();
    db.checkpoints(checkpoints).await
}

/// A session's end: its final checkpoint (none when it crashed and could
/// not be saved: its last checkpoint stays, and so do the log lines since),
/// then its results and history.
async fn finish_session(
    db: &Database,
    session: u64,
    epoch: u64,
    finish: &FinishJob,
    log: &[LoggedCommand],
) -> Result<(), DbError> {
    if !finish.bytes.is_empty() {
        db.checkpoint(
            session,
            epoch,
            finish.tick,
            finish.state_hash,
            &finish.bytes,
            log,
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

impl Writer {
    pub(super) async fn database_round(&mut self, now: Instant) -> bool {
        let Some(db) = self.database.clone() else {
            return false;
        };
        let mut work: Vec<(u64, u64, DbWork)> = self
            .sessions
            .iter()
            .filter(|(_, entry)| entry.durable_work())
            .filter_map(|(id, entry)| {
                let item = match (&entry.phase, &entry.latest) {
                    (Phase::Ending(finish), _) => DbItem::Finish(finish.clone()),
                    (_, Some(snap)) => DbItem::Checkpoint(snap.clone()),
                    (_, None) => return None,
                };
                let log = Arc::from(entry.log.as_slice());
                Some((*id, entry.epoch, DbWork { item, log }))
            })
            .collect();
        if work.is_empty() || !self.db_breaker.admit(now, db.ping()).await {
            return false;
        }
        work.sort_unstable_by_key(|(id, _, _)| *id);
        // Checkpoints go in batches of `max_batch`, each one transaction;
        // an end is written on its own (final checkpoint, then results
        // and history).
        let (checkpoints, finishes): (Vec<_>, Vec<_>) = work
            .into_iter()
            .partition(|(_, _, work)| matches!(work.item, DbItem::Checkpoint(_)));
        let mut batches = Vec::new();
        let mut checkpoints = checkpoints.into_iter();
        loop {
            let batch: Vec<_> = checkpoints
                .by_ref()
                .take(self.config.max_batch.max(1))
                .collect();
            if batch.is_empty() {
                break;
            }
            batches.push(batch);
        }
        batches.extend(finishes.into_iter().map(|finish| vec![finish]));
        let mut writes = batches.into_iter();
        let timeout = self.db_breaker.call_timeout();
        let mut tasks = JoinSet::new();
        loop {
            while tasks.len() < self.config.db_concurrency.max(1) && !self.db_breaker.is_open() {
                let Some(batch) = writes.next() else {
                    break;
                };
                let db = db.clone();
                tasks.spawn(async move {
                    let outcome = within(timeout, write(&db, &batch)).await;
                    (batch, outcome)
                });
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            match joined {
                Ok((batch, outcome)) => {
                    if let Some(answers) = self.db_breaker.book("database write", outcome) {
                        for ((session, _, item), answer) in batch.iter().zip(answers) {
                            self.db_answer(*session, item, answer);
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "a database write task failed"),
            }
        }
        true
    }

    fn db_answer(&mut self, session: u64, item: &DbWork, answer: Result<(), DbError>) {
        match answer {
            Ok(()) => {
                let Some(entry) = self.sessions.get_mut(&session) else {
                    return;
                };
                match &item.item {
                    DbItem::Checkpoint(snap) => {
                        entry.checkpoint_written(snap.tick, item.log.len());
                        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                        metrics::counter!("rampart_persist_written_total", "store" => "database")
                            .increment(1);
                    }
                    DbItem::Finish(finish) => {
                        entry.end_written();
                        if self.hot.is_some() {
                            self.stale.push(FinishJob::clone(finish));
                        } else {
                            self.sessions.remove(&session);
                        }
                        self.shared.finished.fetch_add(1, Ordering::Relaxed);
                        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
                        let _ = self.events.send(PersistEvent::Finished { session });
                    }
                }
            }
            Err(DbError::Fenced { .. }) => self.lost(session, Store::Database),
            Err(error) => {
                // This write can never succeed.
                tracing::error!(session, %error, "the database refused a session's state: dropped");
                if let Some(entry) = self.sessions.get_mut(&session) {
                    match item.item {
                        DbItem::Checkpoint(_) => entry.drop_durable(),
                        // Its end is lost; let go of the rest.
                        DbItem::Finish(_) => entry.end_written(),
                    }
                }
                self.count_dropped_durable("refused", 1);
            }
        }
    }
}
