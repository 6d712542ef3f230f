//! The writer's Redis side: pipelined hot writes (snapshot and command
//! stream per session), letting go of ended and released sessions, the
//! cache invalidation after an end, and lease renewal.

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::hot::{FlushedSnapshot, SessionFlush};
use crate::{CachedRecord, HotError, HotStore};

use super::Store;
use super::writer::Writer;

impl Writer {
    /// Whether Redis may be called now; probes an open circuit first.
    pub(super) async fn redis_ready(&mut self, now: Instant) -> Option<HotStore> {
        let hot = self.hot.clone()?;
        self.redis_breaker
            .admit(now, hot.ping())
            .await
            .then_some(hot)
    }

    /// Writes every session's pending hot state, `max_batch` sessions per
    /// pipeline, then lets go of the sessions that are done here.
    pub(super) async fn redis_round(&mut self, now: Instant) -> bool {
        let has_work = self
            .sessions
            .values()
            .any(|entry| entry.hot_work() || entry.ready_to_let_go());
        if !has_work {
            return false;
        }
        let Some(hot) = self.redis_ready(now).await else {
            return false;
        };
        let mut ids: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, entry)| entry.hot_work())
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        for chunk in ids.chunks(self.config.max_batch.max(1)) {
            let flushes: Vec<SessionFlush<'_>> = chunk
                .iter()
                .filter_map(|id| self.sessions.get(id).map(|entry| (*id, entry)))
                .map(|(session, entry)| SessionFlush {
                    session,
                    epoch: entry.epoch,
                    commands: &entry.commands,
                    first_command: Some(entry.first_command),
                    snapshot: entry.latest.as_ref().filter(|_| entry.hot_dirty).map(|s| {
                        FlushedSnapshot {
                            tick: s.tick,
                            state_hash: s.state_hash,
                            bytes: &s.bytes,
                        }
                    }),
                })
                .collect();
            let outcomes =
                crate::breaker::within(self.redis_breaker.call_timeout(), hot.flush(&flushes))
                    .await;
            drop(flushes);
            let Some(outcomes) = self.redis_breaker.book("flush", outcomes) else {
                return true;
            };
            for (session, outcome) in chunk.iter().zip(outcomes) {
                self.hot_outcome(*session, outcome);
            }
        }
        self.let_go(&hot).await;
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
    /// left to write: drop their Redis keys or lease, and forget them.
    async fn let_go(&mut self, hot: &HotStore) {
        let instance = self.config.instance.clone();
        let done: Vec<(u64, bool)> = self
            .sessions
            .iter()
            .filter(|(_, entry)| entry.ready_to_let_go())
            .map(|(id, entry)| (*id, matches!(entry.phase, super::entry::Phase::Ended)))
            .collect();
        for (session, ended) in done {
            let call = async {
                if ended {
                    hot.forget(session).await?;
                }
                hot.release_lease(session, &instance).await
            };
            if self.redis_breaker.call("release", call).await.is_none() {
                return;
            }
            self.sessions.remove(&session);
        }
    }

    /// Deletes the cached records that the ends written this round changed,
    /// in one Redis call. Tried once: a failure (or an open circuit) is
    /// logged and counted and the records stay stale until their TTL, which
    /// is short for that reason; retrying would hold ends in memory for as
    /// long as Redis is down.
    pub(super) async fn invalidate_stale_records(&mut self, now: Instant) {
        if self.stale.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut self.stale);
        let ends = stale.len() as u64;
        let invalidated = match self.redis_ready(now).await {
            None => false,
            Some(hot) => {
                let records: Vec<CachedRecord<'_>> = stale
                    .iter()
                    .flat_map(|finish| finish.stale_records())
                    .collect();
                let call = hot.invalidate_records(&records);
                self.redis_breaker
                    .call("cache invalidation", call)
                    .await
                    .is_some()
            }
        };
        let result = if invalidated {
            "ok"
        } else {
            tracing::warn!(
                sessions = ends,
                "cached records of ended sessions not invalidated (Redis failed or its circuit is open): stale until they expire"
            );
            "failed"
        };
        metrics::counter!("rampart_cache_invalidations_total", "result" => result).increment(ends);
    }

    /// Renews the lease of every session this instance runs, each third of
    /// the lease. A lapsed lease nobody took is taken back (an outage may
    /// outlast the lease); one held by another instance means it is theirs.
    /// A session whose start is pending has no lease to renew: each try of
    /// the start takes it afresh.
    pub(super) async fn renew_leases(&mut self, now: Instant) {
        if self.hot.is_none() || now < self.next_renewal {
            return;
        }
        let owned: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, entry)| entry.holds_lease())
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
        let instance = self.config.instance.clone();
        for chunk in owned.chunks(self.config.max_batch.max(1)) {
            let renewal = hot.renew_leases(chunk, &instance, ttl);
            let Some(renewed) = self.redis_breaker.call("lease renewal", renewal).await else {
                return;
            };
            for (&session, renewed) in chunk.iter().zip(renewed) {
                if renewed {
                    continue;
                }
                let retake = hot.acquire_lease(session, &instance, ttl);
                match self.redis_breaker.call("lease acquire", retake).await {
                    Some(true) => tracing::warn!(session, "lease had lapsed; taken back"),
                    Some(false) => self.lost(session, Store::Redis),
                    None => return,
                }
            }
        }
    }
}
