//! Logs and metrics for the server process: a `tracing` subscriber writing
//! text or JSON, and the Prometheus recorder behind `GET /metrics`.
//!
//! The host and the HTTP API record through the `metrics` macros; this module
//! only installs the recorder and describes the metrics, so recording code
//! never depends on the exporter.

use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Name of the per-route HTTP request counter.
pub const HTTP_REQUESTS: &str = "rampart_http_requests_total";
/// Name of the per-route HTTP latency histogram.
pub const HTTP_DURATION: &str = "rampart_http_request_duration_seconds";
/// Name of the tick duration histogram the host records.
pub const TICK_DURATION: &str = "rampart_tick_duration_seconds";
/// Running sessions stepped, summed over ticks: with
/// `process_cpu_seconds_total` it gives the CPU one session-tick costs.
pub const SESSION_TICKS: &str = "rampart_session_ticks_total";
/// Spectators connected (the net loop sets it each second).
const SPECTATORS: &str = "rampart_spectators";
/// Spectators refused, by reason; the net loop and the HTTP API count it.
pub const SPECTATORS_REFUSED: &str = "rampart_spectators_refused_total";

/// Tick buckets from 0.1 ms to 100 ms: a 30 Hz tick has 33 ms, so the
/// interesting region is a few ms around the overrun budget.
const TICK_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.0125, 0.0167, 0.025, 0.0333,
    0.05, 0.1,
];

/// HTTP buckets around the 200 ms p99 target.
const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1.0, 2.5,
];

/// How often histogram samples are folded into buckets between scrapes, so
/// an unscraped process does not accumulate raw samples.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Added to every log filter that does not name `renetcode` itself:
/// renetcode logs each datagram it cannot read at ERROR (garbage, replays,
/// a client it has already timed out), so any sender on the internet could
/// fill the log and the disk at line rate; those datagrams are dropped
/// either way and say nothing an operator can act on.
const QUIET_NETCODE: &str = "renetcode=off";

/// The log filter from `RUST_LOG`'s directives (`info` when unset or
/// unparsable), with [`QUIET_NETCODE`] unless they name renetcode.
fn log_filter(directives: Option<&str>) -> EnvFilter {
    let directives = directives.unwrap_or("info");
    let quieted = if directives.contains("renetcode") {
        directives.to_owned()
    } else {
        format!("{directives},{QUIET_NETCODE}")
    };
    EnvFilter::try_new(quieted).unwrap_or_else(|_| EnvFilter::new(format!("info,{QUIET_NETCODE}")))
}

/// Installs the global `tracing` subscriber. `RUST_LOG` filters as usual;
/// unset or unparsable, it falls back to `info`. Either way renetcode's
/// per-datagram errors are left out unless `RUST_LOG` names renetcode.
///
/// # Errors
///
/// A global subscriber is already installed.
pub fn init_logging(format: LogFormat) -> anyhow::Result<()> {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or pods.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|error| anyhow::anyhow!("cannot install the log subscriber: {error}"))
}

/// Installs the global Prometheus recorder (without an HTTP listener of its
/// own: `GET /metrics` renders from the returned handle), describes every
/// metric the server records, and starts a thread that runs the recorder's
/// upkeep.
///
/// # Errors
///
/// A global `metrics` recorder is already installed.
pub fn install_metrics() -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(TICK_DURATION.to_owned()), TICK_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), HTTP_BUCKETS)?
        .install_recorder()?;
    describe();
    export_alerting_series_at_zero();
    let upkeep = handle.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                upkeep.run_upkeep();
            }
        });
    if let Err(error) = spawned {
        // Rendering also folds samples, so scrapes still work without it.
        tracing::warn!(%error, "cannot start the metrics upkeep thread");
    }
    Ok(handle)
}

/// Sets `process_cpu_seconds_total`, and its user and system parts, from
/// `/proc/self/stat`. Called on every scrape, so load tests read the
/// server's CPU through `/metrics` alone. The parts carry prom-client's
/// names, which the Node servers rampart is compared with export: the
/// kernel's share differs most between a loopback benchmark and a real
/// network (loopback runs the receivers' side of every packet in the
/// sender's system time), so the user part is what compares servers.
pub fn record_process_cpu() {
    if let Some(times) = cpu_times("self") {
        metrics::gauge!("process_cpu_seconds_total").set(times.total());
        metrics::gauge!("process_cpu_user_seconds_total").set(times.user);
        metrics::gauge!("process_cpu_system_seconds_total").set(times.system);
    }
}

/// CPU seconds a process has used, in user space and in the kernel on its
/// behalf.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuTimes {
    /// In user space: the process's own code.
    pub user: f64,
    /// In the kernel, on the process's behalf.
    pub system: f64,
}

impl CpuTimes {
    /// Both together.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// CPU seconds process `pid` (or `"self"`) has used, from
/// `/proc/<pid>/stat`; `None` where there is no such file. The benchmark
/// tools measure with it too.
pub fn cpu_times(pid: &str) -> Option<CpuTimes> {
    parse_cpu_times(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU seconds (user plus system) process `pid` (or `"self"`) has used.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    cpu_times(pid).map(|times| times.total())
}

/// utime and stime from a `/proc/<pid>/stat` line (Linux counts them in
/// 1/100 s). The command name, in parentheses, may hold spaces and
/// parentheses of its own: the fields start after the last `)`.
fn parse_cpu_times(stat: &str) -> Option<CpuTimes> {
    let (_, rest) = stat.rsplit_once(')')?;
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let mut fields = rest.split_whitespace().skip(11);
    let mut seconds = || Some(fields.next()?.parse::<f64>().ok()? / 100.0);
    Some(CpuTimes {
        user: seconds()?,
        system: seconds()?,
    })
}

/// Exports at zero, from startup, the series the shipped alerts watch
/// (`k8s/base/prometheus-rule.yaml`). A counter that first appears at 1 has
/// no earlier sample, so `increase()` over it stays empty and the first
/// crash or overrun would never alert.
fn export_alerting_series_at_zero() {
    for name in [
        "rampart_tick_overruns_total",
        "rampart_ticks_lost_total",
        "rampart_sessions_crashed_total",
        "rampart_sessions_moved_total",
        "rampart_adoptions_failed_total",
    ] {
        metrics::counter!(name).absolute(0);
    }
    for reason in ["queue_full", "stale", "fenced"] {
        metrics::counter!("rampart_persist_dropped_total", "reason" => reason).absolute(0);
    }
    for state in ["hot", "durable"] {
        metrics::counter!("rampart_persist_dropped_total", "reason" => "memory_bound", "state" => state)
            .absolute(0);
    }
    for reason in ["feed_full", "udp_buffer_full", "socket_full"] {
        metrics::counter!("rampart_net_dropped_total", "reason" => reason).absolute(0);
    }
    for store in ["database", "redis"] {
        metrics::counter!("rampart_persist_store_errors_total", "store" => store).absolute(0);
    }
    metrics::gauge!("rampart_persist_queue_depth").set(0.0);
    for result in ["invalid", "failed"] {
        for trigger in ["watch", "admin"] {
            metrics::counter!(crate::reload::RELOADS, "trigger" => trigger, "result" => result)
                .absolute(0);
        }
    }
    for state in ["lobby", "running", "ended"] {
        metrics::gauge!("rampart_sessions", "state" => state).set(0.0);
    }
}

fn describe() {
    describe_counter!(
        crate::reload::RELOADS,
        Unit::Count,
        "Content reloads by trigger (watch, admin) and result (reloaded, unchanged, invalid: \
         the files break rules, failed: unreadable or not stored); after invalid or failed the \
         previous content is still served."
    );
    describe_gauge!(
        "process_cpu_seconds_total",
        Unit::Seconds,
        "CPU time (user and system) this process has used."
    );
    describe_gauge!(
        "process_cpu_user_seconds_total",
        Unit::Seconds,
        "CPU time this process has used in user space: its own code."
    );
    describe_gauge!(
        "process_cpu_system_seconds_total",
        Unit::Seconds,
        "CPU time the kernel has used on this process's behalf (system calls; over loopback also the receivers' side of each packet sent)."
    );
    describe_gauge!(
        "rampart_sessions",
        Unit::Count,
        "Sessions known to the host, by state (lobby, running, ended)."
    );
    describe_gauge!(
        "rampart_players_connected",
        Unit::Count,
        "Players connected to any session."
    );
    describe_histogram!(
        TICK_DURATION,
        Unit::Seconds,
        "Wall time of one host tick over every session."
    );
    describe_counter!(
        SESSION_TICKS,
        Unit::Count,
        "Running sessions stepped, summed over ticks (CPU per session-tick is rate(process_cpu_seconds_total) / rate(rampart_session_ticks_total))."
    );
    describe_counter!(
        "rampart_tick_overruns_total",
        Unit::Count,
        "Ticks that took longer than the overrun budget of the tick period."
    );
    describe_counter!(
        "rampart_ticks_lost_total",
        Unit::Count,
        "Whole ticks skipped because the host fell more than a period behind."
    );
    describe_counter!(
        "rampart_commands_total",
        Unit::Count,
        "Player commands, by result (accepted or the rejection reason)."
    );
    describe_counter!(
        "rampart_sessions_crashed_total",
        Unit::Count,
        "Sessions ended because their simulation panicked."
    );
    describe_counter!(
        "rampart_net_bytes_total",
        Unit::Bytes,
        "Wire bytes of game traffic (headers included), by direction (in, out) and transport (udp, ws)."
    );
    describe_counter!(
        "rampart_net_dropped_total",
        Unit::Count,
        "Game traffic dropped or refused, by reason (malformed, oversized, rate_limited, invalid_ticket, ...; see docs/PROTOCOL.md)."
    );
    describe_gauge!(
        "rampart_net_snapshot_wait_seconds",
        Unit::Seconds,
        "How long snapshots waited for the network thread after their tick, 99th percentile over its last second; over a snapshot period the instance refuses new sessions."
    );
    describe_gauge!(
        "rampart_clients_connected",
        Unit::Count,
        "Game clients connected, by transport (udp, ws)."
    );
    describe_gauge!(
        SPECTATORS,
        Unit::Count,
        "Spectators connected to any session (no seats; counted in rampart_clients_connected too)."
    );
    describe_counter!(
        SPECTATORS_REFUSED,
        Unit::Count,
        "Spectators turned away, by reason: forbidden (a private session without the admin token or an invite), full (the session's max_spectators), command (a command or chat line a spectator sent)."
    );
    describe_counter!(
        "rampart_agones_errors_total",
        Unit::Count,
        "Calls to the Agones SDK sidecar that failed, by call (Ready, Health, UpdateCounter, ...); only under Agones."
    );
    describe_counter!(
        HTTP_REQUESTS,
        Unit::Count,
        "HTTP API requests, by route template and status code."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP API request latency, by route template."
    );
}

/// The process-wide recorder for tests: it can be installed only once per
/// process, and every test that renders metrics shares it.
#[cfg(test)]
pub fn test_metrics() -> PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| install_metrics().expect("no other recorder in tests"))
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netcode_datagram_errors_stay_out_of_the_log_unless_asked_for() {
        for (directives, expected) in [
            (None, "info,renetcode=off"),
            (Some("debug"), "debug,renetcode=off"),
            (Some("info,renetcode=error"), "info,renetcode=error"),
        ] {
            let filter = log_filter(directives).to_string();
            for directive in expected.split(',') {
                assert!(
                    filter.split(',').any(|part| part == directive),
                    "{directives:?} gave {filter}"
                );
            }
        }
    }

    #[test]
    fn cpu_times_are_read_after_the_last_parenthesis_of_the_name() {
        // A command name may hold spaces and parentheses.
        let stat =
            "4242 (rampart (net) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 8 9 20 0 9 0";
        assert_eq!(
            parse_cpu_times(stat),
            Some(CpuTimes {
                user: 12.34,
                system: 5.67
            })
        );
        assert_eq!(parse_cpu_times("4242 (cut short) S 1 2 3"), None);
        assert_eq!(parse_cpu_times("no name at all"), None);
    }

    #[test]
    fn a_scrape_shows_the_processs_cpu_in_user_space_and_in_the_kernel() {
        let handle = test_metrics();
        record_process_cpu();
        let text = handle.render();
        for name in [
            "process_cpu_seconds_total",
            "process_cpu_user_seconds_total",
            "process_cpu_system_seconds_total",
        ] {
            let value = text
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
                .unwrap_or_else(|| panic!("{name} missing from\n{text}"));
            assert!(value.parse::<f64>().is_ok(), "{name} = {value}");
        }
    }

    #[test]
    fn alerting_series_exist_before_their_first_event() {
        // Other tests in this process may have counted some already: the
        // point is that each series is there, whatever its value.
        let text = test_metrics().render();
        for series in [
            "rampart_sessions_crashed_total ",
            "rampart_tick_overruns_total ",
            "rampart_persist_dropped_total{reason=\"queue_full\"} ",
            "rampart_persist_store_errors_total{store=\"redis\"} ",
            "rampart_sessions{state=\"running\"} ",
        ] {
            assert!(
                text.lines().any(|line| line.starts_with(series)),
                "{series} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn tick_durations_render_as_a_described_histogram() {
        let handle = test_metrics();
        metrics::histogram!(TICK_DURATION).record(0.003);
        let text = handle.render();
        assert!(
            text.contains("# HELP rampart_tick_duration_seconds Wall time of one host tick"),
            "{text}"
        );
        assert!(
            text.contains(r#"rampart_tick_duration_seconds_bucket{le="0.0001"}"#),
            "{text}"
        );
        assert!(
            text.contains(r#"rampart_tick_duration_seconds_bucket{le="0.005"}"#),
            "{text}"
        );
    }
}
