//! Command logs: everything needed to re-run a session exactly.
//!
//! Because a session is a pure function of (content, config, ordered
//! commands), a log of the commands with the tick each was applied at
//! replays to the same state hash. The format is text, one item a line, so a
//! log can be read, diffed and attached to a bug report:
//!
//! ```text
//! rampart-log 1
//! content 1f0c3e5a9b2d4c77
//! map reference
//! scenario reference
//! players 8
//! seed 7
//! tick-hz 30
//! 0 p0 ready
//! 12 p3 place arrow 10 12
//! 40 p3 upgrade t51
//! 41 p3 target t51 strongest
//! 90 p3 sell t51
//! 300 p0 call-wave
//! end 3000 9c1d0e2f3a4b5c6d
//! ```
//!
//! Header lines come first in that order (`scenario` is optional). Each
//! command line is `TICK PLAYER VERB ARGS...`, ticks never decreasing. The
//! optional `end` line gives the tick the run stopped at and its state hash,
//! so a replay can check itself. Lines starting with `#` are comments.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::command::{Command, PlayerId, Targeting, TowerId};
use crate::content::Content;
use crate::grid::Cell;
use crate::session::{Session, SessionConfig, SessionError};

/// The format's first line.
const MAGIC: &str = "rampart-log 1";

/// One command and the tick it applied at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The tick the command was applied at (the session's `tick()` when it
    /// was submitted).
    pub tick: u64,
    /// Sender.
    pub player: PlayerId,
    /// What they asked.
    pub command: Command,
}

/// Where a recorded run stopped, and the state hash it had there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogEnd {
    /// Ticks stepped.
    pub ticks: u64,
    /// [`Session::state_hash`] after them.
    pub state_hash: u64,
}

/// A session's config and its ordered commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandLog {
    /// The content version the log was recorded with.
    pub content_version: u64,
    /// How the session was built.
    pub config: SessionConfig,
    /// Commands in application order.
    pub entries: Vec<LogEntry>,
    /// Set when the recording finished.
    pub end: Option<LogEnd>,
}

/// Why a log could not be read or replayed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A line is malformed.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The log was recorded with other content.
    #[error(
        "log was recorded with content version {recorded:016x}, but the loaded content is {loaded:016x}"
    )]
    ContentMismatch {
        /// From the log.
        recorded: u64,
        /// From the loaded assets.
        loaded: u64,
    },
    /// The session in the header cannot be built.
    #[error(transparent)]
    Session(#[from] SessionError),
}

impl LogEntry {
    /// Appends the entry as one line of the text format (with its newline).
    /// Persistence streams single entries in this form: tower kinds travel
    /// by key, so a stored entry stays readable after a content reload.
    pub fn write_line(&self, content: &Content, out: &mut String) {
        let _ = write!(out, "{} {} ", self.tick, self.player);
        let _ = match self.command {
            Command::PlaceTower { kind, cell } => {
                let key = content
                    .towers
                    .get(usize::from(kind.0))
                    .map_or("?", |tower| tower.key.as_str());
                writeln!(out, "place {key} {} {}", cell.x, cell.y)
            }
            Command::UpgradeTower { tower } => writeln!(out, "upgrade {tower}"),
            Command::SellTower { tower } => writeln!(out, "sell {tower}"),
            Command::SetTargeting { tower, mode } => {
                writeln!(out, "target {tower} {}", mode.name())
            }
            Command::CallNextWave => writeln!(out, "call-wave"),
            Command::Ready => writeln!(out, "ready"),
        };
    }

    /// Reads one command line of the text format (`TICK PLAYER VERB ARGS...`).
    ///
    /// # Errors
    /// [`LogError::Syntax`] (line 1) when the line is malformed or names
    /// unknown content.
    pub fn parse_line(line: &str, content: &Content) -> Result<Self, LogError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        parse_entry(1, &words, content)
    }
}

impl CommandLog {
    /// An empty log for a session about to be built from `config`.
    pub fn new(content: &Content, config: SessionConfig) -> Self {
        Self {
            content_version: content.version,
            config,
            entries: Vec::new(),
            end: None,
        }
    }

    /// Writes the log in the text format.
    pub fn to_text(&self, content: &Content) -> String {
        let mut out = String::new();
        let config = &self.config;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "{MAGIC}\ncontent {:016x}\nmap {}",
            self.content_version, config.map
        );
        if let Some(scenario) = &config.scenario {
            let _ = writeln!(out, "scenario {scenario}");
        }
        let _ = writeln!(
            out,
            "players {}\nseed {}\ntick-hz {}",
            config.players, config.seed, config.tick_hz
        );
        for entry in &self.entries {
            entry.write_line(content, &mut out);
        }
        if let Some(end) = self.end {
            let _ = writeln!(out, "end {} {:016x}", end.ticks, end.state_hash);
        }
        out
    }

    /// Reads the text format, resolving tower kinds against `content`.
    ///
    /// # Errors
    /// [`LogError::Syntax`] naming the first bad line.
    pub fn parse(text: &str, content: &Content) -> Result<Self, LogError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(number, line)| (number + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        let mut header = |key: &str, optional: bool| -> Result<Option<(usize, String)>, LogError> {
            let mut peek = lines.clone();
            match peek.next() {
                Some((number, line))
                    if line.split_once(' ').is_some_and(|(word, _)| word == key) || line == key =>
                {
                    lines.next();
                    let value = line
                        .split_once(' ')
                        .map_or("", |(_, value)| value)
                        .trim()
                        .to_owned();
                    Ok(Some((number, value)))
                }
                Some((number, _)) if !optional => {
                    Err(syntax(number, format!("expected `{key} ...`")))
                }
                None if !optional => Err(syntax(0, format!("log ends before `{key}`"))),
                _ => Ok(None),
            }
        };
        match header("rampart-log", false)? {
            Some((_, version)) if version == "1" => {}
            Some((number, version)) => {
                return Err(syntax(
                    number,
                    format!("unsupported log version `{version}`"),
                ));
            }
            None => return Err(syntax(1, "not a rampart command log".into())),
        }
        let content_version = number_field(header("content", false)?, |value| {
            u64::from_str_radix(value, 16).ok()
        })?;
        let map = header("map", false)?
            .map(|(_, value)| value)
            .unwrap_or_default();
        let scenario = header("scenario", true)?.map(|(_, value)| value);
        let players = number_field(header("players", false)?, |value| value.parse().ok())?;
        let seed = number_field(header("seed", false)?, |value| value.parse().ok())?;
        let tick_hz = number_field(header("tick-hz", false)?, |value| value.parse().ok())?;
        let config = SessionConfig {
            map,
            scenario,
            players,
            seed,
            tick_hz,
        };

        let mut entries = Vec::new();
        let mut end = None;
        for (number, line) in lines {
            if end.is_some() {
                return Err(syntax(number, "nothing may follow the `end` line".into()));
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            if words[0] == "end" {
                end = Some(parse_end(number, &words)?);
                continue;
            }
            let entry = parse_entry(number, &words, content)?;
            if entries
                .last()
                .is_some_and(|last: &LogEntry| last.tick > entry.tick)
            {
                return Err(syntax(number, "ticks must not decrease".into()));
            }
            entries.push(entry);
        }
        Ok(Self {
            content_version,
            config,
            entries,
            end,
        })
    }

    /// Builds the session and replays every command up to the `end` tick
    /// (or the last command's tick).
    ///
    /// # Errors
    /// When the content differs from the recording's or the header names
    /// unknown content.
    pub fn replay(&self, content: Arc<Content>) -> Result<Session, LogError> {
        let mut replay = self.replayer(content)?;
        replay.run_to(u64::MAX);
        Ok(replay.into_session())
    }

    /// Builds the session at tick 0, to be stepped through the log a few
    /// ticks at a time: tools that look at a recorded game part way
    /// (pictures of a tick, animations) replay it this way.
    ///
    /// # Errors
    /// As [`Self::replay`].
    pub fn replayer(&self, content: Arc<Content>) -> Result<Replay<'_>, LogError> {
        if content.version != self.content_version {
            return Err(LogError::ContentMismatch {
                recorded: self.content_version,
                loaded: content.version,
            });
        }
        let session = Session::new(content, &self.config)?;
        let last = self.entries.last().map_or(0, |entry| entry.tick + 1);
        let end = self.end.map_or(last, |end| end.ticks);
        Ok(Replay {
            log: self,
            session,
            next: 0,
            end,
        })
    }
}

/// A recorded game being replayed: the session so far and where the log
/// stands.
pub struct Replay<'log> {
    log: &'log CommandLog,
    session: Session,
    /// The next entry to submit.
    next: usize,
    /// The tick the recording stopped at.
    end: u64,
}

impl Replay<'_> {
    /// Steps until `tick`, the end of the recording, or the game's end,
    /// whichever comes first, submitting each command at its tick.
    pub fn run_to(&mut self, tick: u64) {
        let session = &mut self.session;
        while session.tick() < tick.min(self.end) && session.outcome().is_none() {
            while let Some(entry) = self
                .log
                .entries
                .get(self.next)
                .filter(|entry| entry.tick == session.tick())
            {
                session.submit(entry.player, entry.command);
                self.next += 1;
            }
            // Time stands still once the game is decided; later commands
            // could only be rejected, so the loop stops there.
            session.step();
        }
    }

    /// The tick the recording stopped at (the game may have ended sooner).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// The session as replayed so far.
    pub fn session(&self) -> &Session {
        &self.session
    }

    /// The session as replayed so far, for snapshots.
    pub fn session_mut(&mut self) -> &mut Session {
        &mut self.session
    }

    /// The session, once the replay is done with.
    pub fn into_session(self) -> Session {
        self.session
    }
}

fn syntax(line: usize, message: String) -> LogError {
    LogError::Syntax { line, message }
}

fn number_field<T>(
    field: Option<(usize, String)>,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, LogError> {
    let (number, value) = field.unwrap_or_default();
    parse(&value).ok_or_else(|| syntax(number, format!("`{value}` is not a valid number here")))
}

fn parse_end(number: usize, words: &[&str]) -> Result<LogEnd, LogError> {
    match words {
        [_, ticks, hash] => Ok(LogEnd {
            ticks: ticks
                .parse()
                .map_err(|_| syntax(number, format!("bad tick count `{ticks}`")))?,
            state_hash: u64::from_str_radix(hash, 16)
                .map_err(|_| syntax(number, format!("bad hash `{hash}`")))?,
        }),
        _ => Err(syntax(number, "expected `end TICKS HASH`".into())),
    }
}

fn parse_entry(number: usize, words: &[&str], content: &Content) -> Result<LogEntry, LogError> {
    let bad = |message: String| syntax(number, message);
    let [tick, player, verb, args @ ..] = words else {
        return Err(bad("expected `TICK PLAYER COMMAND ...`".into()));
    };
    let tick = tick
        .parse()
        .map_err(|_| bad(format!("bad tick `{tick}`")))?;
    let player = player
        .strip_prefix('p')
        .and_then(|seat| seat.parse().ok())
        .map(PlayerId)
        .ok_or_else(|| bad(format!("bad player `{player}` (expected p0..p7)")))?;
    let tower = |word: &str| {
        word.strip_prefix('t')
            .and_then(|id| id.parse().ok())
            .map(TowerId)
            .ok_or_else(|| bad(format!("bad tower `{word}`")))
    };
    let coordinate = |word: &str| {
        word.parse::<u16>()
            .map_err(|_| bad(format!("bad coordinate `{word}`")))
    };
    let command = match (*verb, args) {
        ("place", [kind, x, y]) => Command::PlaceTower {
            kind: content
                .tower_id(kind)
                .ok_or_else(|| bad(format!("unknown tower kind `{kind}`")))?,
            cell: Cell::new(coordinate(x)?, coordinate(y)?),
        },
        ("upgrade", [id]) => Command::UpgradeTower { tower: tower(id)? },
        ("sell", [id]) => Command::SellTower { tower: tower(id)? },
        ("target", [id, mode]) => Command::SetTargeting {
            tower: tower(id)?,
            mode: Targeting::from_name(mode)
                .ok_or_else(|| bad(format!("unknown targeting mode `{mode}`")))?,
        },
        ("call-wave", []) => Command::CallNextWave,
        ("ready", []) => Command::Ready,
        _ => return Err(bad(format!("unknown command `{}`", words[2..].join(" ")))),
    };
    Ok(LogEntry {
        tick,
        player,
        command,
    })
}
