//! What the game asks of the session, and what it hears back: commands
//! queued through [`GameCommands`], their typed answers as
//! [`CommandAnswered`] messages carrying the [`CommandId`] the game was
//! given, session events as [`SessionEvent`] and chat as [`ChatLine`]. The
//! same for both plugins: online the client sends and the server answers,
//! offline the simulation does both.

use bevy_ecs::prelude::*;
use bevy_ecs::system::SystemParam;
use rampart_net::protocol::{WireEvent, WireRejection};
use rampart_sim::content::TowerKindId;
use rampart_sim::grid::Cell;
use rampart_sim::{Command, PlayerId, Targeting, TowerId};

/// A command's identity, unique within the app's life (across reconnects
/// and sessions), so its answer is never mistaken for another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandId(pub u64);

/// Why a command did not apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CommandFailure {
    /// The game or the server refused it (the game is unchanged by it).
    #[error(transparent)]
    Refused(#[from] WireRejection),
    /// The connection dropped before the answer came: the command may or
    /// may not have been applied; the mirrored world will tell.
    #[error("the connection dropped before the answer came")]
    Unanswered,
    /// The app holds no seat to send it from: the game ended or was never
    /// joined, or it is a replay.
    #[error("no seat to play from")]
    NoSeat,
}

/// The answer to one command.
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandAnswered {
    /// What [`GameCommands::send`] returned for it.
    pub id: CommandId,
    /// The command.
    pub command: Command,
    /// Applied, or why not.
    pub result: Result<(), CommandFailure>,
}

/// Something that happened in the session (towers placed, upgraded and
/// sold, waves, leaks, the game's end, a server draining).
#[derive(Message, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    /// The tick it happened in.
    pub tick: u64,
    /// What.
    pub event: WireEvent,
}

/// A line of chat.
#[derive(Message, Clone, Debug, PartialEq, Eq)]
pub struct ChatLine {
    /// Who said it.
    pub player: PlayerId,
    /// What.
    pub text: String,
}

/// Commands and chat the game queued this frame, taken by whichever plugin
/// runs the session.
#[derive(Resource, Debug, Default)]
pub(crate) struct Outbox {
    next_id: u64,
    pub(crate) commands: Vec<(CommandId, Command)>,
    pub(crate) chat: Vec<String>,
}

/// Sends commands and chat for this app's seat. Each command's answer
/// arrives later as a [`CommandAnswered`] with the returned [`CommandId`].
/// Commands queued before the seat is ready wait for it; once the game has
/// ended they are answered [`CommandFailure::NoSeat`].
#[derive(SystemParam)]
pub struct GameCommands<'w> {
    outbox: ResMut<'w, Outbox>,
}

impl GameCommands<'_> {
    /// Queues `command`; it leaves at the end of this frame.
    pub fn send(&mut self, command: Command) -> CommandId {
        let id = CommandId(self.outbox.next_id);
        self.outbox.next_id += 1;
        self.outbox.commands.push((id, command));
        id
    }

    /// Builds a tower of `kind` on `cell`.
    pub fn place_tower(&mut self, kind: TowerKindId, cell: Cell) -> CommandId {
        self.send(Command::PlaceTower { kind, cell })
    }

    /// Raises one of this seat's towers a level.
    pub fn upgrade_tower(&mut self, tower: TowerId) -> CommandId {
        self.send(Command::UpgradeTower { tower })
    }

    /// Sells one of this seat's towers.
    pub fn sell_tower(&mut self, tower: TowerId) -> CommandId {
        self.send(Command::SellTower { tower })
    }

    /// Changes how one of this seat's towers picks targets.
    pub fn set_targeting(&mut self, tower: TowerId, mode: Targeting) -> CommandId {
        self.send(Command::SetTargeting { tower, mode })
    }

    /// Starts the next wave now, for a bonus.
    pub fn call_next_wave(&mut self) -> CommandId {
        self.send(Command::CallNextWave)
    }

    /// Declares this seat ready for the first wave.
    pub fn ready(&mut self) -> CommandId {
        self.send(Command::Ready)
    }

    /// Says `text` to everybody in the session (at most 200 bytes; longer
    /// lines are cut at a character boundary).
    pub fn chat(&mut self, text: &str) {
        let mut end = text.len().min(rampart_net::protocol::MAX_CHAT_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        self.outbox.chat.push(text[..end].to_owned());
    }
}
