//! rampart-server: the game server (session host, HTTP API, telemetry,
//! configuration) and the designers' command-line tools, as a library so
//! the binary stays a thin CLI and tests can host sessions in process.

pub mod advertise;
pub mod agones;
pub mod auth;
pub mod balance;
pub mod check;
pub mod config;
pub mod content;
pub mod host;
pub mod http;
pub mod path;
pub mod reload;
pub mod render;
pub mod serve;
pub mod simulate;
pub mod stores;
pub mod telemetry;

use std::path::Path;
use std::sync::Arc;

use rampart_sim::Content;

/// Loads and validates content; on failure the error points the user at
/// `rampart check`, which lists every problem with its position.
///
/// # Errors
/// The directory cannot be read or its content is invalid.
pub fn load_content(dir: &Path) -> anyhow::Result<Arc<Content>> {
    Ok(content::Loaded::read_for_startup(dir)?.content)
}
