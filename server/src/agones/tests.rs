//! The Agones integration against the fake SDK sidecar of `rampart-tests`
//! (the real one needs a Kubernetes API server): the GameServer answer's
//! parts, the beta counter paths, labels, and health pings that stop while
//! the tick thread is wedged.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use rampart_tests::agones::{FakeSidecar, GameServerSpec, SidecarPort};

use super::*;
use crate::config::Config;
use crate::host::HostConfig;

use serde_json::json;

#[test]
fn a_game_server_answer_gives_address_and_ports_by_name() {
    let answer = json!({
        "object_meta": {"name": "rampart-x7", "namespace": "default"},
        "status": {
            "state": "Scheduled",
            "address": "203.0.113.7",
            "ports": [
                {"name": "udp-0", "port": 7001},
                {"name": "ws", "port": 7002},
                {"name": "http", "port": "7003"}
            ]
        }
    });
    let (host, ports) = parse_status(&answer).unwrap();
    let address = GameServerAddress {
        ip: host.parse().unwrap(),
        host,
        ports,
    };
    assert_eq!(
        address.udp(1).unwrap(),
        ["203.0.113.7:7001".parse().unwrap()]
    );
    assert_eq!(address.ws_base().unwrap(), "ws://203.0.113.7:7002");
    assert_eq!(address.http_base().unwrap(), "http://203.0.113.7:7003");
    let missing = address.udp(2).unwrap_err().to_string();
    assert!(
        missing.contains("no port named `udp-1` (it has: http, udp-0, ws)"),
        "{missing}"
    );
}

#[test]
fn an_unscheduled_game_server_has_no_address_yet() {
    assert_eq!(
        parse_status(&json!({"status": {"state": "Creating"}})),
        None
    );
    assert_eq!(
        parse_status(&json!({"status": {"address": "", "ports": []}})),
        None
    );
}

#[test]
fn counters_use_the_beta_paths_with_int64_as_strings() {
    let (path, body) = beta::counter_update("sessions", Some(3), None);
    assert_eq!(path, "/v1beta1/counters/sessions");
    assert_eq!(body, json!({"count": "3"}));
    let (_, body) = beta::counter_update("players", None, Some(8000));
    assert_eq!(body, json!({"capacity": "8000"}));
}

#[test]
fn labels_are_valid_label_values() {
    let labels = labels(0xab, ["reference".to_owned(), "Big Map_2".to_owned()]);
    assert!(labels.contains(&("map-big-map-2".to_owned(), "true".to_owned())));
    assert!(labels.contains(&("content".to_owned(), "00000000000000ab".to_owned())));
}

#[test]
fn a_wedged_tick_thread_stops_the_health_pings_until_it_moves_again() {
    let port = SidecarPort::any();
    let port_number = port.number();
    let sidecar = FakeSidecar::start(
        port,
        GameServerSpec {
            address: "127.0.0.1".to_owned(),
            ports: Vec::new(),
            counters: Vec::new(),
            watch_on_ready: Vec::new(),
        },
    );
    let pings = || sidecar.calls_to("/health").len();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../assets");
        let content = std::sync::Arc::new(rampart_sim::content::load_dir(&dir).unwrap());
        let config = HostConfig {
            max_sessions: 10,
            ..Config::default().host_config()
        };
        let host = HostHandle::spawn(content, config, None, None).unwrap();
        let agones = Agones::new(HttpSidecar::on_port(port_number));
        let health = agones.keep_healthy(host.clone());
        tokio::time::sleep(HEALTH_PERIOD * 2 + Duration::from_millis(500)).await;
        let healthy = pings();
        assert!(healthy >= 2, "{healthy} pings while ticking");

        let release = host.stall().await;
        tokio::time::sleep(HEALTH_PERIOD * 3 + Duration::from_millis(500)).await;
        let wedged = pings() - healthy;
        // One ping may still go out if the tick moved just before the stall.
        assert!(
            wedged <= 1,
            "{wedged} pings while the tick thread was stuck"
        );

        drop(release);
        tokio::time::sleep(HEALTH_PERIOD * 2 + Duration::from_millis(500)).await;
        assert!(
            pings() > healthy + wedged,
            "pings resume once the tick thread moves"
        );
        health.abort();
    });
}
