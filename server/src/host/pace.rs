//! When the tick thread steps. Serving, it keeps the wall clock's period:
//! it sleeps to each deadline and counts overruns and lost ticks. Host
//! tests drive it instead ([`DrivenClock`]): they grant ticks and wait for
//! them, so what a test checks happens at the tick it names, as fast as the
//! machine runs, with no sleeps on the wall clock. Everything the host does
//! in game time (saves, idle timeouts, reconnect grace) counts ticks, so
//! both paces run the same code.

use std::time::{Duration, Instant};

/// How the tick thread waits between ticks.
pub(super) enum Pace {
    /// A tick every period of the wall clock.
    Wall(Metronome),
    /// A tick whenever the test grants one.
    #[cfg(test)]
    Driven(std::sync::Arc<DrivenClock>),
}

/// The wall clock's tick: whole periods from the start, never from "now",
/// so ticks do not drift.
pub(super) struct Metronome {
    period: Duration,
    deadline: Instant,
}

impl Metronome {
    pub(super) fn new(tick_hz: u32) -> Self {
        let period = Duration::from_secs_f64(1.0 / f64::from(tick_hz));
        Metronome {
            period,
            deadline: Instant::now() + period,
        }
    }

    /// Sleeps to the next deadline, or, when the tick ran past it, counts
    /// the overrun and skips the ticks it is too late for rather than
    /// catching up in a burst.
    pub(super) fn wait(&mut self) {
        let now = Instant::now();
        if now < self.deadline {
            std::thread::sleep(self.deadline - now);
            self.deadline += self.period;
        } else {
            metrics::counter!("rampart_tick_overruns_total").increment(1);
            let behind = (now - self.deadline).as_nanos() / self.period.as_nanos().max(1);
            if behind > 0 {
                metrics::counter!("rampart_ticks_lost_total").increment(behind as u64);
            }
            self.deadline += self.period * (behind as u32 + 1);
        }
    }
}

/// Ticks a test grants the host, and the host's count of those it ran.
#[cfg(test)]
#[derive(Default)]
pub(crate) struct DrivenClock {
    ticks: std::sync::Mutex<Granted>,
    changed: std::sync::Condvar,
}

#[cfg(test)]
#[derive(Default)]
struct Granted {
    granted: u64,
    done: u64,
}

#[cfg(test)]
impl DrivenClock {
    /// Lets the host run `ticks` more ticks and returns once it has. Host
    /// requests (create, join, ...) are served between ticks meanwhile, as
    /// at the start of a tick when serving.
    pub(crate) async fn advance(self: &std::sync::Arc<Self>, ticks: u64) {
        let clock = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut state = clock
                .ticks
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            state.granted += ticks;
            let target = state.granted;
            clock.changed.notify_all();
            while state.done < target {
                state = clock
                    .changed
                    .wait(state)
                    .unwrap_or_else(|poison| poison.into_inner());
            }
        })
        .await
        .expect("the host ran the granted ticks");
    }

    /// The host: takes a granted tick, waiting at most `patience` for one.
    pub(super) fn take(&self, patience: Duration) -> bool {
        let state = self
            .ticks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (state, _) = self
            .changed
            .wait_timeout_while(state, patience, |state| state.granted == state.done)
            .unwrap_or_else(|poison| poison.into_inner());
        state.granted > state.done
    }

    /// The host: the tick it took is done.
    pub(super) fn done(&self) {
        let mut state = self
            .ticks
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        state.done += 1;
        self.changed.notify_all();
    }
}
