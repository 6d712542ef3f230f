//! Shared helpers for end-to-end tests.

pub mod agones;
pub mod maze;
pub mod player;
pub mod server;
pub mod stores;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The workspace root, so tests find files regardless of the directory
/// `cargo test` was started from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `shared/` directory beside the repository, where large test data
/// (such as the Moving AI benchmark sample) lives outside version control.
pub fn shared_dir() -> PathBuf {
    workspace_root().join("..").join("shared")
}

/// Path of the `rampart` binary, built for the profile of the running test.
///
/// Cargo only builds a package's binaries for that package's own
/// integration tests (`CARGO_BIN_EXE_*` does not cross packages, and a
/// binary-only crate cannot be a dependency), so the first call runs
/// `cargo build -p rampart-server --bin rampart` into the same target
/// directory. Cargo releases its build lock while tests run, so this does
/// not deadlock, and it is a no-op when the binary is already fresh. If cargo
/// is not available (a test binary run by hand) an existing binary is used.
/// `RAMPART_BIN` names another binary to run instead, unbuilt: benchmark
/// tools measure an older build against the new one that way.
///
/// # Panics
/// If the binary can neither be built nor found.
pub fn rampart_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("RAMPART_BIN") {
            return PathBuf::from(bin);
        }
        // Test executables live in <target>/<profile>/deps/, other binaries
        // (benchmark tools) in <target>/<profile>/.
        let exe = std::env::current_exe().expect("path of the running executable");
        let parent = exe.parent().expect("executable in a directory");
        let profile_dir = if parent.ends_with("deps") {
            parent.parent().expect("deps/ under the profile directory")
        } else {
            parent
        };
        let target_dir = profile_dir
            .parent()
            .expect("profile directory under the target directory");
        let bin = profile_dir.join(format!("rampart{}", std::env::consts::EXE_SUFFIX));

        let mut build =
            Command::new(std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into()));
        build
            .current_dir(workspace_root())
            .env("CARGO_TARGET_DIR", target_dir);
        build.args([
            "build",
            "--quiet",
            "-p",
            "rampart-server",
            "--bin",
            "rampart",
        ]);
        match profile_dir.file_name().and_then(|name| name.to_str()) {
            Some("debug") | None => {}
            Some("release") => {
                build.arg("--release");
            }
            Some(other) => {
                build.args(["--profile", other]);
            }
        }
        match build.status() {
            Ok(status) if status.success() => {}
            Ok(status) => panic!("building the rampart binary failed: {status}"),
            Err(error) if bin.exists() => eprintln!(
                "cannot run cargo ({error}); using existing {}",
                bin.display()
            ),
            Err(error) => panic!(
                "cannot run cargo to build rampart ({error}) and {} does not exist",
                bin.display()
            ),
        }
        assert!(bin.exists(), "{} missing after build", bin.display());
        bin
    })
    .clone()
}

/// Runs `rampart args` from the workspace root and returns its output.
///
/// # Panics
/// If it cannot start or exits unsuccessfully (with its standard error).
pub fn run_rampart(args: &[&str]) -> Output {
    let output = Command::new(rampart_bin())
        .current_dir(workspace_root())
        .args(args)
        .output()
        .expect("rampart starts");
    assert!(
        output.status.success(),
        "rampart {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs `bin path --map map` with `input` on standard input and waits
/// for its output (whatever its exit status).
///
/// # Errors
/// It cannot start, or its input cannot be written.
pub fn run_path(bin: &Path, map: &Path, input: &str) -> std::io::Result<Output> {
    use std::io::Write as _;
    use std::process::Stdio;

    let mut child = Command::new(bin)
        .args(["path", "--map"])
        .arg(map)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no stdin pipe"))?;
    let input = input.to_owned();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| std::io::Error::other("the input writer panicked"))??;
    Ok(output)
}

/// Copies a directory tree.
///
/// # Panics
/// On any IO error: the test cannot go on.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create directory");
    for entry in std::fs::read_dir(from).expect("read directory") {
        let entry = entry.expect("directory entry");
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// A copy of `assets/` in a fresh temporary directory plus
/// `tests/fixtures/quick-assets` (the `sprint` map, whose whole game, two
/// short waves down a nine-cell road, lasts about twenty seconds), so
/// network tests can play games to the end. The container smoke test
/// mounts the same content.
///
/// # Panics
/// On any IO error.
pub fn quick_assets(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rampart-assets-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&workspace_root().join("assets"), &dir);
    copy_dir(&workspace_root().join("tests/fixtures/quick-assets"), &dir);
    dir
}

/// Polls `done` every 50 ms until it holds.
///
/// # Panics
/// If it does not hold within `limit`; the message names `what`.
pub fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{what} not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
