//! What the net crate's integration tests share: the reference session.

use std::path::PathBuf;
use std::sync::Arc;

use rampart_sim::{DEFAULT_TICK_HZ, Session, SessionConfig};

/// The reference session (8 seats, 50 towers, seed 7) on the shipped
/// content, at its first tick.
pub fn reference_session() -> Session {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
    let content = Arc::new(rampart_sim::content::load_dir(&dir).unwrap());
    let config = SessionConfig {
        map: "reference".into(),
        scenario: Some("reference".into()),
        players: 8,
        seed: 7,
        tick_hz: DEFAULT_TICK_HZ,
    };
    Session::new(content, &config).unwrap()
}
