//! Reading a server from the outside: its tick histogram from `/metrics`
//! and a process's CPU time and memory from `/proc`, shared by the
//! capacity tools.

/// Cumulative counts per bucket bound of `rampart_tick_duration_seconds`.
pub fn tick_buckets(text: &str) -> Vec<(f64, f64)> {
    let prefix = "rampart_tick_duration_seconds_bucket{le=\"";
    text.lines()
        .filter_map(|line| line.strip_prefix(prefix))
        .filter_map(|rest| {
            let (bound, value) = rest.split_once("\"} ")?;
            Some((
                bound.parse().unwrap_or(f64::INFINITY),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Quantile `q` of the ticks between two scrapes, interpolated linearly
/// inside its bucket as Prometheus's `histogram_quantile` does.
pub fn quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let counts: Vec<(f64, f64)> = after
        .iter()
        .zip(before)
        .map(|(&(bound, late), &(_, early))| (bound, late - early))
        .collect();
    let total = counts.last().map_or(0.0, |&(_, count)| count);
    let wanted = total * q;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in &counts {
        if cumulative >= wanted {
            if !bound.is_finite() {
                return lower.0;
            }
            let share = if cumulative > lower.1 {
                (wanted - lower.1) / (cumulative - lower.1)
            } else {
                1.0
            };
            return lower.0 + (bound - lower.0) * share;
        }
        lower = (bound, cumulative);
    }
    f64::NAN
}

/// CPU seconds (user + system) process `pid` (or `"self"`) has used; 0
/// where there is no `/proc`.
pub fn cpu_seconds(pid: &str) -> f64 {
    rampart_server::telemetry::cpu_seconds(pid).unwrap_or(0.0)
}

/// Context switches (voluntary and not) every thread of process `pid` has
/// made so far; 0 where there is no `/proc`. Threads that exited take their
/// count with them.
pub fn context_switches(pid: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|line| line.contains("ctxt_switches:"))
                .filter_map(|line| line.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Resident memory (`VmRSS`) of process `pid` (or `"self"`), in KiB; `None`
/// where there is no `/proc`.
pub fn resident_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
}
