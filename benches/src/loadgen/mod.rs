//! The load generator: many real clients over real UDP and WebSocket
//! connections, joining through the HTTP API and playing whole sessions,
//! measured from both sides (the bots' own clocks and byte counts, the
//! server's `/metrics`), plus the generator's own CPU so a saturated
//! generator is not mistaken for a slow server.
//!
//! Bots are spread over a few worker threads, each pumping its bots in
//! turn (the client library is poll-driven), so thousands of clients need
//! no thread each. Joins are paced evenly over the profile's ramp.

mod bot;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rampart_net::client::{JoinResponse, Snapshots};
use rampart_tests::server::{request, retry_unavailable};
use serde::Serialize;
use serde_json::json;

pub use bot::{Bot, BotRecord, Ending, MapPlan};

use crate::scrape::{cpu_seconds, quantile, tick_buckets};

/// What a run does.
#[derive(Clone, Debug, Serialize)]
pub struct Profile {
    /// Name in the report.
    pub name: String,
    /// Sessions played at once.
    pub sessions: usize,
    /// Bots per session (the session starts when all have joined).
    pub players: u8,
    /// Joins are spread evenly over this long.
    pub ramp_seconds: u64,
    /// How long bots keep playing (a bot whose game ends joins the next
    /// one until then); games still running at the end get `grace_seconds`
    /// to finish.
    pub duration_seconds: u64,
    /// Play one game each and stop (the CI profile).
    pub single_game: bool,
    /// Time games still running at the end may take to finish.
    pub grace_seconds: u64,
    /// Share of bots on WebSocket (the rest on UDP).
    pub websocket_share: f64,
    /// How bots find their sessions and what they do there.
    pub seating: Seating,
    /// After the ramp, how long the sessions settle before the server is
    /// measured (from then to the end of play).
    pub warmup_seconds: u64,
    /// Bots read each snapshot's header only ([`Snapshots::HeadersOnly`]):
    /// they count and acknowledge every one as a rebuilding client would,
    /// so the server's work is the same, but rebuild no world and check no
    /// checksum, which lets one core drive about 40% more of them.
    pub headers_only: bool,
}

/// How bots find their sessions and what they do there.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Seating {
    /// Through matchmaking (`/v1/join`) on a map: bots play whole games
    /// (build beside the road, upgrade, call waves early), then join the
    /// next one.
    Matchmaking {
        /// Map every session plays.
        map: String,
    },
    /// The Colyseus peer's workload (`../shared/peers/colyseus-td`): the
    /// run creates its sessions on the `reference` map and scenario (50
    /// towers, about 100 enemies from the fourth minute, lives enough to
    /// never end), with the server's passive bots in the seats its clients
    /// do not take; each client joins one, then only watches: snapshots,
    /// acks, no commands, as the peer's clients do.
    Reference {
        /// Seats played by the server's bots, beside the clients.
        server_bots: u8,
    },
}

/// Seats of the reference scenario.
const REFERENCE_SEATS: u8 = 8;

impl Profile {
    /// A named profile from the product brief, or `None`.
    ///
    /// `endurance` lasts `hours`; the others ignore it.
    pub fn named(name: &str, hours: f64) -> Option<Self> {
        if name == "peer" {
            // Ramp, then four minutes for the endless waves to reach the
            // steady state, then a minute measured.
            return Some(Self {
                name: name.to_owned(),
                sessions: 100,
                players: 4,
                ramp_seconds: 20,
                duration_seconds: 20 + 240 + 60,
                single_game: false,
                grace_seconds: 0,
                websocket_share: 0.5,
                seating: Seating::Reference {
                    server_bots: REFERENCE_SEATS - 4,
                },
                warmup_seconds: 240,
                headers_only: false,
            });
        }
        let (sessions, ramp, duration, single_game) = match name {
            "ci" => (20, 5, 60, true),
            "baseline" => (100, 20, 120, false),
            "peak" => (300, 30, 180, false),
            "stress" => (600, 60, 180, false),
            "spike" => (300, 10, 120, false),
            "endurance" => (100, 20, (hours * 3600.0) as u64, false),
            _ => return None,
        };
        Some(Self {
            name: name.to_owned(),
            sessions,
            players: 4,
            ramp_seconds: ramp,
            duration_seconds: duration,
            single_game,
            grace_seconds: 90,
            websocket_share: 0.5,
            seating: Seating::Matchmaking {
                map: "skirmish".to_owned(),
            },
            warmup_seconds: 0,
            headers_only: false,
        })
    }

    /// Bots in the run at once.
    pub fn clients(&self) -> usize {
        self.sessions * usize::from(self.players)
    }

    /// What its bots do with snapshots.
    fn snapshots(&self) -> Snapshots {
        if self.headers_only {
            Snapshots::HeadersOnly
        } else {
            Snapshots::Rebuild
        }
    }
}

/// The server measured over the steady part of a run.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Window {
    /// How long.
    pub seconds: f64,
    /// CPU cores the server used.
    pub server_cpu_cores: f64,
    /// Server CPU per running session per tick, in microseconds (from
    /// `rampart_session_ticks_total`; absent from builds without it).
    pub server_cpu_us_per_session_tick: Option<f64>,
    /// Of it, the server's own code in user space; the rest is the kernel's
    /// work for it, which over loopback includes the receiving side of
    /// every packet it sends: the generator's share, run in the sender's
    /// system call (absent from builds that export no split). A kernel
    /// that charges time by its tick splits by sampling, so this wanders
    /// between runs more than the whole does (`docs/BENCHMARKS.md`).
    pub server_user_cpu_us_per_session_tick: Option<f64>,
    /// Ticks each of the run's sessions was stepped per second, on
    /// average (30 when the server keeps up; same source).
    pub session_tick_hz: Option<f64>,
    /// The server's tick durations over the window.
    pub tick_ms: TickQuantiles,
    /// Ticks that overran their period in the window.
    pub tick_overruns: f64,
    /// This generator's CPU per bot, in milliseconds per second of the
    /// window: what driving one more bot costs, with every bot playing
    /// (over the whole run, the ramp's fewer bots would flatter it).
    pub loadgen_cpu_ms_per_bot_second: f64,
}

impl Window {
    /// The server's figures from its metrics `before` and `after`, and
    /// this generator's from the CPU seconds it spent on `bots` in between.
    fn between(
        before: &str,
        after: &str,
        seconds: f64,
        sessions: usize,
        loadgen_cpu_seconds: f64,
        bots: usize,
    ) -> Self {
        let metric = |text: &str, name: &str| rampart_tests::server::metric(text, name);
        let growth =
            |name: &str| metric(after, name).unwrap_or(0.0) - metric(before, name).unwrap_or(0.0);
        let cpu = growth("process_cpu_seconds_total");
        let session_ticks = metric(after, SESSION_TICKS)
            .zip(metric(before, SESSION_TICKS))
            .map(|(after, before)| after - before)
            .filter(|&ticks| ticks > 0.0);
        let user_cpu = metric(after, USER_CPU)
            .zip(metric(before, USER_CPU))
            .map(|(after, before)| after - before);
        let per_session_tick = |cpu: f64, ticks: f64| (cpu / ticks * 1e7).round() / 10.0;
        Self {
            seconds: seconds.round(),
            server_cpu_cores: (cpu / seconds * 100.0).round() / 100.0,
            server_cpu_us_per_session_tick: session_ticks.map(|ticks| per_session_tick(cpu, ticks)),
            server_user_cpu_us_per_session_tick: session_ticks
                .zip(user_cpu)
                .map(|(ticks, user)| per_session_tick(user, ticks)),
            session_tick_hz: session_ticks
                .map(|ticks| (ticks / seconds / sessions.max(1) as f64 * 100.0).round() / 100.0),
            tick_ms: TickQuantiles::between(before, after),
            tick_overruns: growth("rampart_tick_overruns_total"),
            loadgen_cpu_ms_per_bot_second: (loadgen_cpu_seconds * 1e6
                / seconds
                / bots.max(1) as f64)
                .round()
                / 1e3,
        }
    }
}

/// The server's count of session-ticks.
const SESSION_TICKS: &str = "rampart_session_ticks_total";
/// The server's CPU seconds in user space.
const USER_CPU: &str = "process_cpu_user_seconds_total";

/// A figure in microseconds for the table, or `?` where the server did
/// not give it.
fn micros(us: Option<f64>) -> String {
    us.map_or("? µs".into(), |us| format!("{us:.1} µs"))
}

/// Quantiles of a sample, in milliseconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Quantiles {
    fn of(mut values: Vec<f32>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable_by(f32::total_cmp);
        let at = |q: f64| {
            let index = ((values.len() - 1) as f64 * q).round() as usize;
            (f64::from(values[index]) * 100.0).round() / 100.0
        };
        Self {
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
        }
    }
}

/// The server's tick quantiles.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct TickQuantiles {
    /// Median tick, ms.
    pub p50: f64,
    /// 99th percentile tick, ms.
    pub p99: f64,
}

impl TickQuantiles {
    /// The ticks between two scrapes of `/metrics`.
    fn between(before: &str, after: &str) -> Self {
        let (early, late) = (tick_buckets(before), tick_buckets(after));
        Self {
            p50: (quantile(&early, &late, 0.5) * 1e5).round() / 100.0,
            p99: (quantile(&early, &late, 0.99) * 1e5).round() / 100.0,
        }
    }
}

/// What a run found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// Profile name.
    pub profile: String,
    /// The bots read snapshot headers only: `desyncs` checked nothing.
    pub headers_only: bool,
    /// Sessions played at once.
    pub sessions: usize,
    /// Bots at once.
    pub clients: usize,
    /// Games started over the run.
    pub games: usize,
    /// Bots left in lobbies that never filled when the run stopped
    /// seating players (not counted as games or failures).
    pub unstarted_bots: usize,
    /// Bots that joined and got a welcome, of all join attempts.
    pub connect_success_pct: f64,
    /// Games whose every bot saw the game end, of the games started.
    pub sessions_completed_pct: f64,
    /// Snapshots that rebuilt a world differing from the server's.
    pub desyncs: u64,
    /// Bots whose connection ended without their game ending.
    pub unexpected_disconnects: usize,
    /// Command round trip (send to result).
    pub rtt_ms: Quantiles,
    /// Gaps between snapshots as received.
    pub snapshot_gap_ms: Quantiles,
    /// Snapshots a client received per second while connected, on average
    /// (20 when the server keeps its snapshot rate).
    pub snapshots_per_client_per_s: f64,
    /// 99th percentile of how far a gap strays from the simulated time
    /// between the two snapshots (20 Hz over 30 Hz ticks alternates 33 and
    /// 67 ms gaps by design; this is what the network and scheduling add).
    pub snapshot_jitter_ms: f64,
    /// Wire bytes (headers included) per connected client per second.
    pub bytes_down_per_client_per_s: f64,
    /// The same, upwards.
    pub bytes_up_per_client_per_s: f64,
    /// The server's tick durations over the run.
    pub server_tick_ms: TickQuantiles,
    /// CPU cores the server used on average.
    pub server_cpu_cores: f64,
    /// The server over the measured window (from the end of the ramp and
    /// the warm-up to the end of play), when the run has one.
    pub window: Option<Window>,
    /// CPU cores this generator used on average.
    pub loadgen_cpu_cores: f64,
    /// Wall time of the run.
    pub duration_s: f64,
    /// The commonest reasons bots failed, with counts.
    pub failures: BTreeMap<String, usize>,
}

impl Report {
    /// True when every bot connected, every game completed and nothing
    /// desynced: the bar the CI profile must clear. Never for a run whose
    /// bots read headers only: they could not have seen a desync.
    pub fn flawless(&self) -> bool {
        !self.headers_only
            && self.connect_success_pct >= 100.0
            && self.sessions_completed_pct >= 100.0
            && self.desyncs == 0
            && self.unexpected_disconnects == 0
    }

    /// A human table.
    pub fn table(&self) -> String {
        let rows = [
            ("profile", self.profile.clone()),
            (
                "sessions x bots",
                format!(
                    "{} x {}",
                    self.sessions,
                    self.clients / self.sessions.max(1)
                ),
            ),
            ("games played", self.games.to_string()),
            (
                "bots left in unfilled lobbies",
                self.unstarted_bots.to_string(),
            ),
            (
                "connect success",
                format!("{:.1} %", self.connect_success_pct),
            ),
            (
                "sessions completed",
                format!("{:.1} %", self.sessions_completed_pct),
            ),
            (
                "desyncs",
                if self.headers_only {
                    "not checked (headers only)".to_owned()
                } else {
                    self.desyncs.to_string()
                },
            ),
            (
                "unexpected disconnects",
                self.unexpected_disconnects.to_string(),
            ),
            (
                "command round trip p50/p95/p99",
                format!(
                    "{:.1} / {:.1} / {:.1} ms",
                    self.rtt_ms.p50, self.rtt_ms.p95, self.rtt_ms.p99
                ),
            ),
            (
                "snapshot gap p50/p99, jitter p99",
                format!(
                    "{:.1} / {:.1} ms, {:.1} ms",
                    self.snapshot_gap_ms.p50, self.snapshot_gap_ms.p99, self.snapshot_jitter_ms
                ),
            ),
            (
                "snapshots per client per s",
                format!("{:.2}", self.snapshots_per_client_per_s),
            ),
            (
                "bytes per client per s down/up",
                format!(
                    "{:.0} / {:.0}",
                    self.bytes_down_per_client_per_s, self.bytes_up_per_client_per_s
                ),
            ),
            (
                "server tick p50/p99",
                format!(
                    "{:.2} / {:.2} ms",
                    self.server_tick_ms.p50, self.server_tick_ms.p99
                ),
            ),
            ("server CPU", format!("{:.2} cores", self.server_cpu_cores)),
            (
                "measured window: server CPU",
                self.window.map_or("none".into(), |window| {
                    format!(
                        "{:.2} cores over {:.0} s, {} per session-tick ({} in user space)",
                        window.server_cpu_cores,
                        window.seconds,
                        micros(window.server_cpu_us_per_session_tick),
                        micros(window.server_user_cpu_us_per_session_tick),
                    )
                }),
            ),
            (
                "measured window: ticks",
                self.window.map_or("none".into(), |window| {
                    format!(
                        "{} per session, p50/p99 {:.2} / {:.2} ms, {} overruns",
                        window
                            .session_tick_hz
                            .map_or("? Hz".into(), |hz| format!("{hz:.2} Hz")),
                        window.tick_ms.p50,
                        window.tick_ms.p99,
                        window.tick_overruns
                    )
                }),
            ),
            (
                "loadgen CPU",
                format!("{:.2} cores", self.loadgen_cpu_cores),
            ),
            (
                "measured window: loadgen per bot",
                self.window.map_or("none".into(), |window| {
                    format!(
                        "{:.3} ms of CPU per bot-second",
                        window.loadgen_cpu_ms_per_bot_second
                    )
                }),
            ),
            ("duration", format!("{:.0} s", self.duration_s)),
        ];
        let mut out = String::new();
        for (name, value) in rows {
            out.push_str(&format!("{name:<34} {value}\n"));
        }
        for (reason, count) in &self.failures {
            out.push_str(&format!("failed: {count} x {reason}\n"));
        }
        out
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The content has no such map.
    #[error("map `{0}` is not in the content (or has no buildable cells)")]
    UnknownMap(String),
    /// The content directory does not load.
    #[error("content: {0}")]
    Content(String),
    /// The run could not create its sessions.
    #[error("creating the reference sessions: {0}")]
    Create(String),
    /// The server's metrics cannot be read.
    #[error("cannot reach {addr}: {error}")]
    Unreachable {
        /// The server.
        addr: SocketAddr,
        /// What failed.
        error: std::io::Error,
    },
}

/// How long a bot keeps retrying a join the server answers 503.
const JOIN_PATIENCE: Duration = Duration::from_secs(30);

/// Joins one bot through `POST /v1/join`, as a game client should: a 503
/// (ticks running late, a session between owners) is retried after its
/// `Retry-After`, for up to [`JOIN_PATIENCE`].
fn join(shared: &Shared, index: usize) -> Result<JoinResponse, String> {
    let name = format!("bot-{index}");
    let (path, body) = match &shared.profile.seating {
        Seating::Matchmaking { map } => (
            "/v1/join".to_owned(),
            json!({"name": name, "map": map, "max_players": shared.profile.players}),
        ),
        Seating::Reference { .. } => {
            let session = &shared.sessions[index / usize::from(shared.profile.players)];
            (
                format!("/v1/sessions/{session}/join"),
                json!({"name": name}),
            )
        }
    };
    let body = body.to_string();
    let (reply, _) = retry_unavailable(JOIN_PATIENCE, || {
        request(shared.server, "POST", &path, Some(&body), None)
    })
    .map_err(|error| format!("join: {error}"))?;
    if reply.status != 200 {
        return Err(format!("join answered {}", reply.status));
    }
    serde_json::from_str(&reply.body).map_err(|error| format!("join answer: {error}"))
}

/// Whether bot `index` uses WebSocket, spreading the share evenly.
fn websocket(profile: &Profile, index: usize) -> bool {
    let share = profile.websocket_share.clamp(0.0, 1.0);
    ((index + 1) as f64 * share).floor() > (index as f64 * share).floor()
}

/// What a worker thread is told.
enum Work {
    Bot(Box<Bot>),
}

/// A request to seat a bot that finished its game in a new one, handed to
/// the joiners so a worker never waits on HTTP (a join waits for the
/// server's next tick) while its other bots need pumping.
struct Rejoin {
    worker: usize,
    websocket: bool,
    index: usize,
}

/// Threads seating rejoining bots; joins wait on the server's tick, so a
/// few run at once.
const JOINERS: usize = 8;

struct Shared {
    server: SocketAddr,
    profile: Profile,
    /// Where bots build; none when they only watch.
    plan: Option<MapPlan>,
    /// The sessions the run created (reference seating), by id.
    sessions: Vec<String>,
    /// Bots whose game ended may join another.
    rejoining: AtomicBool,
    /// Everything still running is abandoned.
    stop: AtomicBool,
    /// Every initial bot has been handed to a worker.
    ramp_done: AtomicBool,
    /// Rejoins asked for and not yet delivered or given up.
    rejoins_in_flight: AtomicUsize,
}

/// How often a worker steps every bot whatever its socket says: the
/// clients' clocks (handshake, resends, idle flushes, all on 100 ms or
/// longer periods) and the bots' moves (every 1.5 to 2 s). In between, a
/// bot is stepped only when its socket has something to read, so the
/// generator's cost follows packets rather than bots times passes (it
/// polled every bot every millisecond, and used more CPU than the server
/// it loaded). At 20 ms the sweeps were still two of every three steps,
/// each a walk over cold bots with nothing to do: a clock may run up to
/// this much late, which none of those periods notices.
const SWEEP: Duration = Duration::from_millis(50);

/// One worker: pumps its bots until told to stop, or until none is left
/// and none can come.
fn work(
    shared: Arc<Shared>,
    worker: usize,
    inbox: mpsc::Receiver<Work>,
    rejoins: mpsc::Sender<Rejoin>,
) -> Vec<BotRecord> {
    let mut poll = mio::Poll::new().expect("an epoll instance for the worker's sockets");
    let mut events = mio::Events::with_capacity(1024);
    // Bots by poll token.
    let mut bots: HashMap<usize, Bot> = HashMap::new();
    let mut next_token = 0;
    let mut due: Vec<usize> = Vec::new();
    let mut next_sweep = Instant::now();
    let mut records = Vec::new();
    let mut next_index = worker;
    loop {
        while let Ok(Work::Bot(bot)) = inbox.try_recv() {
            watch(poll.registry(), &bot, next_token);
            bots.insert(next_token, *bot);
            next_token += 1;
        }
        let now = Instant::now();
        if now >= next_sweep {
            next_sweep = now + SWEEP;
            due.extend(bots.keys().copied());
        } else {
            match poll.poll(&mut events, Some(next_sweep - now)) {
                Ok(()) => due.extend(events.iter().map(|event| event.token().0)),
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => panic!("waiting on the bots' sockets: {error}"),
            }
        }
        let stop = shared.stop.load(Ordering::Relaxed);
        for token in due.drain(..) {
            let Some(bot) = bots.get_mut(&token) else {
                continue;
            };
            if stop && shared.plan.is_none() {
                bot.stop_watching();
            } else if stop {
                bot.abandon();
            } else {
                bot.step(shared.plan.as_ref());
            }
            if bot.ending() == Ending::Playing {
                continue;
            }
            let Some(ended) = bots.remove(&token) else {
                continue;
            };
            unwatch(poll.registry(), &ended);
            let completed = ended.ending() == Ending::Completed;
            let was_websocket = ended.websocket();
            records.push(ended.into_record());
            if completed && !stop && shared.rejoining.load(Ordering::Relaxed) {
                next_index += 1 << 20;
                shared.rejoins_in_flight.fetch_add(1, Ordering::SeqCst);
                let _ = rejoins.send(Rejoin {
                    worker,
                    websocket: was_websocket,
                    index: next_index,
                });
            }
        }
        // No bot can come any more: the ramp is over, nobody rejoins and no
        // rejoin is on its way. The inbox is read once more after that
        // check, so a bot delivered meanwhile is still played.
        let nothing_coming = shared.ramp_done.load(Ordering::SeqCst)
            && !shared.rejoining.load(Ordering::SeqCst)
            && shared.rejoins_in_flight.load(Ordering::SeqCst) == 0;
        if bots.is_empty() && (stop || nothing_coming) {
            while let Ok(Work::Bot(bot)) = inbox.try_recv() {
                watch(poll.registry(), &bot, next_token);
                bots.insert(next_token, *bot);
                next_token += 1;
            }
            if bots.is_empty() {
                return records;
            }
        }
    }
}

/// Wakes the worker when the bot's socket has something to read. A bot
/// whose socket cannot be watched is still stepped at every sweep.
fn watch(registry: &mio::Registry, bot: &Bot, token: usize) {
    if let Some(fd) = bot.socket_fd() {
        let source = &mut mio::unix::SourceFd(&fd);
        let _ = registry.register(source, mio::Token(token), mio::Interest::READABLE);
    }
}

fn unwatch(registry: &mio::Registry, bot: &Bot) {
    if let Some(fd) = bot.socket_fd() {
        let _ = registry.deregister(&mut mio::unix::SourceFd(&fd));
    }
}

/// Runs `profile` against the server at `server`, whose process id (for
/// nothing but sanity) need not be known: its CPU comes from `/metrics`.
/// `admin_token` creates the sessions of the reference seating.
///
/// # Errors
/// Unknown map or content, an unreachable server, or sessions it could
/// not create.
pub fn run(
    profile: &Profile,
    server: SocketAddr,
    assets: &Path,
    threads: usize,
    admin_token: Option<&str>,
) -> Result<Report, LoadError> {
    let content = rampart_sim::content::load_dir(assets)
        .map_err(|error| LoadError::Content(error.to_string()))?;
    let (plan, sessions) = match &profile.seating {
        Seating::Matchmaking { map } => {
            let plan =
                MapPlan::new(&content, map).ok_or_else(|| LoadError::UnknownMap(map.clone()))?;
            (Some(plan), Vec::new())
        }
        Seating::Reference { server_bots } => (
            None,
            create_reference_sessions(server, profile.sessions, *server_bots, admin_token)?,
        ),
    };
    let scrape = || {
        request(server, "GET", "/metrics", None, None)
            .map(|reply| reply.body)
            .map_err(|error| LoadError::Unreachable {
                addr: server,
                error,
            })
    };
    let before = scrape()?;
    let own_cpu_before = cpu_seconds("self");
    let started = Instant::now();
    let shared = Arc::new(Shared {
        server,
        profile: profile.clone(),
        plan,
        sessions,
        rejoining: AtomicBool::new(!profile.single_game && games_end(profile)),
        stop: AtomicBool::new(false),
        ramp_done: AtomicBool::new(false),
        rejoins_in_flight: AtomicUsize::new(0),
    });
    let threads = threads.max(1);
    let mut inboxes = Vec::with_capacity(threads);
    let mut workers = Vec::with_capacity(threads);
    let (rejoin, rejoin_queue) = mpsc::channel::<Rejoin>();
    let rejoin_queue = Arc::new(std::sync::Mutex::new(rejoin_queue));
    for worker in 0..threads {
        let (sender, inbox) = mpsc::channel();
        inboxes.push(sender);
        let shared = shared.clone();
        let rejoin = rejoin.clone();
        workers.push(std::thread::spawn(move || {
            work(shared, worker, inbox, rejoin)
        }));
    }
    drop(rejoin);
    let joiners: Vec<_> = (0..JOINERS)
        .map(|_| {
            let queue = rejoin_queue.clone();
            let shared = shared.clone();
            let inboxes = inboxes.clone();
            std::thread::spawn(move || {
                let mut failed = 0;
                loop {
                    let next = queue.lock().map(|queue| queue.recv());
                    let Ok(Ok(request)) = next else {
                        return failed;
                    };
                    let bot = join(&shared, request.index).and_then(|join| {
                        Bot::connect(&join, request.websocket, shared.profile.snapshots())
                            .map_err(|error| error.to_string())
                    });
                    match bot {
                        Ok(bot) => {
                            let _ = inboxes[request.worker].send(Work::Bot(Box::new(bot)));
                        }
                        Err(_) => failed += 1,
                    }
                    shared.rejoins_in_flight.fetch_sub(1, Ordering::SeqCst);
                }
            })
        })
        .collect();

    // Joins, paced evenly over the ramp.
    let clients = profile.clients();
    let ramp = Duration::from_secs(profile.ramp_seconds);
    let mut failed_joins = 0;
    for index in 0..clients {
        let due = started + ramp.mul_f64(index as f64 / clients as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let bot = join(&shared, index).and_then(|join| {
            Bot::connect(&join, websocket(profile, index), profile.snapshots())
                .map_err(|error| error.to_string())
        });
        match bot {
            Ok(bot) => {
                let _ = inboxes[index % threads].send(Work::Bot(Box::new(bot)));
            }
            Err(error) => {
                failed_joins += 1;
                eprintln!("bot {index}: {error}");
            }
        }
    }
    drop(inboxes);
    shared.ramp_done.store(true, Ordering::SeqCst);

    // Play until the end (measuring the server from the end of the
    // warm-up), then let running games finish.
    let end = started + Duration::from_secs(profile.duration_seconds.max(profile.ramp_seconds));
    let grace_end = end + Duration::from_secs(profile.grace_seconds);
    let mut window = None;
    if !profile.single_game {
        let settled = Instant::now() + Duration::from_secs(profile.warmup_seconds);
        if settled < end {
            std::thread::sleep(settled - Instant::now());
            let opened = (scrape()?, Instant::now(), cpu_seconds("self"));
            if let Some(wait) = end.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let seconds = opened.1.elapsed().as_secs_f64();
            let loadgen_cpu_seconds = cpu_seconds("self") - opened.2;
            window = Some(Window::between(
                &opened.0,
                &scrape()?,
                seconds,
                profile.sessions,
                loadgen_cpu_seconds,
                profile.sessions * usize::from(profile.players),
            ));
        } else if let Some(wait) = end.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        shared.rejoining.store(false, Ordering::Relaxed);
    }
    while Instant::now() < grace_end && workers.iter().any(|worker| !worker.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut records = Vec::new();
    for worker in workers {
        if let Ok(mut more) = worker.join() {
            records.append(&mut more);
        }
    }
    // The workers are gone, so the rejoin queue is closed and drains.
    for joiner in joiners {
        failed_joins += joiner.join().unwrap_or(0);
    }
    let seconds = started.elapsed().as_secs_f64();
    let own_cpu = (cpu_seconds("self") - own_cpu_before) / seconds;
    let after = scrape()?;
    let mut report = summarise(
        profile,
        &records,
        failed_joins,
        (&before, &after),
        own_cpu,
        seconds,
    );
    report.window = window;
    Ok(report)
}

/// Whether a bot whose game ended joins another: only where games end.
fn games_end(profile: &Profile) -> bool {
    matches!(profile.seating, Seating::Matchmaking { .. })
}

/// Creates `count` reference sessions, `server_bots` of whose seats the
/// server's bots take; returns their ids. Creations the server refuses
/// while its ticks run late (503) are retried after its `Retry-After`.
fn create_reference_sessions(
    server: SocketAddr,
    count: usize,
    server_bots: u8,
    admin_token: Option<&str>,
) -> Result<Vec<String>, LoadError> {
    let token = admin_token.ok_or_else(|| {
        LoadError::Create("the reference seating creates sessions: give the admin token".into())
    })?;
    let body = json!({
        "map": "reference",
        "scenario": "reference",
        "max_players": REFERENCE_SEATS,
        "bots": server_bots,
    })
    .to_string();
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let (reply, _) = retry_unavailable(JOIN_PATIENCE, || {
            request(server, "POST", "/v1/sessions", Some(&body), Some(token))
        })
        .map_err(|error| LoadError::Create(error.to_string()))?;
        if reply.status != 201 {
            return Err(LoadError::Create(format!(
                "answered {}: {}",
                reply.status, reply.body
            )));
        }
        let created: serde_json::Value = serde_json::from_str(&reply.body)
            .map_err(|error| LoadError::Create(format!("answer: {error}")))?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| LoadError::Create(format!("no id in {}", reply.body)))?;
        ids.push(id.to_owned());
    }
    Ok(ids)
}

fn summarise(
    profile: &Profile,
    records: &[BotRecord],
    failed_joins: usize,
    (before, after): (&str, &str),
    loadgen_cpu_cores: f64,
    seconds: f64,
) -> Report {
    let attempts = records.len() + failed_joins;
    let welcomed = records.iter().filter(|record| record.welcomed).count();
    let unstarted = records.iter().filter(|record| record.unstarted).count();
    let mut games: BTreeMap<&str, bool> = BTreeMap::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    for record in records.iter().filter(|record| !record.unstarted) {
        let complete = games.entry(&record.session).or_insert(true);
        if let Some(failure) = &record.failure {
            *complete = false;
            *failures.entry(failure.clone()).or_default() += 1;
        }
    }
    let completed = games.values().filter(|&&complete| complete).count();
    let connected: f64 = records.iter().map(|record| record.connected_seconds).sum();
    let (down, up) = records.iter().fold((0, 0), |(down, up), record| {
        (down + record.bytes.0, up + record.bytes.1)
    });
    let gaps: Vec<f32> = records
        .iter()
        .flat_map(|record| record.snapshot_gaps_ms.iter().copied())
        .collect();
    let snapshots_per_client_per_s =
        (gaps.len() as f64 / connected.max(1e-9) * 100.0).round() / 100.0;
    let gap = Quantiles::of(gaps);
    let jitter = Quantiles::of(
        records
            .iter()
            .flat_map(|record| record.snapshot_jitter_ms.iter().copied())
            .collect(),
    );
    let rtts = records
        .iter()
        .flat_map(|record| record.round_trips_ms.iter().copied())
        .collect();
    let cpu = |text: &str| {
        rampart_tests::server::metric(text, "process_cpu_seconds_total").unwrap_or(0.0)
    };
    let pct = |part: usize, whole: usize| {
        if whole == 0 {
            0.0
        } else {
            (part as f64 * 1000.0 / whole as f64).round() / 10.0
        }
    };
    Report {
        profile: profile.name.clone(),
        headers_only: profile.headers_only,
        sessions: profile.sessions,
        clients: profile.clients(),
        games: games.len(),
        unstarted_bots: unstarted,
        connect_success_pct: pct(welcomed, attempts),
        sessions_completed_pct: pct(completed, games.len()),
        desyncs: records.iter().map(|record| record.desyncs).sum(),
        unexpected_disconnects: records
            .iter()
            .filter(|record| record.failure.is_some())
            .count(),
        rtt_ms: Quantiles::of(rtts),
        snapshot_gap_ms: gap,
        snapshots_per_client_per_s,
        snapshot_jitter_ms: jitter.p99,
        bytes_down_per_client_per_s: (down as f64 / connected.max(1e-9)).round(),
        bytes_up_per_client_per_s: (up as f64 / connected.max(1e-9)).round(),
        server_tick_ms: TickQuantiles::between(before, after),
        server_cpu_cores: ((cpu(after) - cpu(before)) / seconds * 100.0).round() / 100.0,
        window: None,
        loadgen_cpu_cores: (loadgen_cpu_cores * 100.0).round() / 100.0,
        duration_s: seconds.round(),
        failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A perfect run counts as flawless only when its bots could have
    /// seen a desync.
    #[test]
    fn a_run_reading_headers_only_is_never_flawless() {
        let perfect = Report {
            connect_success_pct: 100.0,
            sessions_completed_pct: 100.0,
            ..Report::default()
        };
        assert!(perfect.flawless());
        let headers_only = Report {
            headers_only: true,
            ..perfect
        };
        assert!(!headers_only.flawless());
    }

    /// The window splits the server's CPU per session-tick into its own
    /// code's part and the whole, and leaves the part out for a server
    /// that does not export it.
    #[test]
    fn a_window_gives_the_servers_user_space_share_per_session_tick() {
        let scrape = |cpu: f64, user: f64, ticks: f64| {
            format!(
                "process_cpu_seconds_total {cpu}\nprocess_cpu_user_seconds_total {user}\n\
                 rampart_session_ticks_total {ticks}\n"
            )
        };
        // 30,000 session-ticks in 10 s, for 3 s of CPU of which 1.2 s user.
        let window = Window::between(
            &scrape(5.0, 2.0, 1_000.0),
            &scrape(8.0, 3.2, 31_000.0),
            10.0,
            100,
            0.0,
            400,
        );
        assert_eq!(window.server_cpu_us_per_session_tick, Some(100.0));
        assert_eq!(window.server_user_cpu_us_per_session_tick, Some(40.0));
        assert_eq!(window.session_tick_hz, Some(30.0));
        let older = |cpu: f64, ticks: f64| {
            format!("process_cpu_seconds_total {cpu}\nrampart_session_ticks_total {ticks}\n")
        };
        let window = Window::between(
            &older(5.0, 1_000.0),
            &older(8.0, 31_000.0),
            10.0,
            100,
            0.0,
            400,
        );
        assert_eq!(window.server_cpu_us_per_session_tick, Some(100.0));
        assert_eq!(window.server_user_cpu_us_per_session_tick, None);
    }
}
