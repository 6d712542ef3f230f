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
