//! rampart-server: the game server (session host, HTTP API, telemetry,
//! configuration) and the designers' command-line tools, as a library so
//! the binary stays a thin CLI and tests can host sessions in process.

pub mod check;
pub mod config;
pub mod host;
pub mod http;
pub mod path;
pub mod serve;
pub mod simulate;
pub mod telemetry;
