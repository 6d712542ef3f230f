//! What players ask of a session, and the typed answers they get.
//!
//! A rejected command is an expected outcome, not an error: it is a value
//! ([`Rejection`]) carried back to the player in a [`crate::Event::CommandResult`].

use std::fmt;

use crate::content::TowerKindId;
use crate::grid::Cell;

/// A player's seat in a session, `0..players`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PlayerId(pub u8);

/// A tower's id, unique within its session and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TowerId(pub u32);

/// Receipt for a submitted command; its result event carries the same ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommandTicket(pub u64);

/// Which enemy in range a tower shoots.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Targeting {
    /// The one closest to a goal along its route.
    #[default]
    First,
    /// The one furthest from a goal.
    Last,
    /// The one with the most hit points left.
    Strongest,
    /// The one nearest the tower.
    Closest,
}

impl Targeting {
    /// Every mode, in wire order.
    pub const ALL: [Targeting; 4] = [
        Targeting::First,
        Targeting::Last,
        Targeting::Strongest,
        Targeting::Closest,
    ];

    /// The mode's name in logs and tools.
    pub fn name(self) -> &'static str {
        match self {
            Targeting::First => "first",
            Targeting::Last => "last",
            Targeting::Strongest => "strongest",
            Targeting::Closest => "closest",
        }
    }

    /// The mode called `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

/// A player's intent. Applied at the start of the next tick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Build a tower of `kind` on `cell`.
    PlaceTower {
        /// Kind to build.
        kind: TowerKindId,
        /// Where.
        cell: Cell,
    },
    /// Raise one of the player's towers by one level.
    UpgradeTower {
        /// Which tower.
        tower: TowerId,
    },
    /// Remove one of the player's towers for part of its cost.
    SellTower {
        /// Which tower.
        tower: TowerId,
    },
    /// Change how one of the player's towers picks targets.
    SetTargeting {
        /// Which tower.
        tower: TowerId,
        /// The new mode.
        mode: Targeting,
    },
    /// Start the next wave now, for a gold bonus to every player.
    CallNextWave,
    /// Declare the player ready; the first wave starts when all are.
    Ready,
}

/// Why a command was refused. The session is unchanged by a rejected command.
///
/// Serialised as is on the wire (`docs/PROTOCOL.md` lists the variants by
/// index): add new variants at the end.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error, serde::Serialize, serde::Deserialize,
)]
pub enum Rejection {
    /// The session has already been won or lost.
    #[error("the game is over")]
    GameOver,
    /// The player id is not a seat of this session.
    #[error("no such player in this session")]
    UnknownPlayer,
    /// The tower kind id names no kind in the content.
    #[error("unknown tower kind")]
    UnknownTowerKind,
    /// The cell lies outside the map.
    #[error("cell is outside the map")]
    OutOfBounds,
    /// The cell is blocked terrain or a road.
    #[error("cannot build on this cell")]
    CellNotBuildable,
    /// A tower stands there, or an enemy walks there.
    #[error("cell is occupied")]
    CellOccupied,
    /// Building there would leave a spawn or a walking enemy with no way to a goal.
    #[error("that would block every path to the goal")]
    WouldBlockPath,
    /// The player cannot afford it.
    #[error("not enough gold: {needed} needed, {available} available")]
    NotEnoughGold {
        /// Price.
        needed: u32,
        /// The player's gold.
        available: u32,
    },
    /// No tower has that id (never built, or sold).
    #[error("no such tower")]
    NoSuchTower,
    /// The tower belongs to another player.
    #[error("not your tower")]
    NotYourTower,
    /// The tower has no further level.
    #[error("tower is already at its highest level")]
    MaxLevel,
    /// Every wave has already started.
    #[error("no more waves to call")]
    NoMoreWaves,
    /// The player had already declared ready.
    #[error("already ready")]
    AlreadyReady,
}

impl Rejection {
    /// A stable snake_case name for metrics labels and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::GameOver => "game_over",
            Rejection::UnknownPlayer => "unknown_player",
            Rejection::UnknownTowerKind => "unknown_tower_kind",
            Rejection::OutOfBounds => "out_of_bounds",
            Rejection::CellNotBuildable => "cell_not_buildable",
            Rejection::CellOccupied => "cell_occupied",
            Rejection::WouldBlockPath => "would_block_path",
            Rejection::NotEnoughGold { .. } => "not_enough_gold",
            Rejection::NoSuchTower => "no_such_tower",
            Rejection::NotYourTower => "not_your_tower",
            Rejection::MaxLevel => "max_level",
            Rejection::NoMoreWaves => "no_more_waves",
            Rejection::AlreadyReady => "already_ready",
        }
    }
}

impl fmt::Display for PlayerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "p{}", self.0)
    }
}

impl fmt::Display for TowerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}
