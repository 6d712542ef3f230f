//! rampart-sim: the deterministic simulation of one tower-defense session.
//!
//! A session is a pure function of (content version, seed, ordered command
//! log). It knows nothing of sockets, databases or wall-clock time: its owner
//! steps it at a fixed rate and carries commands in and events out.
//!
//! The face is small: build a [`Session`] from [`Content`] and a
//! [`SessionConfig`], [`Session::submit`] commands, [`Session::step`], read
//! [`Session::events`], take a [`Snapshot`], compare [`Session::state_hash`].
//! [`Session::save`] and [`Session::restore`] move a running session to
//! another process, which resumes it exactly.
//! [`step_all`] steps many sessions in parallel.

pub mod bots;
mod command;
mod commands;
pub mod content;
mod event;
pub mod grid;
pub mod hash;
pub mod leb128;
pub mod log;
pub mod path;
mod rules;
mod session;
mod snapshot;
mod systems;
mod world;

pub use command::{Command, CommandTicket, PlayerId, Rejection, Targeting, TowerId};
pub use content::Content;
pub use event::{Event, Outcome};
pub use session::{
    BoardView, DEFAULT_TICK_HZ, MAX_PLAYERS, PlayerResult, RestoreError, Session, SessionConfig,
    SessionError, Summary,
};
pub use snapshot::{EnemyView, PlayerView, ProjectileView, Snapshot, TowerView};

use rayon::prelude::*;

/// Steps every session once, in parallel on the current rayon pool. Each
/// session runs single-threaded inside, so sessions (and the flow fields
/// their placements recompute) spread across cores without sharing anything.
pub fn step_all(sessions: &mut [Session]) {
    sessions.par_iter_mut().for_each(Session::step);
}
