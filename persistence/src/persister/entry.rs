//! What the writer holds for one session: where the session is in its life
//! here ([`Phase`]), and the state no store has taken yet. Every question a
//! writing round asks of a session ("may Redis be written?", "is a
//! checkpoint due?", "may it be forgotten?") is answered here, from the
//! phase, so the rounds never re-derive the lifecycle from loose flags.

use std::sync::Arc;
use std::time::Instant;

use crate::{CommandEntry, LoggedCommand, SessionRow};

use super::FinishJob;

/// A snapshot the writer holds until every store that needs it has it.
#[derive(Clone)]
pub(super) struct Snap {
    pub tick: u64,
    pub state_hash: u64,
    pub bytes: Arc<[u8]>,
}

/// Where a session is in its life on this instance. Lifecycle:
///
/// ```text
/// Starting --start written--> Running --Release--> Releasing --lease released--> (forgotten)
///                                 \--Finish--> Ending --end written--> Ended --keys dropped--> (forgotten)
/// any --a store says another instance owns it--> Fenced --FENCED_MEMORY--> (forgotten)
/// ```
pub(super) enum Phase {
    /// Not registered in the stores yet (no lease, no row): nothing else of
    /// it may be written until it is. Jobs that arrive meanwhile are kept,
    /// and a release or end is remembered for when the start is done.
    Starting {
        row: Box<SessionRow>,
        then: AfterStart,
    },
    /// Registered; its lease is renewed while it runs.
    Running,
    /// Drained: once what is held for it is written, its lease is released
    /// so another instance adopts it at once.
    Releasing,
    /// Ended: the final checkpoint, results and history are still to be
    /// written to the database.
    Ending(Box<FinishJob>),
    /// The end is in the database (or there is none): its Redis keys and
    /// lease are still to be dropped.
    Ended,
    /// Another instance owns it: its state was dropped and its jobs at this
    /// epoch are ignored, for a while, rather than refused (and reported)
    /// again.
    Fenced { since: Instant },
}

/// What a session whose start is pending becomes once the start is written.
pub(super) enum AfterStart {
    Run,
    Release,
    /// `None`: ended with nothing for the database to record (no database).
    End(Option<Box<FinishJob>>),
}

impl AfterStart {
    fn into_phase(self) -> Phase {
        match self {
            Self::Run => Phase::Running,
            Self::Release => Phase::Releasing,
            Self::End(Some(finish)) => Phase::Ending(finish),
            Self::End(None) => Phase::Ended,
        }
    }
}

/// What the writer holds for one session it owns.
pub(super) struct Entry {
    pub epoch: u64,
    pub phase: Phase,
    /// The newest snapshot, while some store still needs it.
    pub latest: Option<Snap>,
    /// `latest` is not in Redis yet.
    pub hot_dirty: bool,
    /// `latest` still goes to the database: a durable save (the host's
    /// checkpoint cadence, a wave's end, a drain), or any save without
    /// Redis.
    pub durable_due: bool,
    /// Commands for the database's command log, written with the next
    /// checkpoint.
    pub log: Vec<LoggedCommand>,
    pub log_bytes: usize,
    /// The tick of the last command logged and how many that tick had:
    /// numbers each tick's commands from 0. An entry's first command starts
    /// a tick (a session's first, or an adopter's first recovered one).
    pub log_place: Option<(u64, u32)>,
    /// Commands accepted since the last Redis write.
    pub commands: Vec<CommandEntry>,
    pub command_bytes: usize,
    /// This epoch's number of `commands[0]`; numbers make retries
    /// idempotent (see the write script).
    pub first_command: u64,
    pub next_command: u64,
    /// Commands up to this tick were dropped: nothing more goes to Redis
    /// until a snapshot newer than them goes with it, or the stream would
    /// have a gap an adopter replays across.
    pub gap_through: Option<u64>,
    /// When hot state became pending (a counter): the oldest goes first.
    pub pending_since: u64,
}

impl Entry {
    pub fn new(epoch: u64, phase: Phase) -> Self {
        Self {
            epoch,
            phase,
            latest: None,
            hot_dirty: false,
            durable_due: false,
            log: Vec::new(),
            log_bytes: 0,
            log_place: None,
            commands: Vec::new(),
            command_bytes: 0,
            first_command: 0,
            next_command: 0,
            gap_through: None,
            pending_since: 0,
        }
    }

    pub fn is_fenced(&self) -> bool {
        matches!(self.phase, Phase::Fenced { .. })
    }

    /// Registered and not fenced: its writes may go out.
    pub fn is_registered(&self) -> bool {
        !matches!(self.phase, Phase::Starting { .. } | Phase::Fenced { .. })
    }

    /// Jobs for it are still taken (not ending, ended or fenced).
    pub fn takes_jobs(&self) -> bool {
        match &self.phase {
            Phase::Starting { then, .. } => !matches!(then, AfterStart::End(_)),
            Phase::Running | Phase::Releasing => true,
            Phase::Ending(_) | Phase::Ended | Phase::Fenced { .. } => false,
        }
    }

    /// The start is written: the session becomes what its jobs asked for
    /// meanwhile.
    pub fn started(&mut self) {
        if let Phase::Starting { then, .. } = std::mem::replace(&mut self.phase, Phase::Running) {
            self.phase = then.into_phase();
        }
    }

    /// Drain: release the lease once everything held is written.
    pub fn release(&mut self) {
        match &mut self.phase {
            Phase::Starting { then, .. } => *then = AfterStart::Release,
            Phase::Running => self.phase = Phase::Releasing,
            _ => {}
        }
    }

    /// The session ended; `finish` is what the database records (`None`
    /// without a database: the end only drops the hot state).
    pub fn end(&mut self, finish: Option<Box<FinishJob>>) {
        if finish.is_none() {
            self.drop_hot();
            self.latest = None;
            self.durable_due = false;
        }
        match &mut self.phase {
            Phase::Starting { then, .. } => *then = AfterStart::End(finish),
            _ => {
                self.phase = match finish {
                    Some(finish) => Phase::Ending(finish),
                    None => Phase::Ended,
                }
            }
        }
    }

    /// Hot state waiting for a Redis write it may have now.
    pub fn hot_work(&self) -> bool {
        self.is_registered() && self.hot_pending()
    }

    /// Hot state waiting for a Redis write, started or not (the memory
    /// bound may drop it either way).
    pub fn hot_pending(&self) -> bool {
        let gap_closed = self.gap_through.is_none_or(|through| {
            self.hot_dirty && self.latest.as_ref().is_some_and(|s| s.tick > through)
        });
        !matches!(self.phase, Phase::Fenced { .. } | Phase::Ended)
            && (self.hot_dirty || !self.commands.is_empty())
            && gap_closed
    }

    /// A database write is due: the end, or a checkpoint.
    pub fn durable_work(&self) -> bool {
        match self.phase {
            Phase::Ending(_) => true,
            Phase::Running | Phase::Releasing => self.durable_dirty(),
            _ => false,
        }
    }

    /// Something waits for the database: a snapshot, or log lines (which
    /// go with the next checkpoint).
    pub fn durable_dirty(&self) -> bool {
        self.durable_due && self.latest.is_some()
    }

    /// Its lease is renewed: it runs here.
    pub fn holds_lease(&self) -> bool {
        matches!(self.phase, Phase::Running | Phase::Ending(_))
    }

    /// Its Redis keys or lease may be dropped now: the end is durable, or
    /// it was released and everything held is written.
    pub fn ready_to_let_go(&self) -> bool {
        match self.phase {
            Phase::Ended => true,
            Phase::Releasing => !self.hot_work() && !self.durable_dirty(),
            _ => false,
        }
    }

    /// Something of it no store has taken yet (the start, hot state, a
    /// checkpoint, the end; with Redis, the keys or lease to let go of).
    pub fn unwritten(&self, has_hot: bool) -> bool {
        match self.phase {
            Phase::Fenced { .. } => false,
            Phase::Starting { .. } | Phase::Ending(_) => true,
            Phase::Ended | Phase::Releasing if has_hot => true,
            _ => self.hot_work() || self.durable_dirty(),
        }
    }

    /// Bytes held: the snapshot, the commands and the final save.
    pub fn bytes(&self) -> usize {
        let finish = match &self.phase {
            Phase::Ending(finish) => finish.bytes.len(),
            Phase::Starting {
                then: AfterStart::End(Some(finish)),
                ..
            } => finish.bytes.len(),
            _ => 0,
        };
        self.latest.as_ref().map_or(0, |s| s.bytes.len())
            + self.command_bytes
            + self.log_bytes
            + finish
    }

    /// Takes a job's commands for the Redis stream.
    pub fn add_commands(&mut self, commands: &[CommandEntry]) {
        if commands.is_empty() {
            return;
        }
        if self.commands.is_empty() {
            self.first_command = self.next_command;
        }
        self.next_command += commands.len() as u64;
        self.command_bytes += commands.iter().map(|c| c.bytes.len()).sum::<usize>();
        self.commands.extend_from_slice(commands);
    }

    /// Takes a job's commands for the database's command log, numbering
    /// each within its tick.
    pub fn add_log(&mut self, commands: Vec<CommandEntry>) {
        for command in commands {
            let ordinal = match self.log_place {
                Some((tick, count)) if tick == command.tick => count,
                _ => 0,
            };
            self.log_place = Some((command.tick, ordinal + 1));
            self.log_bytes += command.bytes.len();
            self.log.push(LoggedCommand {
                tick: command.tick,
                ordinal,
                command: command.bytes,
            });
        }
    }

    /// Drops the unwritten hot state; the snapshot stays while the database
    /// still needs it.
    pub fn drop_hot(&mut self) {
        if let Some(last) = self.commands.last() {
            self.gap_through = Some(self.gap_through.map_or(last.tick, |t| t.max(last.tick)));
        }
        self.hot_dirty = false;
        self.commands = Vec::new();
        self.command_bytes = 0;
        self.first_command = self.next_command;
        self.pending_since = 0;
        self.forget_written_snapshot();
    }

    /// Drops the unwritten durable state as well (memory bound, refusal);
    /// the dropped log lines leave a gap in the session's command log.
    pub fn drop_durable(&mut self) {
        self.durable_due = false;
        self.log = Vec::new();
        self.log_bytes = 0;
        self.forget_written_snapshot();
    }

    /// After a Redis write of everything pending.
    pub fn hot_written(&mut self, with_snapshot: bool) {
        if with_snapshot {
            self.hot_dirty = false;
            self.gap_through = None;
        }
        self.commands.clear();
        self.command_bytes = 0;
        self.first_command = self.next_command;
        self.pending_since = 0;
        self.forget_written_snapshot();
    }

    /// After a database checkpoint of the snapshot at `tick` with the first
    /// `logged` lines of the log.
    pub fn checkpoint_written(&mut self, tick: u64, logged: usize) {
        if self.latest.as_ref().is_some_and(|s| s.tick == tick) {
            self.durable_due = false;
            self.forget_written_snapshot();
        }
        let logged = logged.min(self.log.len());
        self.log_bytes -= self.log[..logged]
            .iter()
            .map(|line| line.command.len())
            .sum::<usize>();
        self.log.drain(..logged);
    }

    /// The end is in the database: nothing of the game is left to write.
    pub fn end_written(&mut self) {
        self.phase = Phase::Ended;
        self.durable_due = false;
        self.log = Vec::new();
        self.log_bytes = 0;
        self.hot_dirty = false;
        self.commands = Vec::new();
        self.command_bytes = 0;
        self.latest = None;
    }

    /// Another instance owns it: drop everything held.
    pub fn fence(&mut self, now: Instant) {
        *self = Self::new(self.epoch, Phase::Fenced { since: now });
    }

    fn forget_written_snapshot(&mut self) {
        if !self.hot_dirty && !self.durable_dirty() {
            self.latest = None;
        }
    }
}
