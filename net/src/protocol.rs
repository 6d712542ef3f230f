//! The wire protocol: channels, messages and limits, shared by the server
//! and the client library. `docs/PROTOCOL.md` is the prose version; keep
//! the two in step (and bump [`PROTOCOL_VERSION`] on any change).
//!
//! Control messages are `bincode` 2 (standard config: little-endian, varint
//! integers) encodings of [`ClientMessage`] and [`ServerMessage`].
//! Snapshots are not bincode: they are the delta codec's bytes
//! ([`crate::snapshot`]), sent beside renet in a bundle slot of their own
//! and acknowledged the same way ([`crate::bundle::Slot`]), or, too large
//! for a slot, sliced on renet's unreliable channel.

use std::time::Duration;

use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::{Command, Event, Outcome, Rejection, Targeting, TowerId};
use renet::{ChannelConfig, ConnectionConfig, SendType};
use serde::{Deserialize, Serialize};
use tungstenite::protocol::WebSocketConfig;

/// Bumped on every incompatible change to messages, channels or the
/// snapshot codec. Client and server refuse each other on a mismatch.
pub const PROTOCOL_VERSION: u16 = 7;

/// The netcode protocol id ("rampart" and the protocol version): a client
/// built for another protocol cannot even complete the UDP handshake.
pub const NETCODE_PROTOCOL_ID: u64 = 0x7261_6d70_6172_7400 | PROTOCOL_VERSION as u64;

/// Reliable, ordered, both directions: control messages.
pub const CHANNEL_RELIABLE: u8 = 0;
/// Unreliable, server to client only: snapshots too large for a bundle
/// slot, which renet slices (smaller ones, and the acks, go beside renet).
pub const CHANNEL_SNAPSHOT: u8 = 1;

/// The tick a client's snapshot acknowledgement names to ask for a full
/// snapshot, having rejected one while holding no world: no session lives
/// that long (2^53 - 1 ticks are nine million years at 30 Hz), so the
/// server holds no world of that tick; and a JavaScript number holds it
/// exactly.
pub const NO_WORLD: u64 = (1 << 53) - 1;

/// Largest client message the server accepts; larger ones are dropped and
/// counted as `oversized`.
pub const MAX_CLIENT_MESSAGE_BYTES: usize = 512;
/// Longest chat line, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 200;
/// Largest WebSocket frame either side accepts (one bundle of renet packets).
pub const MAX_WS_FRAME_BYTES: usize = 1400;

/// Memory renet may hold per channel per connection before it gives up on
/// the peer (a client that never acks reliable messages is disconnected).
pub(crate) const CHANNEL_MEMORY_BYTES: usize = 256 * 1024;
/// Client to server memory per channel: a client has little to say.
const CLIENT_CHANNEL_MEMORY_BYTES: usize = 32 * 1024;
/// Resend a reliable message not acked after this long.
const RESEND: Duration = Duration::from_millis(100);

/// How both ends of a WebSocket read and bound frames. Frames are bundles of
/// at most [`MAX_WS_FRAME_BYTES`]; tungstenite zeroes its whole read buffer
/// before every read, the last one that finds nothing included: its
/// default 128 KiB cost a WebSocket server a tenth of its CPU in `memset`
/// (and 128 KiB per connection), and four frames' worth still cost a load
/// generator of thousands of clients 3% (two reads of 5.6 KB for each
/// frame of a few hundred bytes). So a read takes one frame at most: frames
/// come one per snapshot, and a backlog costs a read per frame.
pub fn websocket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(WS_READ_BUFFER_BYTES)
        .max_frame_size(Some(MAX_WS_FRAME_BYTES))
        .max_message_size(Some(MAX_WS_FRAME_BYTES))
}

/// A WebSocket read's buffer: one frame of [`MAX_WS_FRAME_BYTES`] with the
/// longest header such a frame has (2 bytes, a 16-bit length, a 4-byte
/// mask).
const WS_READ_BUFFER_BYTES: usize = MAX_WS_FRAME_BYTES + 8;

/// The renet channels, identical on both ends.
pub fn connection_config() -> ConnectionConfig {
    ConnectionConfig {
        available_bytes_per_tick: 256 * 1024,
        server_channels_config: vec![
            ChannelConfig {
                channel_id: CHANNEL_RELIABLE,
                max_memory_usage_bytes: CHANNEL_MEMORY_BYTES,
                send_type: SendType::ReliableOrdered {
                    resend_time: RESEND,
                },
            },
            ChannelConfig {
                channel_id: CHANNEL_SNAPSHOT,
                max_memory_usage_bytes: CHANNEL_MEMORY_BYTES,
                send_type: SendType::Unreliable,
            },
        ],
        client_channels_config: vec![
            ChannelConfig {
                channel_id: CHANNEL_RELIABLE,
                max_memory_usage_bytes: CLIENT_CHANNEL_MEMORY_BYTES,
                send_type: SendType::ReliableOrdered {
                    resend_time: RESEND,
                },
            },
            ChannelConfig {
                channel_id: CHANNEL_SNAPSHOT,
                max_memory_usage_bytes: CLIENT_CHANNEL_MEMORY_BYTES,
                send_type: SendType::Unreliable,
            },
        ],
    }
}

/// What a client says on the reliable channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientMessage {
    /// First message after connecting; the server answers with
    /// [`ServerMessage::Welcome`] or a [`ServerMessage::Bye`].
    Hello {
        /// The client's [`PROTOCOL_VERSION`].
        protocol: u16,
        /// The content version the client was built with, or 0 for "any"
        /// (the server's is in the welcome).
        content_version: u64,
    },
    /// A game command; answered by a [`ServerMessage::CommandResult`] with
    /// the same `seq`.
    Command {
        /// Client-chosen number echoed in the result.
        seq: u32,
        /// The intent.
        command: WireCommand,
    },
    /// A line of chat for everybody in the session.
    Chat {
        /// At most [`MAX_CHAT_BYTES`].
        text: String,
    },
    /// The player leaves: the server closes the connection without a `Bye`,
    /// as if it had dropped (the seat keeps its towers and can be reclaimed
    /// with the reconnect token within the grace).
    Leave,
}

/// What the server says on the reliable channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The answer to `Hello`: the client is in.
    Welcome(Welcome),
    /// The answer to a command.
    CommandResult {
        /// The command's `seq`.
        seq: u32,
        /// Applied, or why not.
        result: Result<(), WireRejection>,
    },
    /// Something happened in the session.
    Event {
        /// The tick it happened in.
        tick: u64,
        /// What.
        event: WireEvent,
    },
    /// A chat line.
    Chat {
        /// Who said it.
        player: u8,
        /// What.
        text: String,
    },
    /// The server is closing this connection; sent just before it does.
    Bye {
        /// Why.
        reason: ByeReason,
    },
}

/// The session a client has joined.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    /// The server's [`PROTOCOL_VERSION`].
    pub protocol: u16,
    /// Session id.
    pub session: u64,
    /// The client's seat; `None` for a spectator, who may watch and do
    /// nothing else.
    pub player: Option<u8>,
    /// Seats in the session.
    pub players: u8,
    /// Map key.
    pub map: String,
    /// Content version (see `rampart check`).
    pub content_version: u64,
    /// Simulation rate; trajectories advance per tick.
    pub tick_hz: u16,
    /// Snapshot rate.
    pub snapshot_hz: u16,
}

/// A command as it travels (mirrors [`rampart_sim::Command`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireCommand {
    /// Build a tower of `kind` at `(x, y)`.
    PlaceTower {
        /// Tower kind index.
        kind: u16,
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
    /// Raise a tower one level.
    UpgradeTower {
        /// Tower id.
        tower: u32,
    },
    /// Sell a tower.
    SellTower {
        /// Tower id.
        tower: u32,
    },
    /// Change a tower's targeting mode.
    SetTargeting {
        /// Tower id.
        tower: u32,
        /// 0 first, 1 last, 2 strongest, 3 closest.
        mode: u8,
    },
    /// Start the next wave early.
    CallNextWave,
    /// Declare ready.
    Ready,
}

impl From<Command> for WireCommand {
    fn from(command: Command) -> Self {
        match command {
            Command::PlaceTower { kind, cell } => WireCommand::PlaceTower {
                kind: kind.0,
                x: cell.x,
                y: cell.y,
            },
            Command::UpgradeTower { tower } => WireCommand::UpgradeTower { tower: tower.0 },
            Command::SellTower { tower } => WireCommand::SellTower { tower: tower.0 },
            Command::SetTargeting { tower, mode } => WireCommand::SetTargeting {
                tower: tower.0,
                mode: targeting_index(mode),
            },
            Command::CallNextWave => WireCommand::CallNextWave,
            Command::Ready => WireCommand::Ready,
        }
    }
}

impl WireCommand {
    /// The simulation's command, or `None` for an unknown targeting mode.
    pub fn to_command(self) -> Option<Command> {
        Some(match self {
            WireCommand::PlaceTower { kind, x, y } => Command::PlaceTower {
                kind: TowerKindId(kind),
                cell: Cell::new(x, y),
            },
            WireCommand::UpgradeTower { tower } => Command::UpgradeTower {
                tower: TowerId(tower),
            },
            WireCommand::SellTower { tower } => Command::SellTower {
                tower: TowerId(tower),
            },
            WireCommand::SetTargeting { tower, mode } => Command::SetTargeting {
                tower: TowerId(tower),
                mode: *Targeting::ALL.get(usize::from(mode))?,
            },
            WireCommand::CallNextWave => Command::CallNextWave,
            WireCommand::Ready => Command::Ready,
        })
    }
}

/// A targeting mode's wire index.
pub fn targeting_index(mode: Targeting) -> u8 {
    Targeting::ALL
        .iter()
        .position(|&candidate| candidate == mode)
        .map_or(0, |index| index as u8)
}

/// Why a command was refused: the simulation's reasons plus the network's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum WireRejection {
    /// The simulation refused it.
    #[error("{0}")]
    Game(Rejection),
    /// The client sent commands faster than its allowance.
    #[error("too many commands: slow down")]
    RateLimited,
    /// The server could not queue it (overloaded); try again.
    #[error("server busy: command not queued")]
    ServerBusy,
    /// The command is not well formed (unknown targeting mode).
    #[error("malformed command")]
    Malformed,
    /// `Hello` has not been answered with a welcome yet.
    #[error("not joined yet")]
    NotJoined,
    /// The connection is a spectator's: it may watch, not act.
    #[error("spectators cannot send commands")]
    Spectating,
}

/// A session event on the wire. Kills are not sent: the snapshot's
/// despawns and kill counts carry them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireEvent {
    /// A tower was built.
    TowerPlaced {
        /// New tower id.
        tower: u32,
        /// Owner seat.
        player: u8,
        /// Tower kind index.
        kind: u16,
        /// Column.
        x: u16,
        /// Row.
        y: u16,
    },
    /// A tower gained a level.
    TowerUpgraded {
        /// Tower id.
        tower: u32,
        /// New level.
        level: u8,
    },
    /// A tower was sold.
    TowerSold {
        /// Tower id.
        tower: u32,
        /// Gold returned.
        refund: u32,
    },
    /// A wave began.
    WaveStarted {
        /// 1-based wave number.
        wave: u32,
        /// Bonus each player got for calling it early.
        early_bonus: u32,
    },
    /// An enemy reached a goal.
    EnemyLeaked {
        /// Enemy id.
        enemy: u32,
        /// Lives it cost.
        lives_lost: u32,
    },
    /// The game is decided.
    GameOver {
        /// True for victory.
        victory: bool,
    },
    /// The server is shutting down; the session is being handed over.
    /// Reconnect with the reconnect token (possibly to another instance).
    Draining,
}

impl WireEvent {
    /// The wire form of a session event, or `None` for events not sent
    /// (kills, and command results, which go to their sender only).
    pub fn from_event(event: &Event) -> Option<Self> {
        Some(match *event {
            Event::TowerPlaced {
                tower,
                player,
                kind,
                cell,
            } => WireEvent::TowerPlaced {
                tower: tower.0,
                player: player.0,
                kind: kind.0,
                x: cell.x,
                y: cell.y,
            },
            Event::TowerUpgraded { tower, level } => WireEvent::TowerUpgraded {
                tower: tower.0,
                level,
            },
            Event::TowerSold { tower, refund } => WireEvent::TowerSold {
                tower: tower.0,
                refund,
            },
            Event::WaveStarted { wave, early_bonus } => {
                WireEvent::WaveStarted { wave, early_bonus }
            }
            Event::EnemyLeaked {
                enemy, lives_lost, ..
            } => WireEvent::EnemyLeaked { enemy, lives_lost },
            Event::GameOver { outcome } => WireEvent::GameOver {
                victory: outcome == Outcome::Victory,
            },
            // A cleared board shows in the snapshot (no enemies); the
            // server checkpoints on it.
            Event::CommandResult { .. } | Event::EnemyKilled { .. } | Event::WaveCleared { .. } => {
                return None;
            }
        })
    }
}

/// Why the server closed a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum ByeReason {
    /// The client speaks another protocol version.
    #[error("protocol version mismatch (server speaks {server})")]
    ProtocolMismatch {
        /// The server's version.
        server: u16,
    },
    /// The client was built for other content.
    #[error("content version mismatch (server has {server:016x})")]
    ContentMismatch {
        /// The server's content version.
        server: u64,
    },
    /// The session is over (or no longer hosted here).
    #[error("the session ended: {0}")]
    SessionEnded(EndReason),
    /// The server is shutting down; reconnect with the reconnect token.
    #[error("server shutting down")]
    ServerShutdown,
    /// A newer connection took this seat.
    #[error("replaced by a newer connection for the same seat")]
    Replaced,
    /// Too many commands, or too many malformed messages.
    #[error("disconnected for abuse: {0}")]
    Abuse(AbuseKind),
    /// The client said nothing for too long.
    #[error("timed out")]
    TimedOut,
    /// The session already has as many spectators as the server allows.
    #[error("the session has as many spectators as it may ({max})")]
    SpectatorsFull {
        /// The limit per session.
        max: u16,
    },
}

/// Why a session ended, on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
#[allow(missing_docs)]
pub enum EndReason {
    #[error("victory")]
    Victory,
    #[error("defeat")]
    Defeat,
    #[error("ended by an administrator")]
    EndedByAdmin,
    #[error("idle")]
    Idle,
    #[error("crashed")]
    Crashed,
    #[error("gone")]
    Gone,
    /// Another instance runs the session now (it took over while this one
    /// was unreachable): reconnect with the reconnect token.
    #[error("moved to another instance")]
    Moved,
}

impl EndReason {
    /// The reason as the HTTP API and the database name it
    /// (`ended_by_admin`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Self::Victory => "victory",
            Self::Defeat => "defeat",
            Self::EndedByAdmin => "ended_by_admin",
            Self::Idle => "idle",
            Self::Crashed => "crashed",
            Self::Gone => "gone",
            Self::Moved => "moved",
        }
    }
}

/// Which abuse limit a client hit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum AbuseKind {
    /// Kept sending commands past its rate limit.
    #[error("command flood")]
    Flood,
    /// Kept sending messages that do not decode.
    #[error("malformed messages")]
    Malformed,
}

/// Why a message could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Over the size limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    Oversized {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid encoding.
    #[error("malformed message: {0}")]
    Malformed(#[from] bincode::error::DecodeError),
    /// Trailing bytes after a complete message.
    #[error("malformed message: {0} trailing bytes")]
    Trailing(usize),
}

fn bincode_config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<4096>()
}

/// Encodes a message for the wire.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising our own plain enums into a Vec cannot fail.
    bincode::serde::encode_to_vec(message, bincode_config()).unwrap_or_default()
}

/// Decodes a message of at most `max` bytes that must use every byte.
///
/// # Errors
/// Oversized, malformed or trailing input.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], max: usize) -> Result<T, WireError> {
    if bytes.len() > max {
        return Err(WireError::Oversized {
            len: bytes.len(),
            max,
        });
    }
    let (message, used) = bincode::serde::decode_from_slice(bytes, bincode_config())?;
    if used != bytes.len() {
        return Err(WireError::Trailing(bytes.len() - used));
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_survives_the_wire() {
        let commands = [
            Command::PlaceTower {
                kind: TowerKindId(3),
                cell: Cell::new(7, 9),
            },
            Command::UpgradeTower { tower: TowerId(5) },
            Command::SellTower { tower: TowerId(6) },
            Command::SetTargeting {
                tower: TowerId(1),
                mode: Targeting::Strongest,
            },
            Command::CallNextWave,
            Command::Ready,
        ];
        for command in commands {
            let message = ClientMessage::Command {
                seq: 42,
                command: command.into(),
            };
            let bytes = encode(&message);
            let back: ClientMessage = decode(&bytes, MAX_CLIENT_MESSAGE_BYTES).expect("decodes");
            let ClientMessage::Command { seq, command: wire } = back else {
                panic!("wrong message {back:?}");
            };
            assert_eq!(seq, 42);
            assert_eq!(wire.to_command(), Some(command));
        }
    }

    #[test]
    fn documented_example_bytes() {
        let message = ClientMessage::Command {
            seq: 5,
            command: WireCommand::Ready,
        };
        assert_eq!(
            encode(&message),
            [0x01, 0x05, 0x05],
            "docs/PROTOCOL.md section 5"
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        assert!(matches!(
            decode::<ClientMessage>(&[0; 600], MAX_CLIENT_MESSAGE_BYTES),
            Err(WireError::Oversized { .. })
        ));
        assert!(decode::<ClientMessage>(&[250, 1, 2], MAX_CLIENT_MESSAGE_BYTES).is_err());
        let mut bytes = encode(&ClientMessage::Leave);
        bytes.push(0);
        assert!(matches!(
            decode::<ClientMessage>(&bytes, MAX_CLIENT_MESSAGE_BYTES),
            Err(WireError::Trailing(1))
        ));
        // A chat line claiming a huge length does not allocate it.
        let huge = [2u8, 0xfd, 0xff, 0xff, 0xff, 0xff];
        assert!(decode::<ClientMessage>(&huge, MAX_CLIENT_MESSAGE_BYTES).is_err());
        let unknown_mode = WireCommand::SetTargeting { tower: 1, mode: 9 };
        assert_eq!(unknown_mode.to_command(), None);
    }

    /// The largest frames the protocol allows, masked as a client sends
    /// them (the longest header), several waiting at once, pass the
    /// configuration's limits and arrive whole and in order through the
    /// small read buffer (tungstenite grows it for a frame that needs it).
    #[test]
    fn largest_frames_arrive_whole_and_in_order() {
        use std::io::Cursor;
        use tungstenite::Message;
        use tungstenite::protocol::{Role, WebSocket};

        let frames: Vec<Vec<u8>> = (1..=3u8)
            .map(|fill| vec![fill; MAX_WS_FRAME_BYTES])
            .collect();
        let mut client = WebSocket::from_raw_socket(
            Cursor::new(Vec::new()),
            Role::Client,
            Some(websocket_config()),
        );
        for frame in &frames {
            client
                .send(Message::binary(frame.clone()))
                .expect("written to memory");
        }
        let written = client.get_ref().get_ref().clone();
        assert_eq!(written.len(), frames.len() * (MAX_WS_FRAME_BYTES + 8));
        let mut server = WebSocket::from_raw_socket(
            Cursor::new(written),
            Role::Server,
            Some(websocket_config()),
        );
        for frame in &frames {
            match server.read().expect("a whole frame") {
                Message::Binary(bytes) => assert_eq!(&bytes[..], &frame[..]),
                other => panic!("expected a binary frame, got {other:?}"),
            }
        }
    }
}
