//! `rampart serve` end to end: a real process on an ephemeral port, driven
//! through its HTTP API, watched through `/metrics`, stopped with SIGTERM.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::time::{Duration, Instant};

use rampart_persistence::Database;
use rampart_tests::server::{Server, histogram_quantile, metric, retry_unavailable};
use serde_json::json;

const TOKEN: &str = "test-admin-token";

fn data_dir(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rampart-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir.to_str().unwrap().to_owned()
}

#[test]
fn starts_with_no_config_and_answers_health_and_ready() {
    let dir = data_dir("defaults");
    let mut server = Server::start(&["--data-dir", &dir]);
    assert_eq!(server.get("/health").status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    let ready = loop {
        let ready = server.get("/ready");
        if ready.status == 200 || Instant::now() > deadline {
            break ready;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(
        server
            .logs()
            .iter()
            .any(|line| line.contains("mutating endpoints") || line.contains("no admin token"))
    );
    let refused = server.post("/v1/sessions", &json!({"map": "small"}), None);
    assert_eq!(
        refused.status, 403,
        "no token configured: mutations are off"
    );
    server.signal("INT");
    assert_eq!(
        server
            .wait_exit(Duration::from_secs(10))
            .and_then(|status| status.code()),
        Some(0)
    );
}

#[test]
fn two_hundred_bot_sessions_tick_on_time_then_drain_on_sigterm() {
    const SESSIONS: usize = 200;
    let dir = data_dir("load");
    let mut server = Server::start(&[
        "--admin-token",
        TOKEN,
        "--data-dir",
        &dir,
        "--rate-limit-per-second",
        "1000",
        "--rate-limit-burst",
        "1000",
    ]);
    let mut ids = Vec::new();
    // Building 200 worlds competes with the ticks for the 2 cores: the
    // admission control may refuse with 503 for a moment (as it should),
    // and a client retries after the pause it is told.
    let body = json!({"map": "reference", "max_players": 4, "bots": 4});
    while ids.len() < SESSIONS {
        let Ok((created, _)) = retry_unavailable(Duration::from_secs(60), || {
            Ok::<_, Infallible>(server.post("/v1/sessions", &body, Some(TOKEN)))
        });
        assert_eq!(created.status, 201, "{}", created.body);
        ids.push(created.json()["id"].as_str().unwrap().to_owned());
    }
    // Every session runs from its creation. A real process on a real
    // clock: wait (polling, not a fixed sleep) until the last one created
    // has played 15 s, so all 200 have ticked together that long.
    let last = format!("/v1/sessions/{}", ids[SESSIONS - 1]);
    let playing = Instant::now();
    // (Just created, it may not be listed yet: no tick counts as 0.)
    while server.get(&last).json()["tick"].as_u64().unwrap_or(0) < 450 {
        assert!(
            playing.elapsed() < Duration::from_secs(60),
            "the last session should have played 15 s by now"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let metrics = server.get("/metrics").body;
    assert_eq!(
        metric(&metrics, "rampart_sessions{state=\"running\"}"),
        Some(SESSIONS as f64),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "rampart_sessions_crashed_total").unwrap_or(0.0),
        0.0
    );
    let p99 = histogram_quantile(&metrics, "rampart_tick_duration_seconds", 0.99).unwrap();
    assert!(
        p99 <= 1.0 / 30.0,
        "tick p99 {p99} s exceeds the 33 ms budget at 30 Hz"
    );
    let session = server.get(&format!("/v1/sessions/{}", ids[0])).json();
    assert!(
        session["towers"].as_u64().unwrap() > 0,
        "the bots build: {session}"
    );

    let started = Instant::now();
    server.signal("TERM");
    let status = server
        .wait_exit(Duration::from_secs(35))
        .expect("exit within the 30 s drain deadline");
    assert_eq!(status.code(), Some(0), "logs: {:#?}", server.logs());
    assert!(started.elapsed() < Duration::from_secs(30));
    let logs = server.logs();
    let handed = logs
        .iter()
        .find(|line| line.contains("drain phase 2/3"))
        .expect("a drain summary line");
    assert!(
        handed.contains(&format!("handed_over={SESSIONS}")) && handed.contains("failed=0"),
        "{handed}"
    );
    assert!(
        logs.iter()
            .any(|line| line.contains("every session's state is stored")),
        "{logs:#?}"
    );
    // Every session's last state is in the embedded database, where a
    // restarted server resumes it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let database = Database::open(&format!("{dir}/rampart.db")).await.unwrap();
        for id in &ids {
            let id = u64::from_str_radix(id, 16).unwrap();
            let checkpoint = database.load_checkpoint(id).await.unwrap();
            assert!(
                checkpoint.is_some_and(|checkpoint| checkpoint.tick >= 450),
                "session {id:016x} has its drain checkpoint"
            );
        }
    });
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_killed_embedded_server_resumes_its_sessions_after_a_restart() {
    let dir = data_dir("restart");
    let args = ["--admin-token", TOKEN, "--data-dir", &dir];
    let mut server = Server::start(&args);
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let created = server.post(
                "/v1/sessions",
                &json!({"map": "reference", "max_players": 2, "bots": 2}),
                Some(TOKEN),
            );
            assert_eq!(created.status, 201, "{}", created.body);
            created.json()["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let tick = |server: &Server, id: &str| {
        // Just created, a session may not be listed yet: no tick is 0.
        server.get(&format!("/v1/sessions/{id}")).json()["tick"]
            .as_u64()
            .unwrap_or(0)
    };
    let started = Instant::now();
    while ids.iter().any(|id| tick(&server, id) < 100) {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "sessions not ticking"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let before: Vec<u64> = ids.iter().map(|id| tick(&server, id)).collect();
    server.signal("KILL");
    server.wait_exit(Duration::from_secs(5)).unwrap();

    // The same data directory: the embedded database has every session's
    // last save (one a second), and the new process resumes them.
    let server = Server::start(&args);
    for (id, &before) in ids.iter().zip(&before) {
        let info = server.get(&format!("/v1/sessions/{id}")).json();
        assert_eq!(info["state"], "running", "{info}");
        let resumed = info["tick"].as_u64().unwrap();
        assert!(
            resumed + 36 >= before,
            "session {id} resumed at tick {resumed}, it had reached {before}"
        );
    }
    let metrics = server.get("/metrics").body;
    assert_eq!(
        metric(
            &metrics,
            "rampart_sessions_adopted_total{source=\"database\"}"
        ),
        Some(3.0)
    );
    let resumed: Vec<u64> = ids.iter().map(|id| tick(&server, id)).collect();
    let started = Instant::now();
    while ids
        .iter()
        .zip(&resumed)
        .any(|(id, &at)| tick(&server, id) < at + 30)
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "resumed sessions not ticking"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}
