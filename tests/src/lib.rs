//! Shared helpers for end-to-end tests.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// The `rampart` binary of this workspace, built for the running test's
/// profile.
///
/// Test executables live in `target/<profile>/deps/`, the binary in
/// `target/<profile>/`. Cargo does not build a dependency's binaries for a
/// test (a dev-dependency on the lib-less `rampart-server` is ignored), and
/// the target directory may be shared with other checkouts, so when run
/// under cargo this first builds the binary once per test process; cargo
/// releases its build lock before running tests, so the nested build does
/// not wait on the outer one.
pub fn rampart_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let mut dir = exe
            .parent()
            .expect("test executable has a directory")
            .to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        if let Some(cargo) = std::env::var_os("CARGO") {
            let mut build = Command::new(cargo);
            build.current_dir(env!("CARGO_MANIFEST_DIR")).args([
                "build",
                "--quiet",
                "-p",
                "rampart-server",
                "--bin",
                "rampart",
            ]);
            match dir.file_name().and_then(|name| name.to_str()) {
                Some("debug") | None => {}
                Some("release") => {
                    build.arg("--release");
                }
                Some(profile) => {
                    build.args(["--profile", profile]);
                }
            }
            let status = build.status().expect("run cargo to build rampart");
            assert!(status.success(), "building the rampart binary failed");
        }
        dir.join(format!("rampart{}", std::env::consts::EXE_SUFFIX))
    })
    .clone()
}
