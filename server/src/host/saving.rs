//! The host's side of "what is saved when". The host decides: a session is
//! registered with the stores when it starts running, saved every
//! `snapshot_interval` (to Redis; without Redis to the database), saved
//! durably (a database checkpoint) every `checkpoint_interval`, at each
//! wave's start and end, when it is handed over (drain) and when it ends,
//! and between saves the commands it accepted go out every
//! [`COMMAND_FLUSH`]. The persistence crate decides how: coalescing,
//! batching, retries, breakers, leases and fencing.
//!
//! A save costs what changed, not the whole game: a checkpoint carries only
//! the commands since the last durable save ([`CommandTail`]); the ones
//! before are in the database's command log, to which the writer appends
//! each checkpoint's new commands in its transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rampart_net::protocol::EndReason;
use rampart_persistence::{
    CommandEntry, FinishJob, MatchOutcome, PersistHandle, PersistJob, RowState, SeatResult,
    SendError, SessionRow,
};
use rampart_sim::log::{CommandLog, LogEntry};
use rampart_sim::{Content, Event, Outcome, SessionConfig};

use super::hosted::{HostedSession, Seat};
use super::saved;

/// How often commands accepted between two saves go to the hot store, so
/// the stored command stream trails the game by about this much.
const COMMAND_FLUSH: Duration = Duration::from_millis(100);

/// The host's link to the persistence writer, shared by every session:
/// where saves go and how often, in ticks.
#[derive(Clone)]
pub(crate) struct Saver {
    handle: PersistHandle,
    /// Ticks between two saves of a running session.
    save_every: u64,
    /// Ticks between two durable saves (database checkpoints).
    checkpoint_every: u64,
    /// Ticks between two hand-overs of the commands accepted since.
    flush_every: u64,
}

impl Saver {
    pub fn new(handle: PersistHandle, cadence: &super::SaveCadence, tick_hz: u32) -> Self {
        let ticks =
            |every: Duration| (every.as_secs_f64() * f64::from(tick_hz)).round().max(1.0) as u64;
        Self {
            handle,
            save_every: ticks(cadence.snapshot_interval),
            checkpoint_every: ticks(cadence.checkpoint_interval),
            flush_every: ticks(COMMAND_FLUSH),
        }
    }
}

/// A session's saving state: its link, its owner epoch and when its next
/// saves are due.
pub(crate) struct Saving {
    saver: Saver,
    /// The owner epoch every write carries: 0 until the session is
    /// registered (lobbies are not persisted), 1 for a session started
    /// here, the claim's epoch for an adopted one.
    epoch: u64,
    /// Session tick at which the next save is due.
    next_save: u64,
    /// Session tick at which the next durable save is due.
    next_checkpoint: u64,
}

impl Saving {
    pub fn new(saver: Saver) -> Self {
        Self {
            saver,
            epoch: 0,
            next_save: 0,
            next_checkpoint: 0,
        }
    }
}

/// A session's command log as its checkpoints need it: the commands since
/// the last durable save (those before are in the database's command log),
/// and how far the writer has been handed them. Bounded by the checkpoint
/// interval, so neither a save nor the session's memory grows with the
/// length of the game.
#[derive(Clone, Debug)]
pub struct CommandTail {
    log: CommandLog,
    /// `log.entries[..handed]` went to the writer.
    handed: usize,
    /// `log.entries[..recovered]` were recovered by an adopter (from the
    /// checkpoint and the command stream): the database's log may lack
    /// them, so the first save logs them there (lines already there stay).
    recovered: usize,
}

impl CommandTail {
    /// The log of a new session: nothing yet.
    pub fn new(log: CommandLog) -> Self {
        Self {
            log,
            handed: 0,
            recovered: 0,
        }
    }

    /// A resumed session's tail: already in the stream, perhaps not yet in
    /// the database's log.
    pub fn recovered(log: CommandLog) -> Self {
        let len = log.entries.len();
        Self {
            log,
            handed: len,
            recovered: len,
        }
    }

    /// How the session was built.
    pub fn config(&self) -> &SessionConfig {
        &self.log.config
    }

    /// The content version the session runs.
    pub fn content_version(&self) -> u64 {
        self.log.content_version
    }

    /// The commands held (those since the last durable save).
    #[cfg(test)]
    pub(crate) fn entries(&self) -> &[LogEntry] {
        &self.log.entries
    }

    /// Records an accepted command.
    pub fn push(&mut self, entry: LogEntry) {
        self.log.entries.push(entry);
    }

    /// The tail as a checkpoint stores it: the log text of the header and
    /// the commands since the last durable save.
    pub fn text(&self, content: &Content) -> String {
        self.log.to_text(content)
    }

    /// The writer has everything so far. After a durable save at `tick`,
    /// the commands before it go with that checkpoint into the database's
    /// log and leave the tail; those at `tick` itself were not applied yet
    /// (the save does not hold them), so they stay.
    pub fn handed_over(&mut self, durable_at: Option<u64>) {
        self.handed = self.log.entries.len();
        self.recovered = 0;
        if let Some(tick) = durable_at {
            let applied = self.log.entries.partition_point(|entry| entry.tick < tick);
            self.log.entries.drain(..applied);
            self.handed -= applied;
        }
    }

    fn unhanded(&self, content: &Content) -> Vec<CommandEntry> {
        encode(&self.log.entries[self.handed..], content)
    }

    fn unlogged_recovered(&self, content: &Content) -> Vec<CommandEntry> {
        encode(&self.log.entries[..self.recovered], content)
    }

    fn has_unhanded(&self) -> bool {
        self.handed < self.log.entries.len()
    }
}

fn encode(entries: &[LogEntry], content: &Content) -> Vec<CommandEntry> {
    entries
        .iter()
        .map(|entry| saved::command_entry(entry, content))
        .collect()
}

impl HostedSession {
    /// After each step: registers the session with the stores once it
    /// runs, then saves it when a save is due (durably at the checkpoint
    /// cadence and at each wave's start and end, the natural checkpoints),
    /// and hands over the commands accepted in between every flush
    /// interval. A full queue only delays: the commands stay pending and go
    /// with the next job.
    pub(super) fn persist_step(&mut self) {
        let Some(saving) = &self.saving else {
            return;
        };
        if saving.epoch == 0 {
            self.register();
            return;
        }
        if self.session.outcome().is_some() {
            // The end is persisted by `finish`.
            return;
        }
        let tick = self.session.tick();
        let wave_boundary =
            self.session.events().iter().any(|event| {
                matches!(event, Event::WaveStarted { .. } | Event::WaveCleared { .. })
            });
        if wave_boundary || tick >= saving.next_checkpoint {
            self.save(true);
        } else if tick >= saving.next_save {
            self.save(false);
        } else if tick.is_multiple_of(saving.saver.flush_every) && self.log.has_unhanded() {
            let job = PersistJob::Commands {
                session: self.id.0,
                epoch: saving.epoch,
                commands: self.log.unhanded(self.session.content()),
            };
            if saving.saver.handle.try_send(job).is_ok() {
                self.log.handed_over(None);
            }
        }
    }

    /// The session starts running here: it becomes the first owner
    /// (epoch 1 by definition of a fresh row) and saves durably at once.
    fn register(&mut self) {
        let Some(saving) = &mut self.saving else {
            return;
        };
        let config = self.log.config();
        let row = SessionRow {
            id: self.id.0,
            map: config.map.clone(),
            scenario: config.scenario.clone(),
            seed: config.seed,
            players: config.players,
            tick_hz: u16::try_from(config.tick_hz).unwrap_or(u16::MAX),
            content_version: self.log.content_version(),
            state: RowState::Running,
        };
        if saving
            .saver
            .handle
            .try_send(PersistJob::Start(Box::new(row)))
            .is_ok()
        {
            saving.epoch = 1;
            self.save(true);
            // Sessions created together would save on the same tick forever
            // after: spread them over the intervals by id (after the save,
            // which sets the next ones from its own tick).
            let tick = self.session.tick();
            let spread = self.id.0;
            if let Some(saving) = &mut self.saving {
                saving.next_save = tick + 1 + spread % saving.saver.save_every;
                saving.next_checkpoint = tick + 1 + spread % saving.saver.checkpoint_every;
            }
        }
    }

    fn envelope(&self) -> Arc<[u8]> {
        saved::encode_checkpoint(
            &self.session,
            self.seats.iter().map(saved::SavedSeat::from).collect(),
            self.private,
            self.created_unix_ms,
            &self.log,
        )
        .into()
    }

    /// Hands the session's state and the commands since the last job to the
    /// writer; `durable` makes it a database checkpoint. False when the
    /// queue refused it (retried soon, commands kept).
    pub fn save(&mut self, durable: bool) -> bool {
        let Some(saving) = &self.saving else {
            return true;
        };
        let epoch = saving.epoch;
        let tick = self.session.tick();
        let state_hash = self.session.state_hash();
        let content = self.session.content();
        let job = PersistJob::Save {
            session: self.id.0,
            epoch,
            tick,
            state_hash,
            bytes: self.envelope(),
            commands: self.log.unhanded(content),
            recovered: self.log.unlogged_recovered(content),
            durable,
        };
        let Some(saving) = &mut self.saving else {
            return true;
        };
        match saving.saver.handle.try_send(job) {
            Ok(()) => {
                self.log.handed_over(durable.then_some(tick));
                saving.next_save = tick + saving.saver.save_every;
                if durable {
                    saving.next_checkpoint = tick + saving.saver.checkpoint_every;
                }
                true
            }
            Err(SendError::Full(_)) => {
                saving.next_save = tick + saving.saver.flush_every;
                if durable {
                    saving.next_checkpoint = saving.next_save;
                }
                false
            }
            Err(SendError::Closed(_)) => false,
        }
    }

    /// Adopted under `epoch`: the new owner's first checkpoint puts the
    /// resumed state in the database under the new epoch (and the commands
    /// it recovered in the database's log), and the writer starts renewing
    /// the lease.
    pub fn adopted(&mut self, epoch: u64) {
        let Some(saving) = &mut self.saving else {
            return;
        };
        saving.epoch = epoch;
        self.save(true);
    }

    /// This instance lets go of the session (drain): a durable save, then
    /// the lease is released so another instance adopts it at once. False
    /// when the writer would not take it.
    pub fn hand_over(&mut self) -> bool {
        let Some(epoch) = self.saving.as_ref().map(|saving| saving.epoch) else {
            return false;
        };
        if epoch == 0 {
            self.register();
        } else if !self.save(true) {
            return false;
        }
        let Some(saving) = &self.saving else {
            return false;
        };
        saving.epoch != 0
            && saving
                .saver
                .handle
                .try_send(PersistJob::Release {
                    session: self.id.0,
                    epoch: saving.epoch,
                })
                .is_ok()
    }

    /// The session ended here: its final state, last commands, results and
    /// history go to the database (a session that never ran has nothing to
    /// record).
    pub fn finish(&mut self, reason: EndReason) {
        let Some(epoch) = self.saving.as_ref().map(|saving| saving.epoch) else {
            return;
        };
        if epoch == 0 {
            return;
        }
        // A session that panicked may panic again when saved: it then ends
        // without a final checkpoint (its last one stays).
        let (bytes, state_hash) = catch_unwind(AssertUnwindSafe(|| {
            (self.envelope(), self.session.state_hash())
        }))
        .unwrap_or_else(|_| (Arc::from([]), 0));
        let content = self.session.content();
        let mut commands = self.log.unlogged_recovered(content);
        commands.extend(self.log.unhanded(content));
        let summary = self.session.summary();
        let victory = summary.outcome == Some(Outcome::Victory);
        let seats = self
            .session
            .results()
            .into_iter()
            .map(|result| SeatResult {
                seat: result.player.0,
                player_id: match self.seats.get(usize::from(result.player.0)) {
                    Some(Seat::Person { who, .. }) => Some(who.to_string()),
                    _ => None,
                },
                score: result.score,
                kills: result.kills,
                // Leaks cost the team, not a seat.
                leaks: summary.leaks,
                gold_earned: result.gold_earned,
                victory,
            })
            .collect();
        let finish = FinishJob {
            session: self.id.0,
            map: self.map.to_string(),
            epoch,
            tick: summary.tick,
            state_hash,
            commands,
            bytes,
            end_reason: reason.label().to_owned(),
            seats,
            outcome: MatchOutcome {
                outcome: summary
                    .outcome
                    .map_or(reason.label(), Outcome::name)
                    .to_owned(),
                ticks: summary.tick,
                players: self.session.players(),
            },
        };
        let refused = self.saving.as_ref().is_none_or(|saving| {
            saving
                .saver
                .handle
                .try_send(PersistJob::Finish(Box::new(finish)))
                .is_err()
        });
        if refused {
            tracing::error!(session = %self.id, "persistence queue refused the session's end: its results are not recorded");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use rampart_sim::{Command, PlayerId};

    use super::*;

    fn ready(tick: u64) -> LogEntry {
        LogEntry {
            tick,
            player: PlayerId(0),
            command: Command::Ready,
        }
    }

    fn ticks(entries: &[CommandEntry]) -> Vec<u64> {
        entries.iter().map(|entry| entry.tick).collect()
    }

    /// The tail holds only what no durable save has carried yet, hands
    /// each command to the writer once, and an adopter's recovered
    /// commands go out once more, for the database's log only.
    #[test]
    fn the_tail_keeps_what_the_last_durable_save_did_not_carry() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let content = rampart_sim::content::load_dir(&dir).unwrap();
        let config = SessionConfig {
            map: "reference".into(),
            scenario: None,
            players: 2,
            seed: 1,
            tick_hz: 30,
        };
        let mut tail = CommandTail::new(CommandLog::new(&content, config));
        for tick in [1, 2, 5] {
            tail.push(ready(tick));
        }
        assert_eq!(ticks(&tail.unhanded(&content)), [1, 2, 5]);
        tail.handed_over(None);
        assert!(!tail.has_unhanded());
        assert_eq!(tail.entries().len(), 3, "not durable: all kept");

        tail.push(ready(6));
        assert_eq!(ticks(&tail.unhanded(&content)), [6]);
        // A durable save at tick 6: the command submitted for tick 6 is not
        // applied yet, so it stays with the tail.
        tail.handed_over(Some(6));
        assert_eq!(tail.entries(), [ready(6)]);
        assert!(tail.unhanded(&content).is_empty());
        assert!(tail.unlogged_recovered(&content).is_empty());

        let mut resumed = CommandTail::recovered(tail.log.clone());
        resumed.push(ready(7));
        assert_eq!(ticks(&resumed.unlogged_recovered(&content)), [6]);
        assert_eq!(ticks(&resumed.unhanded(&content)), [7]);
        resumed.handed_over(Some(8));
        assert!(resumed.entries().is_empty());
        assert!(resumed.unlogged_recovered(&content).is_empty());
    }
}
