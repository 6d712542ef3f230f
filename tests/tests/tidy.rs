//! Checks of the repository itself, run with the tests so they cannot rot:
//! the simulation depends on no IO crate, only `rampart-design` draws,
//! every Rust file says what it is for, and no test is switched off.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use rampart_tests::workspace_root;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|name| name != "target" && !name.to_string_lossy().starts_with('.'))
            {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

fn workspace_rust_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for krate in [
        "sim",
        "net",
        "persistence",
        "server",
        "benches",
        "tests",
        "clients/bevy",
        "design",
    ] {
        rust_files(&workspace_root().join(krate), &mut files);
    }
    assert!(files.len() > 20, "found only {} Rust files", files.len());
    files
}

/// The `[dependencies]` section of a crate's manifest.
fn dependencies(krate: &str) -> String {
    let manifest =
        std::fs::read_to_string(workspace_root().join(krate).join("Cargo.toml")).unwrap();
    manifest
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .to_owned()
}

/// Fails, saying `why`, if `krate`'s `[dependencies]` name any of `forbidden`.
fn assert_no_dependency(krate: &str, forbidden: &[&str], why: &str) {
    let dependencies = dependencies(krate);
    for name in forbidden {
        assert!(
            !dependencies
                .lines()
                .any(|line| line.trim_start().starts_with(name)),
            "{krate} must not depend on `{name}`: {why}"
        );
    }
}

#[test]
fn net_depends_on_no_database_crate() {
    assert_no_dependency(
        "net",
        &["redis", "diesel", "rampart-persistence", "rampart-server"],
        "the network knows nothing of storage",
    );
}

#[test]
fn sim_depends_on_no_io_crate() {
    assert_no_dependency(
        "sim",
        &[
            "tokio",
            "renet",
            "redis",
            "diesel",
            "axum",
            "hyper",
            "reqwest",
            "mio",
            "tracing-subscriber",
        ],
        "the simulation knows nothing of IO",
    );
}

#[test]
fn only_the_design_crate_draws() {
    for krate in ["sim", "net", "persistence", "server"] {
        assert_no_dependency(
            krate,
            &["tiny-skia", "png", "font8x8"],
            "pictures are rampart-design's job",
        );
    }
    assert_no_dependency(
        "design",
        &[
            "tokio",
            "renet",
            "redis",
            "diesel",
            "axum",
            "rampart-server",
        ],
        "it draws and plays games, nothing more",
    );
}

#[test]
fn the_bevy_client_builds_no_renderer_window_or_audio() {
    let output = std::process::Command::new(
        std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()),
    )
    .current_dir(workspace_root())
    .args([
        "tree",
        "-p",
        "rampart-bevy",
        "-e",
        "normal",
        "--prefix",
        "none",
    ])
    .output()
    .unwrap();
    assert!(output.status.success(), "cargo tree failed");
    let tree = String::from_utf8(output.stdout).unwrap();
    assert!(tree.contains("bevy_app"), "the tree lists bevy: {tree}");
    for heavy in [
        "bevy_render",
        "bevy_window",
        "bevy_winit",
        "bevy_audio",
        "bevy_gilrs",
        "bevy_pbr",
        "bevy_sprite",
        "bevy_ui",
        "wgpu",
        "winit",
        "cpal",
        "rodio",
    ] {
        assert!(
            !tree
                .lines()
                .any(|line| line.starts_with(&format!("{heavy} "))),
            "rampart-bevy must stay headless, but depends on `{heavy}`"
        );
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc() {
    for file in workspace_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a `//!` line saying what it is for",
            file.display()
        );
    }
}

#[test]
fn no_test_is_ignored() {
    let marker = ["#[", "ignore"].concat();
    for file in workspace_rust_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&marker),
            "{} switches a test off; fix or delete it instead",
            file.display()
        );
    }
}
