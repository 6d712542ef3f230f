//! `rampart check`: validates a content directory the way the server would
//! load it, so designers see every problem before a server refuses to start,
//! and warns about content that loads but will likely play badly.

use std::path::PathBuf;
use std::process::ExitCode;

use rampart_sim::content::{ContentError, ContentFiles, Diagnostic, WarningRules};

/// Arguments of `rampart check`.
#[derive(clap::Args)]
pub struct CheckArgs {
    /// Content directory to validate (towers.toml, tribes/, maps/, waves/,
    /// scenarios/).
    #[arg(default_value = "assets")]
    dir: Option<PathBuf>,
    /// Exit 1 when there are warnings, as for errors (for CI).
    #[arg(long)]
    deny_warnings: bool,
    /// Warn about a tower kind no player can afford to build before this
    /// wave on any map or scenario.
    #[arg(long, value_name = "WAVE", default_value_t = WarningRules::default().afford_by_wave)]
    afford_by_wave: u32,
    /// Warn about a spawn whose walk to the nearest goal is shorter than
    /// this many cells.
    #[arg(long, value_name = "CELLS", default_value_t = WarningRules::default().min_path_cells)]
    min_path: f64,
}

/// Loads the directory; prints a one-line summary and exits 0 when it is
/// valid, or every problem as `file:line:column: message` on stderr and
/// exits 1. Warnings go to stderr as `file:line:column: warning: message`;
/// with `--deny-warnings` any of them exits 1 too.
pub fn run(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("assets"));
    let rules = WarningRules {
        afford_by_wave: args.afford_by_wave,
        min_path_cells: args.min_path,
    };
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    match ContentFiles::read_dir(&dir)?.check(rules) {
        Ok(checked) => {
            let content = &checked.content;
            for warning in &checked.warnings {
                eprintln!("{}", warning_line(warning));
            }
            println!(
                "ok: {}, {} ({}), {}, {}; content version {:016x}; {}",
                plural(content.towers.len(), "tower"),
                plural(content.tribes.len(), "tribe"),
                plural(content.enemies.len(), "enemy kind"),
                plural(content.maps.len(), "map"),
                plural(content.scenarios.len(), "scenario"),
                content.version,
                plural(checked.warnings.len(), "warning"),
            );
            if args.deny_warnings && !checked.warnings.is_empty() {
                eprintln!(
                    "{} in {} denied by --deny-warnings (paths are relative to it)",
                    plural(checked.warnings.len(), "warning"),
                    dir.display()
                );
                return Ok(ExitCode::FAILURE);
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(ContentError::Invalid(diagnostics)) => {
            for diagnostic in &diagnostics {
                eprintln!("{diagnostic}");
            }
            eprintln!(
                "{} in {} (paths are relative to it)",
                plural(diagnostics.len(), "problem"),
                dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(error @ ContentError::Io { .. }) => Err(error.into()),
    }
}

/// `file:line:column: warning: message`, the form compilers use, so
/// editors jump to it like to an error.
fn warning_line(warning: &Diagnostic) -> String {
    format!(
        "{}:{}:{}: warning: {}",
        warning.file.display(),
        warning.line,
        warning.column,
        warning.message
    )
}
