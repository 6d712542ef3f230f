//! `rampart check`: validates a content directory the way the server would
//! load it, so designers see every problem before a server refuses to start.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_sim::content::{ContentError, load_dir};

/// Arguments of `rampart check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Content directory to validate (towers.toml, tribes/, maps/, waves/,
    /// scenarios/).
    #[arg(default_value = "assets")]
    dir: Option<PathBuf>,
}

/// Loads the directory; prints a one-line summary and exits 0 when it is
/// valid, or every problem as `file:line:column: message` on stderr and
/// exits 1.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("assets"));
    match load_dir(&dir) {
        Ok(content) => {
            let plural =
                |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
            println!(
                "ok: {}, {} ({}), {}, {}; content version {:016x}",
                plural(content.towers.len(), "tower"),
                plural(content.tribes.len(), "tribe"),
                plural(content.enemies.len(), "enemy kind"),
                plural(content.maps.len(), "map"),
                plural(content.scenarios.len(), "scenario"),
                content.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(ContentError::Invalid(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            eprintln!(
                "{} problem{} in {} (paths are relative to it)",
                diagnostics.len(),
                if diagnostics.len() == 1 { "" } else { "s" },
                dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(error @ ContentError::Io { .. }) => Err(error.into()),
    }
}
