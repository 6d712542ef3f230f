//! How the net loop sleeps and who wakes it. It waits in `mio::Poll` on its
//! UDP sockets and WebSockets; the game's feed queues through a
//! [`NudgingSender`], which wakes it only when it is asleep, so a tick that
//! publishes to hundreds of sessions costs one wake-up, not one system call
//! per message.

use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};

/// The loop's doorbell: whether it sleeps, and the waker of its poll (set
/// once the loop has one; a loop driven by tests never sleeps).
#[derive(Default)]
pub(crate) struct Nudge {
    asleep: AtomicBool,
    waker: OnceLock<mio::Waker>,
}

impl Nudge {
    pub(crate) fn set_waker(&self, waker: mio::Waker) {
        let _ = self.waker.set(waker);
    }

    /// Called by the loop before it checks its queues one last time and
    /// sleeps: whatever is queued after this wakes it.
    pub(crate) fn going_to_sleep(&self) {
        self.asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
    }

    pub(crate) fn awake(&self) {
        self.asleep.store(false, Ordering::Relaxed);
    }

    fn nudge(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed)
            && self.asleep.swap(false, Ordering::SeqCst)
            && let Some(waker) = self.waker.get()
            && let Err(error) = waker.wake()
        {
            // The loop still wakes within its maintenance period.
            tracing::warn!(%error, "could not wake the net loop");
        }
    }
}

/// A bounded queue into the net loop that wakes it.
pub(crate) struct NudgingSender<T> {
    queue: SyncSender<T>,
    nudge: Arc<Nudge>,
}

impl<T> Clone for NudgingSender<T> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
            nudge: self.nudge.clone(),
        }
    }
}

impl<T> NudgingSender<T> {
    pub(crate) fn new(queue: SyncSender<T>, nudge: Arc<Nudge>) -> Self {
        Self { queue, nudge }
    }

    /// Queues `item` without waiting; a full queue gives it back.
    pub(crate) fn try_send(&self, item: T) -> Result<(), TrySendError<T>> {
        self.queue.try_send(item)?;
        self.nudge.nudge();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::mpsc::sync_channel;
    use std::time::Duration;

    use super::*;

    const TOKEN: mio::Token = mio::Token(7);

    fn doorbell() -> (
        mio::Poll,
        NudgingSender<u32>,
        std::sync::mpsc::Receiver<u32>,
        Arc<Nudge>,
    ) {
        let poll = mio::Poll::new().unwrap();
        let nudge = Arc::new(Nudge::default());
        nudge.set_waker(mio::Waker::new(poll.registry(), TOKEN).unwrap());
        let (queue, receiver) = sync_channel(16);
        (
            poll,
            NudgingSender::new(queue, nudge.clone()),
            receiver,
            nudge,
        )
    }

    fn woken(poll: &mut mio::Poll, timeout: Duration) -> bool {
        let mut events = mio::Events::with_capacity(4);
        poll.poll(&mut events, Some(timeout)).unwrap();
        events.iter().any(|event| event.token() == TOKEN)
    }

    #[test]
    fn a_sleeping_loop_is_woken_by_what_is_queued_for_it() {
        let (mut poll, sender, receiver, nudge) = doorbell();
        nudge.going_to_sleep();
        let thread = std::thread::spawn(move || sender.try_send(1).unwrap());
        // Without the wake this poll would sleep out its minute and fail.
        assert!(woken(&mut poll, Duration::from_secs(60)));
        thread.join().unwrap();
        assert_eq!(receiver.try_recv(), Ok(1));
    }

    #[test]
    fn an_awake_loop_costs_its_senders_no_wake_up() {
        let (mut poll, sender, receiver, nudge) = doorbell();
        nudge.going_to_sleep();
        nudge.awake();
        sender.try_send(1).unwrap();
        sender.try_send(2).unwrap();
        assert!(!woken(&mut poll, Duration::ZERO));
        assert_eq!(receiver.try_iter().collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn a_burst_while_asleep_wakes_the_loop_once() {
        let (mut poll, sender, _receiver, nudge) = doorbell();
        nudge.going_to_sleep();
        for item in 0..10 {
            sender.try_send(item).unwrap();
        }
        assert!(woken(&mut poll, Duration::from_secs(60)));
        // Only the first send found the loop asleep.
        assert!(!woken(&mut poll, Duration::ZERO));
    }
}
