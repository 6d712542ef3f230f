//! The memory bound on what the writer holds while a store is slow or down:
//! over it, the oldest sessions' hot state goes first (a later snapshot
//! replaces it), durable snapshots only after that. Ends (results) and
//! pending starts are kept: without its start nothing of a session can be
//! written at all. Every drop is counted by reason.

use std::sync::atomic::Ordering;

use super::entry::Entry;
use super::writer::Writer;

impl Writer {
    pub(super) fn enforce_bound(&mut self) {
        let limit = self.config.memory_limit;
        let max_sessions = self.config.max_pending_sessions;
        let mut held = Held {
            bytes: self.sessions.values().map(Entry::bytes).sum(),
            sessions: self.sessions.values().filter(|e| e.bytes() > 0).count(),
        };
        let over = |held: &Held| held.bytes > limit || held.sessions > max_sessions;
        if !over(&held) {
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
            if !over(&held) {
                break;
            }
            if let Some(entry) = self.sessions.get_mut(&session) {
                held.shrink(entry, Entry::drop_hot);
                dropped_hot += 1;
            }
        }
        self.count_dropped_hot("memory_bound", dropped_hot);
        let mut by_tick: Vec<(u64, u64)> = self
            .sessions
            .iter()
            .filter(|(_, e)| e.durable_dirty())
            .filter_map(|(id, e)| e.latest.as_ref().map(|snap| (snap.tick, *id)))
            .collect();
        by_tick.sort_unstable();
        let mut dropped_durable = 0;
        for (_, session) in by_tick {
            if !over(&held) {
                break;
            }
            if let Some(entry) = self.sessions.get_mut(&session) {
                held.shrink(entry, |entry| {
                    entry.drop_hot();
                    entry.drop_durable();
                });
                dropped_durable += 1;
            }
        }
        self.count_dropped_durable("memory_bound", dropped_durable);
        if dropped_hot + dropped_durable > 0 {
            tracing::warn!(
                dropped_hot,
                dropped_durable,
                bytes = held.bytes,
                "persistence memory bound reached: oldest unwritten state dropped"
            );
        }
    }

    pub(super) fn count_dropped_hot(&self, reason: &'static str, sessions: usize) {
        if sessions > 0 {
            self.shared
                .dropped_hot
                .fetch_add(sessions as u64, Ordering::Relaxed);
            metrics::counter!("rampart_persist_dropped_total", "reason" => reason, "state" => "hot")
                .increment(sessions as u64);
        }
    }

    pub(super) fn count_dropped_durable(&self, reason: &'static str, sessions: usize) {
        if sessions > 0 {
            self.shared
                .dropped_durable
                .fetch_add(sessions as u64, Ordering::Relaxed);
            metrics::counter!("rampart_persist_dropped_total", "reason" => reason, "state" => "durable")
                .increment(sessions as u64);
        }
    }
}

/// What the writer holds, kept current while the bound drops state.
struct Held {
    bytes: usize,
    sessions: usize,
}

impl Held {
    fn shrink(&mut self, entry: &mut Entry, drop: impl FnOnce(&mut Entry)) {
        let before = entry.bytes();
        drop(entry);
        let after = entry.bytes();
        self.bytes -= before - after;
        if before > 0 && after == 0 {
            self.sessions = self.sessions.saturating_sub(1);
        }
    }
}
