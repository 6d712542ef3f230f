//! Shared set-up for rampart's benchmarks: the reference session, the load
//! every speed figure in `docs/BENCHMARKS.md` is quoted against.

pub mod loadgen;
pub mod scrape;

use std::path::PathBuf;
use std::sync::Arc;

use rampart_sim::{Content, DEFAULT_TICK_HZ, Session, SessionConfig};

/// Tick at which the reference session reaches its steady state (about 100
/// enemies alive, 50 towers firing): the fourth cycle of its endless waves.
pub const STEADY_TICK: u64 = 7_200;

/// The repository's `assets/`, loaded.
///
/// # Panics
/// If the assets do not load: a benchmark of broken content means nothing.
pub fn assets() -> Arc<Content> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    match rampart_sim::content::load_dir(&dir) {
        Ok(content) => Arc::new(content),
        Err(error) => panic!("assets do not load: {error}"),
    }
}

/// How the reference session is built: map and scenario `reference`, 8
/// players, seeded with `seed`.
pub fn reference_config(seed: u64) -> SessionConfig {
    SessionConfig {
        map: "reference".into(),
        scenario: Some("reference".into()),
        players: 8,
        seed,
        tick_hz: DEFAULT_TICK_HZ,
    }
}

/// A fresh reference session: map `reference`, scenario `reference` (8
/// players, 50 towers), seeded with `seed`.
///
/// # Panics
/// If the reference map or scenario is missing from the assets.
pub fn reference_session(content: &Arc<Content>, seed: u64) -> Session {
    match Session::new(content.clone(), &reference_config(seed)) {
        Ok(session) => session,
        Err(error) => panic!("the reference session does not build: {error}"),
    }
}

/// A reference session seeded with `seed`, stepped to [`STEADY_TICK`].
///
/// # Panics
/// If the reference map or scenario is missing from the assets.
pub fn steady_reference_session(content: &Arc<Content>, seed: u64) -> Session {
    let mut session = reference_session(content, seed);
    while session.tick() < STEADY_TICK {
        session.step();
    }
    session
}
