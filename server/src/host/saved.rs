//! What a session's checkpoint holds, and how an instance resumes one.
//!
//! The simulation's own save (`Session::save`) knows the world but not the
//! host's side of a session: who sits in which seat (so players can take
//! their seats back with a reconnect token) and the commands since the last
//! durable save (which the database's command log may not have yet when an
//! instance dies: an adopter logs them there). A checkpoint is this
//! envelope; the stores treat it as opaque bytes.

use std::sync::Arc;

use rampart_persistence::CommandEntry;
use rampart_sim::bots::{BotStyle, ScriptedPlayer};
use rampart_sim::log::{CommandLog, LogEntry, LogError};
use rampart_sim::{Content, PlayerId, RestoreError, Session};
use serde::{Deserialize, Serialize};

use super::hosted::{Prepared, Seat};
use super::saving::CommandTail;

/// Bumped whenever the envelope's layout changes; older checkpoints are then
/// refused with a clear error rather than misread.
const FORMAT: u16 = 1;

/// A seat as a checkpoint remembers it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum SavedSeat {
    /// Nobody.
    Free,
    /// A bot (rebuilt from the session's seed on resume).
    Bot,
    /// A person, by player id: theirs again with a reconnect token.
    Person(String),
}

impl From<&Seat> for SavedSeat {
    fn from(seat: &Seat) -> Self {
        match seat {
            Seat::Free => Self::Free,
            Seat::Bot(_) => Self::Bot,
            Seat::Person { who, .. } => Self::Person(who.to_string()),
        }
    }
}

/// The envelope written to Redis and the database.
#[derive(Debug, Serialize, Deserialize)]
struct SavedSession {
    format: u16,
    private: bool,
    created_unix_ms: u64,
    seats: Vec<SavedSeat>,
    /// The log text of the header and the commands since the last durable
    /// save ([`CommandTail`]). Versions before the database's command log
    /// wrote every command from the start here: the same thing, longer, and
    /// read the same way.
    log: String,
    /// `Session::save`.
    sim: Vec<u8>,
}

/// Why a checkpoint cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Not an envelope this version can read.
    #[error("checkpoint is not readable: {0}")]
    Format(String),
    /// The log inside does not parse against the loaded content.
    #[error("checkpoint's command log: {0}")]
    Log(#[from] LogError),
    /// The simulation state inside does not restore.
    #[error("checkpoint's simulation state: {0}")]
    Restore(#[from] RestoreError),
    /// The restored state is not the state that was saved.
    #[error("restored state hash {restored:016x} differs from the saved {saved:016x}")]
    Mismatch {
        /// Recorded with the checkpoint.
        saved: u64,
        /// Of the restored session.
        restored: u64,
    },
    /// A command from the hot store does not parse.
    #[error("command after the checkpoint: {0}")]
    Command(String),
}

/// The checkpoint of a session as it stands: the simulation's save, the
/// seats, and the commands since the last durable save. What every save of
/// the host costs the stepping pool (public for the save-cost benchmark).
pub fn encode_checkpoint(
    session: &Session,
    seats: Vec<SavedSeat>,
    private: bool,
    created_unix_ms: u64,
    log: &CommandTail,
) -> Vec<u8> {
    let mut sim = Vec::with_capacity(4096);
    session.save(&mut sim);
    let saved = SavedSession {
        format: FORMAT,
        private,
        created_unix_ms,
        seats,
        log: log.text(session.content()),
        sim,
    };
    // Encoding plain owned data into a Vec cannot fail.
    bincode::serde::encode_to_vec(&saved, bincode::config::standard()).unwrap_or_default()
}

fn decode(bytes: &[u8]) -> Result<SavedSession, ResumeError> {
    let (saved, _): (SavedSession, usize) =
        bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|error| ResumeError::Format(error.to_string()))?;
    if saved.format != FORMAT {
        return Err(ResumeError::Format(format!(
            "envelope format {} (this version reads {FORMAT})",
            saved.format
        )));
    }
    Ok(saved)
}

/// One accepted command in the hot store's encoding: its log line.
pub(crate) fn command_entry(entry: &LogEntry, content: &Content) -> CommandEntry {
    let mut line = String::with_capacity(32);
    entry.write_line(content, &mut line);
    CommandEntry {
        tick: entry.tick,
        bytes: line.into_bytes(),
    }
}

/// A session rebuilt from a checkpoint and the commands accepted after it.
pub(crate) struct Resumed {
    pub prepared: Prepared,
    pub created_unix_ms: u64,
    /// The tick the checkpoint was taken at.
    pub checkpoint_tick: u64,
}

/// Rebuilds a session: restores the checkpoint (checked against the hash
/// stored with it, when given), then replays the commands
/// accepted after it, stepping the (deterministic) simulation to each
/// command's tick, so it resumes where the last stored command left it.
/// Costly (a restore plus up to a snapshot interval of steps): run it off
/// the tick thread.
///
/// # Errors
/// A checkpoint or command this version cannot read.
pub(crate) fn resume(
    content: &Arc<Content>,
    bytes: &[u8],
    saved_hash: Option<u64>,
    commands: &[CommandEntry],
) -> Result<Resumed, ResumeError> {
    let saved = decode(bytes)?;
    let mut log = CommandLog::parse(&saved.log, content)?;
    let mut session = Session::restore(content.clone(), &saved.sim)?;
    let checkpoint_tick = session.tick();
    if let Some(saved) = saved_hash {
        let restored = session.state_hash();
        if restored != saved {
            return Err(ResumeError::Mismatch { saved, restored });
        }
    }
    // Commands submitted for the checkpoint's tick were not applied yet, so
    // the simulation's save does not hold them; the log does. The command
    // stream after the checkpoint starts with the same ones.
    let applied = log
        .entries
        .iter()
        .position(|entry| entry.tick >= checkpoint_tick)
        .unwrap_or(log.entries.len());
    let pending = log.entries.split_off(applied);
    let mut after = Vec::with_capacity(commands.len());
    for command in commands {
        let line = std::str::from_utf8(&command.bytes)
            .map_err(|_| ResumeError::Command("not UTF-8".into()))?;
        let entry = LogEntry::parse_line(line, content)
            .map_err(|error| ResumeError::Command(error.to_string()))?;
        if entry.tick >= checkpoint_tick {
            after.push(entry);
        }
    }
    let streamed_pending = after.len() >= pending.len() && after[..pending.len()] == pending[..];
    let replay = if streamed_pending {
        after
    } else {
        pending.into_iter().chain(after).collect()
    };
    for entry in replay {
        while session.tick() < entry.tick && session.outcome().is_none() {
            session.step();
        }
        if session.outcome().is_some() {
            break;
        }
        session.submit(entry.player, entry.command);
        log.entries.push(entry);
    }
    let style = if log.config.scenario.is_some() {
        BotStyle::Passive
    } else {
        BotStyle::Builder
    };
    let seed = log.config.seed;
    let seats = saved
        .seats
        .into_iter()
        .enumerate()
        .map(|(seat, saved)| match saved {
            SavedSeat::Free => Seat::Free,
            SavedSeat::Bot => Seat::Bot(Box::new(ScriptedPlayer::new(
                PlayerId(seat as u8),
                style,
                seed,
            ))),
            SavedSeat::Person(who) => Seat::Person {
                who: who.into(),
                connected: false,
                since: 0,
            },
        })
        .collect();
    Ok(Resumed {
        prepared: Prepared {
            session,
            seats,
            private: saved.private,
            log: CommandTail::recovered(log),
        },
        created_unix_ms: saved.created_unix_ms,
        checkpoint_tick,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::PathBuf;

    use rampart_sim::{Command, SessionConfig};

    use super::*;

    /// A save taken with commands submitted for the next step (a drain or an
    /// adoption between requests and the step) resumes to the same game,
    /// whether the command stream after it is there or not.
    #[test]
    fn commands_pending_at_a_save_are_applied_after_the_resume() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let content = Arc::new(rampart_sim::content::load_dir(&dir).unwrap());
        let config = SessionConfig {
            map: "reference".into(),
            scenario: None,
            players: 2,
            seed: 5,
            tick_hz: 30,
        };
        let mut session = Session::new(content.clone(), &config).unwrap();
        let mut log = CommandLog::new(&content, config);
        for _ in 0..40 {
            session.step();
        }
        let pending: Vec<LogEntry> = (0..2)
            .map(|seat| LogEntry {
                tick: session.tick(),
                player: PlayerId(seat),
                command: Command::Ready,
            })
            .collect();
        for entry in &pending {
            session.submit(entry.player, entry.command);
        }
        log.entries.extend(pending.iter().cloned());
        let seats = [Seat::Free, Seat::Free];
        let seats = seats.iter().map(SavedSeat::from).collect();
        let bytes = encode_checkpoint(&session, seats, false, 0, &CommandTail::new(log.clone()));
        let saved_hash = session.state_hash();
        for _ in 0..300 {
            session.step();
        }
        let expected = session.state_hash();
        let streamed: Vec<CommandEntry> = pending
            .iter()
            .map(|entry| command_entry(entry, &content))
            .collect();
        for stream in [Vec::new(), streamed] {
            let mut resumed = resume(&content, &bytes, Some(saved_hash), &stream).unwrap();
            assert_eq!(resumed.prepared.log.entries(), log.entries);
            for _ in 0..300 {
                resumed.prepared.session.step();
            }
            assert_eq!(resumed.prepared.session.state_hash(), expected);
        }
    }
}
