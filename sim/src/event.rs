//! What happened during a tick, for players, tools and tests to observe.

use crate::command::{CommandTicket, PlayerId, Rejection, TowerId};
use crate::content::{EnemyKindId, TowerKindId};
use crate::grid::Cell;

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The last wave was cleared with lives left.
    Victory,
    /// Lives ran out.
    Defeat,
}

impl Outcome {
    /// Lower-case name for tools and logs.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Victory => "victory",
            Outcome::Defeat => "defeat",
        }
    }
}

/// One thing that happened in a tick. Events of a tick are in a stable order.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Event {
    /// The answer to a submitted command.
    CommandResult {
        /// The ticket `submit` returned.
        ticket: CommandTicket,
        /// Who sent it.
        player: PlayerId,
        /// `Ok` when applied.
        result: Result<(), Rejection>,
    },
    /// A tower was built.
    TowerPlaced {
        /// Its new id.
        tower: TowerId,
        /// Owner.
        player: PlayerId,
        /// Kind.
        kind: TowerKindId,
        /// Where.
        cell: Cell,
    },
    /// A tower gained a level.
    TowerUpgraded {
        /// Which.
        tower: TowerId,
        /// Its new level.
        level: u8,
    },
    /// A tower was sold.
    TowerSold {
        /// Which.
        tower: TowerId,
        /// Gold returned to the owner.
        refund: u32,
    },
    /// A wave began (1-based number, counting past the list in endless mode).
    WaveStarted {
        /// Wave number.
        wave: u32,
        /// Gold each player got for calling it early (0 if it came on time).
        early_bonus: u32,
    },
    /// The board is clear and nothing is left to spawn: every enemy of the
    /// waves started so far has died or leaked. This is a wave's end (with
    /// waves called early, of every wave running); the next may still come.
    /// The last wave's end is `GameOver` instead.
    WaveCleared {
        /// The wave started last.
        wave: u32,
    },
    /// An enemy died.
    EnemyKilled {
        /// The enemy's id.
        enemy: u32,
        /// Its kind.
        kind: EnemyKindId,
        /// Who landed the last hit (and got the bounty).
        player: PlayerId,
        /// Gold paid.
        bounty: u32,
    },
    /// An enemy reached a goal.
    EnemyLeaked {
        /// The enemy's id.
        enemy: u32,
        /// Its kind.
        kind: EnemyKindId,
        /// Lives it cost.
        lives_lost: u32,
    },
    /// The session ended.
    GameOver {
        /// How.
        outcome: Outcome,
    },
}
