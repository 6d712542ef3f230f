//! The CI-sized load run: 20 sessions of 4 bots, half over WebSocket, each
//! playing a whole game against a real server process: every bot connects,
//! every game completes, nothing desyncs.

use rampart_benches::loadgen::{Profile, run};
use rampart_tests::server::Server;
use rampart_tests::workspace_root;

#[test]
fn ci_profile_connects_and_completes_everything() {
    let data = std::env::temp_dir().join(format!("rampart-loadgen-ci-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let server = Server::start(&[
        "--rate-limit-per-second",
        "100000",
        "--rate-limit-burst",
        "100000",
        "--data-dir",
        data.to_str().unwrap_or("data"),
    ]);
    let profile = Profile::named("ci", 0.0).expect("the ci profile exists");
    let report = match run(
        &profile,
        server.addr,
        &workspace_root().join("assets"),
        2,
        None,
    ) {
        Ok(report) => report,
        Err(error) => panic!("the load run could not start: {error}"),
    };
    eprintln!("{}", report.table());
    assert_eq!(report.clients, 80);
    assert_eq!(report.games, 20, "one game per session");
    assert!(report.flawless(), "{}", report.table());
    assert!(report.rtt_ms.p50 > 0.0, "round trips were measured");
    assert!(report.bytes_down_per_client_per_s > 0.0);
    let _ = std::fs::remove_dir_all(&data);
}
