//! rampart-server: the game server (session host, HTTP API, telemetry,
//! configuration) and the designers' command-line tools, as a library so
//! the binary stays a thin CLI and tests can host sessions in process.

pub mod advertise;
pub mod agones;
pub mod auth;
pub mod balance;
pub mod check;
pub mod config;
pub mod host;
pub mod http;
pub mod path;
pub mod render;
pub mod serve;
pub mod simulate;
pub mod stores;
pub mod telemetry;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rampart_sim::Content;

/// Loads and validates content; on failure the error points the user at
/// `rampart check`, which lists every problem with its position.
pub fn load_content(dir: &Path) -> anyhow::Result<Arc<Content>> {
    let content = rampart_sim::content::load_dir(dir).with_context(|| {
        format!(
            "loading content from {} (run `rampart check {}` for details)",
            dir.display(),
            dir.display()
        )
    })?;
    Ok(Arc::new(content))
}
