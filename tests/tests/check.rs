//! `rampart check` end to end: the real binary on the shipped assets and on
//! a copy with injected mistakes, as a designer would run it.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rampart_tests::{copy_dir, rampart_bin};

fn assets_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets")
}

/// Replaces the first `from` in `file` with `to`, returning the 1-based line
/// it ended up on.
fn inject(file: &Path, from: &str, to: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {}", file.display()));
    std::fs::write(
        file,
        format!("{}{to}{}", &text[..at], &text[at + from.len()..]),
    )
    .unwrap();
    text[..at].matches('\n').count() + 1
}

#[test]
fn shipped_assets_pass() {
    let output = Command::new(rampart_bin())
        .arg("check")
        .arg(assets_dir())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(stdout.contains("content version "), "{stdout}");
}

#[test]
fn injected_errors_are_all_reported() {
    let dir = std::env::temp_dir().join(format!(
        "rampart-check-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&assets_dir(), &dir);

    let towers = dir.join("towers.toml");
    let unknown_line = inject(
        &towers,
        "sell_refund = 0.75\n",
        "sell_refund = 0.75\ncolour = \"red\"\n",
    ) + 1;
    let range_line = inject(&towers, "reload = 0.6", "reload = 600");
    let waves_line = inject(
        &dir.join("waves/small.toml"),
        "enemy = \"skeleton\"",
        "enemy = \"skelton\"",
    );

    let output = Command::new(rampart_bin())
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    let has = |prefix: String, text: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&prefix) && l.contains(text)),
            "no `{prefix}...{text}` in:\n{stderr}"
        );
    };
    has(
        format!("towers.toml:{unknown_line}:1: "),
        "unknown key `colour`",
    );
    has(
        format!("towers.toml:{range_line}:10: "),
        "`reload` = 600 is out of range",
    );
    has(
        format!("waves/small.toml:{waves_line}:9: "),
        "unknown enemy kind `skelton`",
    );
    assert_eq!(lines.len(), 4, "three problems and a count line:\n{stderr}");
    assert!(lines[3].starts_with("3 problems"), "{stderr}");
}

/// The 1-based line of the first line of `file` that starts with `start`.
fn line_starting(file: &Path, start: &str) -> usize {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines()
        .position(|line| line.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting `{start}` in {}", file.display()))
        + 1
}

/// Content that loads but plays badly (`tests/fixtures/warnings`): each
/// mistake is a warning at its place, the check still passes, and
/// `--deny-warnings` fails it; the thresholds are the designer's.
#[test]
fn warnings_point_at_what_plays_badly_and_can_be_denied() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/warnings");
    let check = |extra: &[&str]| {
        Command::new(rampart_bin())
            .arg("check")
            .arg(&dir)
            .args(extra)
            .output()
            .unwrap()
    };
    let output = check(&[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("; 4 warnings"), "{stdout}");
    let lines: Vec<&str> = stderr.lines().collect();
    let expected = [
        (
            format!(
                "maps/dash.toml:{}:8: warning: ",
                line_starting(&dir.join("maps/dash.toml"), "grid =")
            ),
            "spawn 0 at (1, 2) walks only 6.0 cells to the nearest goal (under 10)",
        ),
        (
            format!(
                "towers.toml:{}:2: warning: ",
                line_starting(&dir.join("towers.toml"), "[castle]")
            ),
            "tower `castle` costs 5000 gold to build, more than any player can hold before \
             wave 3 on any map or scenario (at most 180 gold, on map `dash`)",
        ),
        (
            format!(
                "tribes/vermin.toml:{}:8: warning: ",
                line_starting(&dir.join("tribes/vermin.toml"), "[enemy.bat]")
            ),
            "enemy `bat` flies, but no tower targets air",
        ),
        (
            "waves/dash.toml:".to_owned(),
            "warning: group 1 of wave 1 spawns its last enemy 38 s into the wave, after its \
             duration of 10 s: wave 2 starts while it is still spawning",
        ),
    ];
    assert_eq!(lines.len(), expected.len(), "{stderr}");
    for (line, (prefix, text)) in lines.iter().zip(&expected) {
        assert!(
            line.starts_with(prefix.as_str()) && line.contains(text),
            "expected `{prefix}...{text}`, got `{line}`"
        );
    }

    let denied = check(&["--deny-warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("4 warnings in"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );

    let lenient = check(&["--min-path", "5", "--deny-warnings"]);
    let stderr = String::from_utf8_lossy(&lenient.stderr);
    assert_eq!(lenient.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("spawn 0"),
        "5 cells is short enough: {stderr}"
    );
    assert!(stderr.contains("3 warnings in"), "{stderr}");
}

#[test]
fn shipped_assets_have_no_warnings() {
    let output = Command::new(rampart_bin())
        .args(["check", "--deny-warnings"])
        .arg(assets_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
