//! `loadgen`: the load generator. Real bots over real UDP and WebSocket
//! connections play whole sessions against a server (one it starts, or
//! `--server`), and the run is reported like a production load test.
//!
//! ```text
//! cargo run --release -p rampart-benches --bin loadgen -- --profile peak
//! cargo run --release -p rampart-benches --bin loadgen -- --profile ci --json
//! cargo run --release -p rampart-benches --bin loadgen -- capacity --start 100 --step 100
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rampart_benches::loadgen::{Profile, Report, Seating, run};
use rampart_tests::server::Server;

#[derive(Parser)]
#[command(about = "Load rampart with real clients and report it like a production load test")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run a profile (the default).
    Run(RunArgs),
    /// Raise the session count until tick p99 or round trip p99 breaks its
    /// budget (or a bot fails); report the last good level.
    Capacity(CapacityArgs),
}

#[derive(Args, Clone)]
struct Target {
    /// A running server's HTTP API (`http://HOST:PORT`); without it a
    /// release server is started for the run.
    #[arg(long)]
    server: Option<String>,
    /// The given server's admin token (the `peer` profile creates its
    /// sessions); a server started for the run gets its own.
    #[arg(long)]
    admin_token: Option<String>,
    /// Worker threads pumping the bots.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Content directory (for the bots' building plans; must match the
    /// server's).
    #[arg(long, default_value = "assets")]
    assets: PathBuf,
    /// Print one JSON object (the table goes to stderr).
    #[arg(long)]
    json: bool,
}

#[derive(Args, Clone)]
struct RunArgs {
    /// ci, baseline, peak, stress (2x peak), spike (0 to peak in 10 s),
    /// endurance, or peer (the Colyseus peer's workload: reference
    /// sessions, 4 watching clients each, measured at their steady state).
    #[arg(long, default_value = "baseline")]
    profile: String,
    /// Hours of the endurance profile.
    #[arg(long, default_value_t = 1.0)]
    hours: f64,
    /// Sessions at once (overrides the profile).
    #[arg(long)]
    sessions: Option<usize>,
    /// Ramp seconds (overrides the profile).
    #[arg(long)]
    ramp: Option<u64>,
    /// Seconds of play (overrides the profile).
    #[arg(long)]
    duration: Option<u64>,
    /// Seconds after the ramp before the server is measured (overrides the
    /// profile).
    #[arg(long)]
    warmup: Option<u64>,
    /// Share of bots on WebSocket, 0 to 1 (overrides the profile).
    #[arg(long)]
    ws_share: Option<f64>,
    /// Bots read snapshot headers only: they count and acknowledge each as
    /// a rebuilding client would (the server's work is the same) but
    /// rebuild no world and check no checksum, so one core drives more of
    /// them, as the Colyseus harness's `--decode none`.
    #[arg(long)]
    headers_only: bool,
    /// Exit 1 unless every bot connected, every game completed and nothing
    /// desynced.
    #[arg(long)]
    check: bool,
    #[command(flatten)]
    target: Target,
}

#[derive(Args, Clone)]
struct CapacityArgs {
    /// First level, in sessions.
    #[arg(long, default_value_t = 100)]
    start: usize,
    /// Added per level.
    #[arg(long, default_value_t = 100)]
    step: usize,
    /// Highest level tried.
    #[arg(long, default_value_t = 2000)]
    max: usize,
    /// Seconds of play per level.
    #[arg(long, default_value_t = 60)]
    duration: u64,
    /// Budget for the server's tick p99, ms (80% of a 30 Hz tick).
    #[arg(long, default_value_t = 26.7)]
    tick_budget_ms: f64,
    /// Budget for the command round trip p99, ms.
    #[arg(long, default_value_t = 50.0)]
    rtt_budget_ms: f64,
    #[command(flatten)]
    target: Target,
}

/// The admin token of a server started for the run.
const ADMIN_TOKEN: &str = "loadgen-admin";

/// A server to load: given, or started for `clients` bots.
enum Under {
    Given(SocketAddr),
    Started(Server),
}

impl Under {
    fn new(target: &Target, clients: usize) -> Result<Self, String> {
        if let Some(url) = &target.server {
            let address = url.trim_start_matches("http://").trim_end_matches('/');
            return address.parse().map(Under::Given).map_err(|_| {
                format!("--server {url}: expected http://HOST:PORT with an IP address")
            });
        }
        let data = std::env::temp_dir().join(format!("rampart-loadgen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data);
        let sessions = (clients / 2 + 100).to_string();
        let sockets = (clients / 1000 + 1).min(64).to_string();
        let assets = target.assets.to_string_lossy().into_owned();
        let data = data.to_string_lossy().into_owned();
        Ok(Under::Started(Server::start(&[
            "--max-sessions",
            &sessions,
            "--udp-sockets",
            &sockets,
            "--rate-limit-per-second",
            "1000000",
            "--rate-limit-burst",
            "1000000",
            "--assets",
            &assets,
            "--data-dir",
            &data,
            "--admin-token",
            ADMIN_TOKEN,
        ])))
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Under::Given(addr) => *addr,
            Under::Started(server) => server.addr,
        }
    }
}

fn profile(args: &RunArgs) -> Result<Profile, String> {
    let mut profile = Profile::named(&args.profile, args.hours).ok_or_else(|| {
        format!(
            "unknown profile `{}` (ci, baseline, peak, stress, spike, endurance, peer)",
            args.profile
        )
    })?;
    if let Some(sessions) = args.sessions {
        profile.sessions = sessions;
    }
    if let Some(ramp) = args.ramp {
        profile.ramp_seconds = ramp;
    }
    if let Some(duration) = args.duration {
        profile.duration_seconds = duration;
    }
    if let Some(share) = args.ws_share {
        profile.websocket_share = share;
    }
    if let Some(warmup) = args.warmup {
        profile.warmup_seconds = warmup;
    }
    if args.headers_only && !matches!(profile.seating, Seating::Reference { .. }) {
        return Err(format!(
            "--headers-only: the `{}` profile's bots play from the world they rebuild; \
             only watching bots (the peer profile) can skip it",
            profile.name
        ));
    }
    if args.headers_only && args.check {
        return Err(
            "--check asks that nothing desynced, which bots reading headers only \
             (--headers-only) cannot see"
                .to_owned(),
        );
    }
    profile.headers_only = args.headers_only;
    Ok(profile)
}

/// The table on stdout, or with `--json` the JSON object on stdout and
/// the table on stderr (one run gives both).
fn report(target: &Target, report: &Report) {
    if target.json {
        eprint!("{}", report.table());
        println!("{}", serde_json::to_string(report).unwrap_or_default());
    } else {
        print!("{}", report.table());
    }
}

/// Runs `profile` on the target (a server started for it is stopped after)
/// and prints the report.
fn measure(target: &Target, profile: &Profile) -> Result<Report, String> {
    let under = Under::new(target, profile.clients())?;
    let token = match &under {
        Under::Given(_) => target.admin_token.as_deref(),
        Under::Started(_) => Some(ADMIN_TOKEN),
    };
    let result = run(profile, under.addr(), &target.assets, target.threads, token)
        .map_err(|error| error.to_string())?;
    report(target, &result);
    Ok(result)
}

fn run_profile(args: &RunArgs) -> Result<ExitCode, String> {
    let result = measure(&args.target, &profile(args)?)?;
    Ok(if args.check && !result.flawless() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn capacity(args: &CapacityArgs) -> Result<ExitCode, String> {
    let mut last_good: Option<Report> = None;
    let mut sessions = args.start;
    while sessions <= args.max {
        let mut profile = Profile::named("peak", 0.0).ok_or("no peak profile")?;
        profile.name = format!("capacity-{sessions}");
        profile.sessions = sessions;
        profile.ramp_seconds = (sessions as u64 / 10).clamp(10, 60);
        profile.duration_seconds = profile.ramp_seconds + args.duration;
        let result = measure(&args.target, &profile)?;
        let good = result.flawless()
            && result.server_tick_ms.p99 <= args.tick_budget_ms
            && result.rtt_ms.p99 <= args.rtt_budget_ms;
        if !good {
            eprintln!("{sessions} sessions break the budget");
            break;
        }
        last_good = Some(result);
        sessions += args.step;
    }
    match last_good {
        Some(good) => {
            println!(
                "capacity: {} sessions x {} players (tick p99 {:.2} ms, round trip p99 {:.1} ms)",
                good.sessions,
                good.clients / good.sessions.max(1),
                good.server_tick_ms.p99,
                good.rtt_ms.p99
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            println!("capacity: even {} sessions break the budget", args.start);
            Ok(ExitCode::FAILURE)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match &cli.command {
        None => run_profile(&cli.run),
        Some(Command::Run(args)) => run_profile(args),
        Some(Command::Capacity(args)) => capacity(args),
    };
    outcome.unwrap_or_else(|error| {
        eprintln!("error: {error}");
        ExitCode::from(2)
    })
}
