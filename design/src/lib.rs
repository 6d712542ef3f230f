//! rampart-design: what designers look at. Pictures of maps and games
//! (`board`), charts (`chart`), both drawn as a [`Scene`] and written as SVG
//! (`svg`) or PNG and animated PNG (`raster`); and balance runs
//! (`balance`): many games of a map with varied content, summed up, written
//! as JSON, CSV and charts.
//!
//! It plays games through `rampart-sim` only (`BotGame`, command-log
//! replays), so its pictures and numbers are the simulation's own; the
//! `rampart render` and `rampart balance` subcommands are thin wrappers.

pub mod balance;
pub mod board;
pub mod chart;
pub mod raster;
pub mod scene;
pub mod svg;

pub use board::{BoardLayer, BoardStyle, board_picture};
pub use raster::{DrawError, apng, png};
pub use scene::Scene;
pub use svg::svg;
