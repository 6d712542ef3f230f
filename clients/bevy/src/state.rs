//! Where the app stands with its session, as a Bevy [`States`]: gate
//! systems with `in_state(ConnectionState::Playing)`, react with
//! `OnEnter(...)`, read why it ended from the `Ended` variant.

use bevy_state::prelude::*;
use rampart_net::protocol::{ByeReason, EndReason};

use crate::join::JoinError;

/// The connection's life: `Idle` until a join is asked for, then
/// `Joining` (HTTP), `Connecting` (the UDP or WebSocket handshake),
/// `Playing`; `Reconnecting` after a drop while the seat is still held;
/// `Ended` with the reason.
#[derive(States, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Nothing asked yet.
    #[default]
    Idle,
    /// Asking the HTTP API for a seat.
    Joining,
    /// Seated; opening the connection and waiting for the welcome.
    Connecting,
    /// Welcomed: the world is mirrored and commands go out.
    Playing,
    /// The connection dropped or the server moved the session; taking the
    /// seat back with the reconnect token.
    Reconnecting,
    /// Over, for the reason given.
    Ended(EndCause),
}

/// Why the connection ended for good.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum EndCause {
    /// The session ended (victory, defeat, an administrator, idleness...).
    SessionEnded(EndReason),
    /// The server closed this connection and retrying would not help
    /// (protocol or content mismatch, replaced by a newer connection for
    /// the seat, abuse).
    Refused(ByeReason),
    /// The join failed for good, or kept failing past the reconnect window.
    JoinFailed(JoinError),
    /// The game left ([`crate::LeaveGame`]).
    Left,
}

impl std::fmt::Display for EndCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndCause::SessionEnded(reason) => write!(f, "the session ended: {reason}"),
            EndCause::Refused(reason) => write!(f, "the server closed the connection: {reason}"),
            EndCause::JoinFailed(error) => write!(f, "{error}"),
            EndCause::Left => f.write_str("left the game"),
        }
    }
}
