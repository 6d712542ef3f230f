//! The circuit breaker in front of each store: a dead or slow store must cost
//! the write-behind task one failed call now and then, not a timeout per
//! write, and must not be hammered by every session while it recovers.

use std::fmt::Display;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::persister::{Shared, Store};

/// When a store is given up on, and how it is tried again.
#[derive(Clone, Debug)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the circuit. A call that times out
    /// opens it at once: a store that hangs costs the most.
    pub failures: u32,
    /// How long one store call may take before it counts as failed.
    pub call_timeout: Duration,
    /// The first wait before probing an open store; doubled (with jitter, so
    /// a fleet of instances does not probe in step) after each failed probe.
    pub backoff_min: Duration,
    /// The longest wait between probes.
    pub backoff_max: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 3,
            call_timeout: Duration::from_secs(2),
            backoff_min: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// Why a store call did not go through.
pub(crate) enum Fault {
    /// The store (or the connection to it) failed the call.
    Failed(String),
    /// The call took longer than the call timeout.
    TimedOut,
}

/// Runs one store call within `timeout`, without booking it: for calls that
/// run in a round's parallel tasks, booked with [`Breaker::book`] when they
/// come back.
pub(crate) async fn within<T, E: Display>(
    timeout: Duration,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, Fault> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Fault::Failed(error.to_string())),
        Err(_) => Err(Fault::TimedOut),
    }
}

/// One store's breaker: closed (calls go through, failures counted) or open
/// (no calls until `retry_at`, then one probe decides).
pub(crate) struct Breaker {
    store: Store,
    config: BreakerConfig,
    shared: Arc<Shared>,
    failures: u32,
    open: Option<Open>,
}

struct Open {
    retry_at: Instant,
    backoff: Duration,
}

impl Breaker {
    pub(crate) fn new(store: Store, config: BreakerConfig, shared: Arc<Shared>) -> Self {
        shared.up(store).store(true, Ordering::Relaxed);
        metrics::gauge!("rampart_store_up", "store" => store.as_str()).set(1.0);
        Self {
            store,
            config,
            shared,
            failures: 0,
            open: None,
        }
    }

    pub(crate) fn call_timeout(&self) -> Duration {
        self.config.call_timeout
    }

    /// May the store be called now? Open circuits say yes once the backoff
    /// has passed; the caller probes first ([`Breaker::is_open`]).
    pub(crate) fn ready(&self, now: Instant) -> bool {
        self.open.as_ref().is_none_or(|open| now >= open.retry_at)
    }

    /// May the store be called now? Like [`Breaker::ready`], and on an
    /// open circuit whose backoff has passed, runs `probe` (within the call
    /// timeout) and closes the circuit if it succeeds.
    pub(crate) async fn admit<E: Display>(
        &mut self,
        now: Instant,
        probe: impl Future<Output = Result<(), E>>,
    ) -> bool {
        if !self.ready(now) {
            return false;
        }
        !self.is_open() || self.call("probe", probe).await.is_some()
    }

    /// Runs one store call within the call timeout and books how it went:
    /// a value closes the circuit, an error or a timeout counts against it
    /// (`what` names the call in the log).
    pub(crate) async fn call<T, E: Display>(
        &mut self,
        what: &'static str,
        call: impl Future<Output = Result<T, E>>,
    ) -> Option<T> {
        let outcome = within(self.call_timeout(), call).await;
        self.book(what, outcome)
    }

    /// Books a call that ran elsewhere ([`within`]).
    pub(crate) fn book<T>(&mut self, what: &'static str, outcome: Result<T, Fault>) -> Option<T> {
        match outcome {
            Ok(value) => {
                self.success();
                Some(value)
            }
            Err(Fault::Failed(error)) => {
                self.failure(&error, false);
                None
            }
            Err(Fault::TimedOut) => {
                self.failure(&format!("{what} timed out"), true);
                None
            }
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// When an open circuit wants its next probe.
    pub(crate) fn retry_at(&self) -> Option<Instant> {
        self.open.as_ref().map(|open| open.retry_at)
    }

    pub(crate) fn success(&mut self) {
        self.failures = 0;
        if self.open.take().is_some() {
            tracing::info!(
                store = self.store.as_str(),
                "store is back: circuit closed, catching up"
            );
            self.shared.up(self.store).store(true, Ordering::Relaxed);
            metrics::gauge!("rampart_store_up", "store" => self.store.as_str()).set(1.0);
        }
    }

    /// Counts a failed call. The backoff runs from now, not from when the
    /// call started: a call that timed out has already waited.
    fn failure(&mut self, error: &str, timed_out: bool) {
        let now = Instant::now();
        self.failures = self.failures.saturating_add(1);
        metrics::counter!("rampart_persist_store_errors_total", "store" => self.store.as_str())
            .increment(1);
        if let Some(open) = &mut self.open {
            open.backoff = (open.backoff * 2).min(self.config.backoff_max);
            open.retry_at = now + jittered(open.backoff);
            tracing::debug!(store = self.store.as_str(), error, backoff = ?open.backoff, "probe failed: circuit stays open");
        } else if timed_out || self.failures >= self.config.failures {
            let backoff = self.config.backoff_min;
            self.open = Some(Open {
                retry_at: now + jittered(backoff),
                backoff,
            });
            tracing::warn!(
                store = self.store.as_str(),
                error,
                failures = self.failures,
                "store failing: circuit open, holding writes in memory and retrying with backoff"
            );
            self.shared.up(self.store).store(false, Ordering::Relaxed);
            metrics::gauge!("rampart_store_up", "store" => self.store.as_str()).set(0.0);
        } else {
            tracing::debug!(store = self.store.as_str(), error, "store call failed");
        }
    }
}

/// Between half and all of `backoff`, at random: std's per-instance hasher
/// keys are random, which is all the randomness a retry spread needs.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let span = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    let noise = RandomState::new().hash_one(Instant::now());
    half + Duration::from_nanos(noise % span)
}
