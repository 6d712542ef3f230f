//! How long the game's snapshots wait for the net loop: the network's side
//! of "keeping time". The tick can be on time while the net thread, short
//! of CPU, sends each client fewer snapshots than its rate; the host reads
//! this to refuse new sessions then, as it does when its ticks run late.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Waits are counted in whole milliseconds up to this; longer ones share
/// the last bucket.
const BUCKETS: usize = 256;

/// The net loop's tally of the snapshots it took from the feed in the
/// current second.
pub(crate) struct SnapshotWaits {
    counts: Box<[u32; BUCKETS + 1]>,
    taken: u32,
    /// The last full second's 99th percentile, shared with the game.
    published: SnapshotWaitReading,
}

impl SnapshotWaits {
    pub(crate) fn new(published: SnapshotWaitReading) -> Self {
        Self {
            counts: Box::new([0; BUCKETS + 1]),
            taken: 0,
            published,
        }
    }

    /// A snapshot taken from the feed `waited` after the tick queued it.
    pub(crate) fn note(&mut self, waited: Duration) {
        let bucket = (waited.as_millis() as usize).min(BUCKETS);
        self.counts[bucket] += 1;
        self.taken += 1;
    }

    /// Ends the second: publishes its 99th percentile (zero when no
    /// snapshot came) and starts the next. Returns what it published.
    pub(crate) fn roll(&mut self) -> Duration {
        let mut p99 = Duration::ZERO;
        if self.taken > 0 {
            let rank = self.taken - self.taken / 100;
            let mut seen = 0;
            for (millis, &count) in self.counts.iter().enumerate() {
                seen += count;
                if seen >= rank {
                    // The bucket's upper edge: a wait of 0.4 ms counts as 1.
                    p99 = Duration::from_millis(millis as u64 + 1);
                    break;
                }
            }
        }
        self.published.report(p99);
        self.counts.fill(0);
        self.taken = 0;
        p99
    }
}

/// The last full second's 99th percentile, as the loop publishes it and
/// the game reads it.
#[derive(Clone, Default)]
pub(crate) struct SnapshotWaitReading(Arc<AtomicU64>);

impl SnapshotWaitReading {
    pub(crate) fn report(&self, p99: Duration) {
        self.0.store(p99.as_micros() as u64, Ordering::Relaxed);
    }

    pub(crate) fn p99(&self) -> Duration {
        Duration::from_micros(self.0.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_figure_is_the_seconds_99th_percentile() {
        let reading = SnapshotWaitReading::default();
        let mut waits = SnapshotWaits::new(reading.clone());
        for _ in 0..990 {
            waits.note(Duration::from_micros(2_500));
        }
        for _ in 0..10 {
            waits.note(Duration::from_millis(80));
        }
        assert_eq!(waits.roll(), Duration::from_millis(3));
        assert_eq!(reading.p99(), Duration::from_millis(3));
        for _ in 0..95 {
            waits.note(Duration::from_millis(1));
        }
        for _ in 0..5 {
            waits.note(Duration::from_secs(2));
        }
        assert_eq!(waits.roll(), Duration::from_millis(BUCKETS as u64 + 1));
        assert_eq!(
            waits.roll(),
            Duration::ZERO,
            "a quiet second waits for nothing"
        );
        assert_eq!(reading.p99(), Duration::ZERO);
    }
}
