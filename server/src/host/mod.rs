//! Stand-in for the session host, with the public API the lead's host will
//! have, so the HTTP API can be written and tested before the host lands.
//! It keeps sessions in memory and never ticks; replace it with the real host.

// The stand-in carries the whole API, some of it unused by the fake.
#![allow(dead_code)]

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

/// A session's identity, shown as 16 lowercase hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl FromStr for SessionId {
    type Err = HostError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 16 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(HostError::NotFound);
        }
        u64::from_str_radix(text, 16)
            .map(SessionId)
            .map_err(|_| HostError::NotFound)
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// Waiting for players.
    Lobby,
    /// Ticking.
    Running,
    /// Finished; kept for a while so clients can read the result.
    Ended,
}

fn default_max_players() -> u8 {
    4
}

/// A request to open a session.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct CreateSession {
    /// The map's name in the content.
    pub map: String,
    /// Seats for people and bots together.
    #[serde(default = "default_max_players")]
    pub max_players: u8,
    /// Seats filled by server-side bots.
    #[serde(default)]
    pub bots: u8,
    /// Hidden from the public list.
    #[serde(default)]
    pub private: bool,
    /// Fixed seed for the session's randomness.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Scenario name in the content.
    #[serde(default)]
    pub scenario: Option<String>,
}

/// What the host tells the outside world about one session.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SessionInfo {
    /// The session's id.
    pub id: SessionId,
    /// The map's name.
    pub map: String,
    /// Where the session is in its life.
    pub state: SessionState,
    /// Seats.
    pub max_players: u8,
    /// Connected people.
    pub players: u8,
    /// Bot seats.
    pub bots: u8,
    /// Hidden from the public list.
    pub private: bool,
    /// Current wave.
    pub wave: u32,
    /// Lives left.
    pub lives: u32,
    /// Current tick.
    pub tick: u64,
    /// Living enemies.
    pub enemies: u32,
    /// Towers on the board.
    pub towers: u32,
    /// `victory` or `defeat` once decided.
    pub outcome: Option<&'static str>,
    /// Why the session ended.
    pub end_reason: Option<&'static str>,
    /// Creation time.
    pub created_unix_ms: u64,
}

/// Why the host refused a request.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// No room for another session.
    #[error("instance is full ({max} sessions)")]
    Full {
        /// The configured maximum.
        max: usize,
    },
    /// Shutting down; no new sessions.
    #[error("server is draining")]
    Draining,
    /// Unknown session id.
    #[error("no such session")]
    NotFound,
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The host's thread is gone.
    #[error("session host stopped")]
    Stopped,
}

/// Counts and health of the host as a whole.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct HostStatus {
    /// Sessions waiting for players.
    pub lobby: usize,
    /// Sessions ticking.
    pub running: usize,
    /// Sessions ended and still listed.
    pub ended: usize,
    /// People connected.
    pub players_connected: usize,
    /// Configured maximum of open sessions.
    pub max_sessions: usize,
    /// Shutting down.
    pub draining: bool,
    /// Recent ticks kept within their budget.
    pub ticks_on_time: bool,
    /// The host's tick counter.
    pub tick: u64,
}

#[derive(Default)]
struct Fake {
    sessions: Vec<SessionInfo>,
    next_id: u64,
    max_sessions: usize,
    draining: bool,
}

/// A cheap handle to the host, shared by the HTTP API.
#[derive(Clone)]
pub struct HostHandle {
    fake: Arc<Mutex<Fake>>,
}

impl HostHandle {
    /// An in-memory host with room for `max_sessions` open sessions.
    pub fn fake(max_sessions: usize) -> Self {
        let fake = Fake {
            max_sessions,
            next_id: 0x1234_5678_9abc_def0,
            ..Fake::default()
        };
        Self {
            fake: Arc::new(Mutex::new(fake)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.fake.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops admitting sessions.
    pub fn set_draining(&self) {
        self.lock().draining = true;
    }

    /// Opens a session.
    pub async fn create(&self, request: CreateSession) -> Result<SessionInfo, HostError> {
        let mut fake = self.lock();
        if fake.draining {
            return Err(HostError::Draining);
        }
        if request.map != "meadow" {
            return Err(HostError::Invalid(format!("unknown map {:?}", request.map)));
        }
        let open = fake
            .sessions
            .iter()
            .filter(|s| s.state != SessionState::Ended)
            .count();
        if open >= fake.max_sessions {
            return Err(HostError::Full {
                max: fake.max_sessions,
            });
        }
        fake.next_id += 1;
        let info = SessionInfo {
            id: SessionId(fake.next_id),
            map: request.map,
            state: SessionState::Lobby,
            max_players: request.max_players,
            players: 0,
            bots: request.bots,
            private: request.private,
            wave: 0,
            lives: 20,
            tick: 0,
            enemies: 0,
            towers: 0,
            outcome: None,
            end_reason: None,
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        fake.sessions.insert(0, info.clone());
        Ok(info)
    }

    /// Ends a session.
    pub async fn end(&self, id: SessionId) -> Result<SessionInfo, HostError> {
        let mut fake = self.lock();
        let session = fake
            .sessions
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(HostError::NotFound)?;
        session.state = SessionState::Ended;
        session.end_reason = Some("ended_by_admin");
        Ok(session.clone())
    }

    /// Every session, newest first.
    pub fn list(&self) -> Vec<SessionInfo> {
        self.lock().sessions.clone()
    }

    /// One session.
    pub fn get(&self, id: SessionId) -> Option<SessionInfo> {
        self.lock().sessions.iter().find(|s| s.id == id).cloned()
    }

    /// Counts and health.
    pub fn status(&self) -> HostStatus {
        let fake = self.lock();
        let count = |state| fake.sessions.iter().filter(|s| s.state == state).count();
        HostStatus {
            lobby: count(SessionState::Lobby),
            running: count(SessionState::Running),
            ended: count(SessionState::Ended),
            players_connected: 0,
            max_sessions: fake.max_sessions,
            draining: fake.draining,
            ticks_on_time: true,
            tick: 0,
        }
    }
}
