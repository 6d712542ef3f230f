//! The values that go into and come out of the durable store, in the game's
//! own types (u64 ids and hashes, u32 counters). The database keeps u64s
//! bit-cast into signed BIGINTs; these types hide that.

/// Where a session is in its life. Only `Running` sessions are adopted
/// after a crash: a lobby has nothing to lose and an ended one is history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RowState {
    /// Created, waiting for players.
    Lobby,
    /// Ticking on some instance.
    Running,
    /// Decided, abandoned or crashed; results and history written.
    Ended,
}

impl RowState {
    /// The text stored in `sessions.state` (checked by the schema).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lobby => "lobby",
            Self::Running => "running",
            Self::Ended => "ended",
        }
    }

    /// Reads the stored text back; `None` for anything the schema would not
    /// have let in.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "lobby" => Some(Self::Lobby),
            "running" => Some(Self::Running),
            "ended" => Some(Self::Ended),
            _ => None,
        }
    }
}

/// What the host knows when it creates a session: enough to rebuild it from
/// scratch (content version, map, scenario, seed) on another instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRow {
    /// The host's session id.
    pub id: u64,
    /// Map key.
    pub map: String,
    /// Scenario (wave set) key when it differs from the map's default.
    pub scenario: Option<String>,
    /// The session's RNG seed.
    pub seed: u64,
    /// Seats.
    pub players: u8,
    /// Simulation rate.
    pub tick_hz: u16,
    /// Hash of the content the session was built from; an adopter with other
    /// content must not resume it.
    pub content_version: u64,
    /// Initial state, usually `Lobby` or `Running`.
    pub state: RowState,
}

/// A session as stored, with its ownership and ending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// What the host created.
    pub row: SessionRow,
    /// The instance that claimed it last.
    pub owner_instance: Option<String>,
    /// The fencing token: incremented by every claim.
    pub owner_epoch: u64,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch, once ended.
    pub ended_at: Option<i64>,
    /// Why it ended (`victory`, `defeat`, `idle`, `crashed`, ...).
    pub end_reason: Option<String>,
}

/// One orphan candidate for adoption: who owned it at which epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunningSession {
    /// Session id.
    pub id: u64,
    /// Last claimant, if any.
    pub owner_instance: Option<String>,
    /// Its epoch; a new claim makes it one higher.
    pub owner_epoch: u64,
}

/// A player as stored: the auth subject and the name last seen with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerRecord {
    /// The auth subject (`sub` of the JWT, or the anonymous id).
    pub id: String,
    /// Display name, updated on every visit.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    /// Milliseconds since the Unix epoch.
    pub last_seen_at: i64,
}

/// Map metadata the HTTP API serves without loading content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapRecord {
    /// Map key (its file stem).
    pub key: String,
    /// Display name.
    pub name: String,
    /// Hash of the map's content: changes when a designer edits it.
    pub content_hash: u64,
    /// Cells across.
    pub width: u32,
    /// Cells down.
    pub height: u32,
}

/// The latest durable state of a session: the simulation's own save bytes
/// at a tick, and the epoch of the owner that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Session id.
    pub session_id: u64,
    /// The writer's epoch.
    pub epoch: u64,
    /// Tick the snapshot was taken at.
    pub tick: u64,
    /// `state_hash` at that tick, to verify a restore.
    pub state_hash: u64,
    /// Opaque bytes from the simulation's save.
    pub snapshot: Vec<u8>,
    /// Milliseconds since the Unix epoch.
    pub written_at: i64,
}

/// One line of a session's command log in the database: an accepted
/// command, placed by its tick and its place among that tick's commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedCommand {
    /// Tick the command is applied at.
    pub tick: u64,
    /// Its place among the commands of that tick, from 0.
    pub ordinal: u32,
    /// The host's encoding of the command (opaque here).
    pub command: Vec<u8>,
}

/// One seat's result, written when a session ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeatResult {
    /// Seat number.
    pub seat: u8,
    /// The person in the seat; `None` for a bot or an empty seat.
    pub player_id: Option<String>,
    /// Score.
    pub score: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Enemies that leaked while this seat played (shared lives).
    pub leaks: u32,
    /// Gold earned.
    pub gold_earned: u32,
    /// Whether the session was won.
    pub victory: bool,
}

/// The one-line summary of an ended session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchOutcome {
    /// `victory`, `defeat`, `abandoned`, ...
    pub outcome: String,
    /// Ticks played.
    pub ticks: u64,
    /// Seats that took part.
    pub players: u8,
}

/// One line of a map's leaderboard: a single game's seat result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderboardEntry {
    /// Session the score was made in.
    pub session_id: u64,
    /// Seat.
    pub seat: u8,
    /// Who.
    pub player_id: String,
    /// Their name, when the player is known to the `players` table.
    pub player_name: Option<String>,
    /// Score.
    pub score: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Whether that game was won.
    pub victory: bool,
}

/// One game in a player's history, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlayerGame {
    /// Session.
    pub session_id: u64,
    /// Map key.
    pub map: String,
    /// Seat.
    pub seat: u8,
    /// The game's outcome.
    pub outcome: String,
    /// Ticks played.
    pub ticks: u64,
    /// Score.
    pub score: u32,
    /// Enemies killed.
    pub kills: u32,
    /// Enemies leaked.
    pub leaks: u32,
    /// Gold earned.
    pub gold_earned: u32,
    /// Whether it was won.
    pub victory: bool,
    /// Milliseconds since the Unix epoch.
    pub ended_at: i64,
}

/// One ended session of a map, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchSummary {
    /// Session.
    pub session_id: u64,
    /// `victory`, `defeat`, ...
    pub outcome: String,
    /// Ticks played.
    pub ticks: u64,
    /// Seats that took part.
    pub players: u8,
    /// Milliseconds since the Unix epoch.
    pub ended_at: i64,
}
