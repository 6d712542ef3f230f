//! rampart-sim: the deterministic simulation of one tower-defense session.
//!
//! A session is a pure function of (content version, seed, ordered command
//! log). It knows nothing of sockets, databases or wall-clock time: its owner
//! steps it at a fixed rate and carries commands in and events out.

pub mod content;
pub mod grid;
pub mod path;
