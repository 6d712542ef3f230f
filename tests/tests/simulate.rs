//! `rampart simulate` and `rampart replay` end to end: the reference session
//! run twice gives one state hash, and its recorded log replays to it.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use rampart_tests::{rampart_bin, run_rampart as rampart, workspace_root};

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap()
}

const REFERENCE: [&str; 10] = [
    "simulate",
    "--map",
    "reference",
    "--scenario",
    "reference",
    "--seed",
    "7",
    "--ticks",
    "3000",
    "--json",
];

#[test]
fn reference_simulation_is_reproducible_and_replays() {
    let first = json(&rampart(&REFERENCE));
    let second = json(&rampart(&REFERENCE));
    for key in [
        "outcome",
        "ticks",
        "wave",
        "lives",
        "kills",
        "leaks",
        "state_hash",
        "us_per_tick",
    ] {
        assert!(first.get(key).is_some(), "`{key}` missing from {first}");
    }
    assert_eq!(first["ticks"], 3000);
    assert_eq!(first["state_hash"], second["state_hash"]);
    assert!(
        first["kills"].as_u64().unwrap() > 0,
        "the 50 scenario towers should kill something: {first}"
    );

    let log = std::env::temp_dir().join(format!("rampart-reference-{}.log", std::process::id()));
    let log_arg = log.to_str().unwrap();
    let recorded = json(&rampart(&[&REFERENCE[..], &["--record", log_arg]].concat()));
    assert_eq!(recorded["state_hash"], first["state_hash"]);
    let replayed = json(&rampart(&["replay", log_arg, "--json"]));
    assert_eq!(replayed["state_hash"], first["state_hash"]);
    std::fs::remove_file(&log).unwrap();
}

#[test]
fn bots_play_a_whole_game_that_replays() {
    let log = std::env::temp_dir().join(format!("rampart-small-{}.log", std::process::id()));
    let log_arg = log.to_str().unwrap();
    let run = json(&rampart(&[
        "simulate",
        "--map",
        "small",
        "--seed",
        "3",
        "--players",
        "2",
        "--record",
        log_arg,
        "--json",
    ]));
    assert_ne!(
        run["outcome"], "undecided",
        "a finite map is decided within the default tick limit: {run}"
    );
    assert!(
        run["commands"].as_u64().unwrap() > 2,
        "bots should build: {run}"
    );
    let replayed = json(&rampart(&["replay", log_arg, "--json"]));
    assert_eq!(replayed["state_hash"], run["state_hash"]);
    assert_eq!(replayed["outcome"], run["outcome"]);
    std::fs::remove_file(Path::new(&log)).unwrap();
}

#[test]
fn a_tampered_log_is_a_desync() {
    let log = std::env::temp_dir().join(format!("rampart-tampered-{}.log", std::process::id()));
    let log_arg = log.to_str().unwrap();
    rampart(&[
        "simulate", "--map", "small", "--seed", "3", "--ticks", "900", "--record", log_arg,
    ]);
    let text = std::fs::read_to_string(&log).unwrap();
    let tampered = text.replace("seed 3", "seed 4");
    std::fs::write(&log, tampered).unwrap();
    let output = Command::new(rampart_bin())
        .current_dir(workspace_root())
        .args(["replay", log_arg])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("desync"));
    std::fs::remove_file(&log).unwrap();
}
