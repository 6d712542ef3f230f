//! The server's configuration: defaults that run on a laptop, overridden by
//! `rampart.toml`, then by `RAMPART_*` environment variables, then by flags.
//!
//! Every source goes through the same per-key parser, so a bad value reads the
//! same wherever it came from and always names the key and the source.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::host::HostConfig;

/// The file read when neither `--config` nor `RAMPART_CONFIG` names one; it is
/// optional, so a bare checkout runs on defaults.
pub const DEFAULT_CONFIG_PATH: &str = "rampart.toml";

/// Ended sessions the host keeps listing, so clients can read results after
/// the end; not a configuration key because nobody has needed to tune it.
const ENDED_KEPT: usize = 1000;

/// The environment variable that names the configuration file.
pub const CONFIG_ENV: &str = "RAMPART_CONFIG";

/// Set by Agones in a game server's containers: the SDK sidecar's REST
/// port. Its presence turns the Agones integration on.
pub const AGONES_PORT_ENV: &str = "AGONES_SDK_HTTP_PORT";

/// The SDK sidecar's REST port when Agones does not say (its default).
const AGONES_DEFAULT_SDK_PORT: u16 = 9358;

/// The port the Agones SDK sidecar binds for its own health checks, in the
/// same network namespace as the game server.
const AGONES_SIDECAR_HTTP_PORT: u16 = 8080;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    #[default]
    Text,
    /// One JSON object per line, for log collectors in pods.
    Json,
}

/// The server's settings after every source has been applied.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Where the HTTP API (health, readiness, metrics, sessions) listens.
    /// Default `127.0.0.1:8080`; use `0.0.0.0:8080` in a container.
    pub http_addr: SocketAddr,
    /// Bearer token for the mutating endpoints. Unset (the default) disables
    /// them rather than leaving them open.
    pub admin_token: Option<String>,
    /// Open (lobby or running) sessions this instance accepts; beyond it,
    /// creation answers 503 and `/ready` turns false. Default 1000.
    pub max_sessions: usize,
    /// Simulation ticks per second, 1 to 60. Default 30.
    pub tick_hz: u32,
    /// Seconds a SIGTERM drain may take before the process exits anyway.
    /// Default 30, matching Kubernetes' default grace period.
    pub drain_seconds: u64,
    /// The content directory. Default `assets`.
    pub assets: PathBuf,
    /// Where the embedded SQLite database lives. Default `data`.
    pub data_dir: PathBuf,
    /// `text` (default) or `json`.
    pub log_format: LogFormat,
    /// Seconds a session may have no connected player before it is ended.
    /// Default 300.
    pub idle_timeout_seconds: u64,
    /// Sustained `/v1/*` requests per second allowed per client IP. Default 20.
    pub rate_limit_per_second: u32,
    /// Requests a client IP may send at once before the rate applies. Default 40.
    pub rate_limit_burst: u32,
    /// A tick that takes longer than this share of the tick period counts as
    /// late (an overrun). Default 80.
    pub overrun_budget_pct: u8,
    /// First UDP socket for game clients (renet over netcode). Extra sockets
    /// (`udp_sockets`) take the following ports. Default `127.0.0.1:5000`.
    pub udp_addr: SocketAddr,
    /// UDP sockets, 1 to 64; each serves up to 1,024 clients. Default 4,
    /// enough for `max_sessions` sessions of four players.
    pub udp_sockets: usize,
    /// Where browsers connect over WebSocket (`/ws?ticket=...`). Default
    /// `127.0.0.1:5080`.
    pub ws_addr: SocketAddr,
    /// The IP clients reach this instance at, written into connect tokens and
    /// WebSocket URLs. Unset: the bound IP (127.0.0.1 if bound to 0.0.0.0).
    pub public_ip: Option<IpAddr>,
    /// What clients must dial for each UDP socket, in order, when it is not
    /// the bound address (NAT, hostPort, a load balancer per pod): written
    /// into connect tokens, and checked by the netcode handshake. Empty
    /// (the default): the bound addresses with `public_ip`, or the Agones
    /// GameServer's ports.
    pub public_udp_addrs: Vec<SocketAddr>,
    /// Where clients open WebSockets, without the `/ws` path: `ws://` or
    /// `wss://` behind a TLS terminator, with any path prefix a proxy routes
    /// on. Unset: `ws://` and the bound address (or the GameServer's).
    pub public_ws_url: Option<String>,
    /// This instance's HTTP API as clients reach it, named in the 307s that
    /// send players to the instance running their session. Unset: `http://`
    /// and the bound address (or the GameServer's).
    pub public_http_url: Option<String>,
    /// Run as an Agones game server: talk to the SDK sidecar (Ready, Health,
    /// counters, labels, Shutdown) and take the advertised addresses from the
    /// GameServer. Also on when `AGONES_SDK_HTTP_PORT` is set. Default off.
    pub agones: bool,
    /// The SDK sidecar's REST port on localhost, from `AGONES_SDK_HTTP_PORT`
    /// (default 9358); not a key of its own, since Agones sets it.
    pub agones_sdk_port: u16,
    /// The 32-byte key (standard base64) that encrypts connect tokens and signs
    /// tickets; every instance of a fleet needs the same one. Unset: a random
    /// development key, announced as such at startup.
    pub net_key: Option<String>,
    /// Snapshots per second to each client, 1 to 60 (at most the tick rate is
    /// used). Default 20.
    pub snapshot_hz: u32,
    /// Seconds a dropped player's seat stays theirs. Default 60.
    pub reconnect_grace_seconds: u64,
    /// Commands per second a client may send, sustained. Default 10.
    pub command_rate_per_second: u32,
    /// Commands a client may send at once. Default 20.
    pub command_burst: u32,
    /// HS256 secret for players' bearer JWTs on `POST /v1/join`. With neither
    /// this nor `auth_jwt_public_key`, joining is anonymous (development).
    pub auth_jwt_secret: Option<String>,
    /// PEM file with the RS256 or EdDSA public key for players' JWTs.
    pub auth_jwt_public_key: Option<PathBuf>,
    /// Required `iss` of players' JWTs, when set.
    pub auth_issuer: Option<String>,
    /// Required `aud` of players' JWTs, when set.
    pub auth_audience: Option<String>,
    /// The durable store: `postgres://...` or `sqlite://PATH`. Unset: SQLite
    /// at `<data_dir>/rampart.db` (the embedded default).
    pub database_url: Option<String>,
    /// The hot store and ownership leases, `redis://...`. Unset: hot state
    /// goes to the database at the snapshot interval and sessions have no
    /// leases (one instance per database).
    pub redis_url: Option<String>,
    /// Put before every Redis key this deployment writes, so several
    /// deployments (staging beside production, a test run) can share one
    /// Redis. Default empty.
    pub redis_prefix: String,
    /// This instance's name as a session owner. Unset: the host name plus a
    /// random suffix, so a restarted pod is a new owner.
    pub instance_id: Option<String>,
    /// Milliseconds between two saves of a running session (to Redis, or to
    /// the database without Redis); at most this much play is lost when an
    /// instance dies. Default 1000.
    pub snapshot_interval_ms: u64,
    /// Seconds between two database checkpoints of a session while Redis
    /// holds its hot state. Default 10.
    pub checkpoint_seconds: u64,
    /// Milliseconds a session's lease lasts without renewal: how soon
    /// another instance adopts the sessions of a dead one. Default 6000.
    pub lease_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: None,
            max_sessions: 1000,
            tick_hz: 30,
            drain_seconds: 30,
            assets: PathBuf::from("assets"),
            data_dir: PathBuf::from("data"),
            log_format: LogFormat::Text,
            idle_timeout_seconds: 300,
            rate_limit_per_second: 20,
            rate_limit_burst: 40,
            overrun_budget_pct: 80,
            udp_addr: SocketAddr::from(([127, 0, 0, 1], 5000)),
            udp_sockets: 4,
            ws_addr: SocketAddr::from(([127, 0, 0, 1], 5080)),
            public_ip: None,
            public_udp_addrs: Vec::new(),
            public_ws_url: None,
            public_http_url: None,
            agones: false,
            agones_sdk_port: AGONES_DEFAULT_SDK_PORT,
            net_key: None,
            snapshot_hz: 20,
            reconnect_grace_seconds: 60,
            command_rate_per_second: 10,
            command_burst: 20,
            auth_jwt_secret: None,
            auth_jwt_public_key: None,
            auth_issuer: None,
            auth_audience: None,
            database_url: None,
            redis_url: None,
            redis_prefix: String::new(),
            instance_id: None,
            snapshot_interval_ms: 1000,
            checkpoint_seconds: 10,
            lease_ms: 6000,
        }
    }
}

/// Flags of `rampart serve`; each one overrides the file and the environment.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// Configuration file [env: RAMPART_CONFIG] [default: ./rampart.toml if it exists].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Address of the HTTP API [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<String>,
    /// Bearer token for the mutating endpoints; prefer RAMPART_ADMIN_TOKEN, as
    /// flags show in `ps`.
    #[arg(long, value_name = "TOKEN")]
    pub admin_token: Option<String>,
    /// Open sessions this instance accepts [default: 1000].
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<String>,
    /// Simulation ticks per second, 1 to 60 [default: 30].
    #[arg(long, value_name = "HZ")]
    pub tick_hz: Option<String>,
    /// Seconds a SIGTERM drain may take [default: 30].
    #[arg(long, value_name = "SECONDS")]
    pub drain_seconds: Option<String>,
    /// Content directory [default: assets].
    #[arg(long, value_name = "DIR")]
    pub assets: Option<String>,
    /// Directory of the embedded SQLite database [default: data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<String>,
    /// `text` or `json` [default: text].
    #[arg(long, value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Seconds without a connected player before a session ends [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub idle_timeout_seconds: Option<String>,
    /// Sustained API requests per second per client IP [default: 20].
    #[arg(long, value_name = "N")]
    pub rate_limit_per_second: Option<String>,
    /// API requests a client IP may send at once [default: 40].
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<String>,
    /// Share of the tick period after which a tick counts as late [default: 80].
    #[arg(long, value_name = "PCT")]
    pub overrun_budget_pct: Option<String>,
    /// First UDP game socket; extra sockets take the next ports [default: 127.0.0.1:5000].
    #[arg(long, value_name = "VALUE")]
    pub udp_addr: Option<String>,
    /// UDP sockets, each up to 1,024 clients [default: 4].
    #[arg(long, value_name = "N")]
    pub udp_sockets: Option<String>,
    /// WebSocket listener for browsers [default: 127.0.0.1:5080].
    #[arg(long, value_name = "VALUE")]
    pub ws_addr: Option<String>,
    /// IP written into connect tokens and WebSocket URLs [default: the bound IP].
    #[arg(long, value_name = "VALUE")]
    pub public_ip: Option<String>,
    /// UDP addresses clients dial, one per socket, comma separated [default: the bound ones].
    #[arg(long, value_name = "ADDRS")]
    pub public_udp_addrs: Option<String>,
    /// WebSocket base URL clients open, ws:// or wss:// [default: ws:// and the bound address].
    #[arg(long, value_name = "URL")]
    pub public_ws_url: Option<String>,
    /// HTTP base URL of this instance for redirects [default: http:// and the bound address].
    #[arg(long, value_name = "URL")]
    pub public_http_url: Option<String>,
    /// Run as an Agones game server (`true` or `false`) [default: true when AGONES_SDK_HTTP_PORT is set].
    #[arg(long, value_name = "BOOL")]
    pub agones: Option<String>,
    /// Connect-token and ticket key, 32 bytes base64; prefer RAMPART_NET_KEY.
    #[arg(long, value_name = "VALUE")]
    pub net_key: Option<String>,
    /// Snapshots per second to each client, 1 to 60 [default: 20].
    #[arg(long, value_name = "N")]
    pub snapshot_hz: Option<String>,
    /// Seconds a dropped player's seat stays theirs [default: 60].
    #[arg(long, value_name = "N")]
    pub reconnect_grace_seconds: Option<String>,
    /// Commands per second a client may send [default: 10].
    #[arg(long, value_name = "N")]
    pub command_rate_per_second: Option<String>,
    /// Commands a client may send at once [default: 20].
    #[arg(long, value_name = "N")]
    pub command_burst: Option<String>,
    /// HS256 secret for players' JWTs; prefer RAMPART_AUTH_JWT_SECRET.
    #[arg(long, value_name = "VALUE")]
    pub auth_jwt_secret: Option<String>,
    /// PEM public key (RS256 or EdDSA) for players' JWTs.
    #[arg(long, value_name = "VALUE")]
    pub auth_jwt_public_key: Option<String>,
    /// Required `iss` claim of players' JWTs.
    #[arg(long, value_name = "VALUE")]
    pub auth_issuer: Option<String>,
    /// Required `aud` claim of players' JWTs.
    #[arg(long, value_name = "VALUE")]
    pub auth_audience: Option<String>,
    /// Durable store, postgres://... or sqlite://PATH [env: DATABASE_URL] [default: sqlite in data_dir].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Hot store and leases, redis://... [env: REDIS_URL] [default: none].
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// Put before every Redis key, to share one Redis between deployments [default: none].
    #[arg(long, value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// This instance's owner name [default: host name plus a random suffix].
    #[arg(long, value_name = "NAME")]
    pub instance_id: Option<String>,
    /// Milliseconds between saves of a running session [default: 1000].
    #[arg(long, value_name = "MS")]
    pub snapshot_interval_ms: Option<String>,
    /// Seconds between database checkpoints when Redis is used [default: 10].
    #[arg(long, value_name = "SECONDS")]
    pub checkpoint_seconds: Option<String>,
    /// Milliseconds a session lease lasts unrenewed [default: 6000].
    #[arg(long, value_name = "MS")]
    pub lease_ms: Option<String>,
}

impl ServeArgs {
    /// The flags that were given, as (key, value) pairs.
    fn values(&self) -> impl Iterator<Item = (Key, &str)> {
        [
            (Key::HttpAddr, &self.http_addr),
            (Key::AdminToken, &self.admin_token),
            (Key::MaxSessions, &self.max_sessions),
            (Key::TickHz, &self.tick_hz),
            (Key::DrainSeconds, &self.drain_seconds),
            (Key::Assets, &self.assets),
            (Key::DataDir, &self.data_dir),
            (Key::LogFormat, &self.log_format),
            (Key::IdleTimeoutSeconds, &self.idle_timeout_seconds),
            (Key::RateLimitPerSecond, &self.rate_limit_per_second),
            (Key::RateLimitBurst, &self.rate_limit_burst),
            (Key::OverrunBudgetPct, &self.overrun_budget_pct),
            (Key::UdpAddr, &self.udp_addr),
            (Key::UdpSockets, &self.udp_sockets),
            (Key::WsAddr, &self.ws_addr),
            (Key::PublicIp, &self.public_ip),
            (Key::PublicUdpAddrs, &self.public_udp_addrs),
            (Key::PublicWsUrl, &self.public_ws_url),
            (Key::PublicHttpUrl, &self.public_http_url),
            (Key::Agones, &self.agones),
            (Key::NetKey, &self.net_key),
            (Key::SnapshotHz, &self.snapshot_hz),
            (Key::ReconnectGraceSeconds, &self.reconnect_grace_seconds),
            (Key::CommandRatePerSecond, &self.command_rate_per_second),
            (Key::CommandBurst, &self.command_burst),
            (Key::AuthJwtSecret, &self.auth_jwt_secret),
            (Key::AuthJwtPublicKey, &self.auth_jwt_public_key),
            (Key::AuthIssuer, &self.auth_issuer),
            (Key::AuthAudience, &self.auth_audience),
            (Key::DatabaseUrl, &self.database_url),
            (Key::RedisUrl, &self.redis_url),
            (Key::RedisPrefix, &self.redis_prefix),
            (Key::InstanceId, &self.instance_id),
            (Key::SnapshotIntervalMs, &self.snapshot_interval_ms),
            (Key::CheckpointSeconds, &self.checkpoint_seconds),
            (Key::LeaseMs, &self.lease_ms),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.as_deref().map(|value| (key, value)))
    }
}

/// Why the configuration could not be loaded; each message names the source.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or `RAMPART_CONFIG` could not be read.
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The file has a key this version does not know, most likely a typo.
    #[error("{path}: unknown key `{key}` (known keys: {known})")]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// Every key this version knows.
        known: String,
    },
    /// A value is out of range or of the wrong kind.
    #[error("{origin}: {key} {problem}")]
    Invalid {
        /// Where the value came from: the file, `RAMPART_X=value` or `--x value`.
        origin: String,
        /// The configuration key.
        key: &'static str,
        /// What is wrong with it.
        problem: String,
    },
}

/// The configuration keys; the environment variable and flag names derive
/// from them so the three spellings cannot drift apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(
    clippy::enum_variant_names,
    reason = "variants spell the configuration keys"
)]
enum Key {
    HttpAddr,
    AdminToken,
    MaxSessions,
    TickHz,
    DrainSeconds,
    Assets,
    DataDir,
    LogFormat,
    IdleTimeoutSeconds,
    RateLimitPerSecond,
    RateLimitBurst,
    OverrunBudgetPct,
    UdpAddr,
    UdpSockets,
    WsAddr,
    PublicIp,
    PublicUdpAddrs,
    PublicWsUrl,
    PublicHttpUrl,
    Agones,
    NetKey,
    SnapshotHz,
    ReconnectGraceSeconds,
    CommandRatePerSecond,
    CommandBurst,
    AuthJwtSecret,
    AuthJwtPublicKey,
    AuthIssuer,
    AuthAudience,
    DatabaseUrl,
    RedisUrl,
    RedisPrefix,
    InstanceId,
    SnapshotIntervalMs,
    CheckpointSeconds,
    LeaseMs,
}

impl Key {
    const ALL: [Key; 36] = [
        Key::HttpAddr,
        Key::AdminToken,
        Key::MaxSessions,
        Key::TickHz,
        Key::DrainSeconds,
        Key::Assets,
        Key::DataDir,
        Key::LogFormat,
        Key::IdleTimeoutSeconds,
        Key::RateLimitPerSecond,
        Key::RateLimitBurst,
        Key::OverrunBudgetPct,
        Key::UdpAddr,
        Key::UdpSockets,
        Key::WsAddr,
        Key::PublicIp,
        Key::PublicUdpAddrs,
        Key::PublicWsUrl,
        Key::PublicHttpUrl,
        Key::Agones,
        Key::NetKey,
        Key::SnapshotHz,
        Key::ReconnectGraceSeconds,
        Key::CommandRatePerSecond,
        Key::CommandBurst,
        Key::AuthJwtSecret,
        Key::AuthJwtPublicKey,
        Key::AuthIssuer,
        Key::AuthAudience,
        Key::DatabaseUrl,
        Key::RedisUrl,
        Key::RedisPrefix,
        Key::InstanceId,
        Key::SnapshotIntervalMs,
        Key::CheckpointSeconds,
        Key::LeaseMs,
    ];

    fn name(self) -> &'static str {
        match self {
            Key::HttpAddr => "http_addr",
            Key::AdminToken => "admin_token",
            Key::MaxSessions => "max_sessions",
            Key::TickHz => "tick_hz",
            Key::DrainSeconds => "drain_seconds",
            Key::Assets => "assets",
            Key::DataDir => "data_dir",
            Key::LogFormat => "log_format",
            Key::IdleTimeoutSeconds => "idle_timeout_seconds",
            Key::RateLimitPerSecond => "rate_limit_per_second",
            Key::RateLimitBurst => "rate_limit_burst",
            Key::OverrunBudgetPct => "overrun_budget_pct",
            Key::UdpAddr => "udp_addr",
            Key::UdpSockets => "udp_sockets",
            Key::WsAddr => "ws_addr",
            Key::PublicIp => "public_ip",
            Key::PublicUdpAddrs => "public_udp_addrs",
            Key::PublicWsUrl => "public_ws_url",
            Key::PublicHttpUrl => "public_http_url",
            Key::Agones => "agones",
            Key::NetKey => "net_key",
            Key::SnapshotHz => "snapshot_hz",
            Key::ReconnectGraceSeconds => "reconnect_grace_seconds",
            Key::CommandRatePerSecond => "command_rate_per_second",
            Key::CommandBurst => "command_burst",
            Key::AuthJwtSecret => "auth_jwt_secret",
            Key::AuthJwtPublicKey => "auth_jwt_public_key",
            Key::AuthIssuer => "auth_issuer",
            Key::AuthAudience => "auth_audience",
            Key::DatabaseUrl => "database_url",
            Key::RedisUrl => "redis_url",
            Key::RedisPrefix => "redis_prefix",
            Key::InstanceId => "instance_id",
            Key::SnapshotIntervalMs => "snapshot_interval_ms",
            Key::CheckpointSeconds => "checkpoint_seconds",
            Key::LeaseMs => "lease_ms",
        }
    }

    fn from_name(name: &str) -> Option<Key> {
        Key::ALL.into_iter().find(|key| key.name() == name)
    }

    /// `RAMPART_<KEY>`, except the store URLs, which keep the names every
    /// platform and tool already uses for them.
    fn env_var(self) -> String {
        match self {
            Key::DatabaseUrl => "DATABASE_URL".to_owned(),
            Key::RedisUrl => "REDIS_URL".to_owned(),
            _ => format!("RAMPART_{}", self.name().to_ascii_uppercase()),
        }
    }

    fn flag(self) -> String {
        format!("--{}", self.name().replace('_', "-"))
    }

    /// The TOML type the file must give this key in; the environment and
    /// flags always give text (a list as comma-separated items).
    fn kind(self) -> ValueKind {
        match self {
            Key::Agones => ValueKind::Boolean,
            Key::PublicUdpAddrs => ValueKind::List,
            Key::HttpAddr
            | Key::AdminToken
            | Key::Assets
            | Key::DataDir
            | Key::LogFormat
            | Key::UdpAddr
            | Key::WsAddr
            | Key::PublicIp
            | Key::PublicWsUrl
            | Key::PublicHttpUrl
            | Key::NetKey
            | Key::AuthJwtSecret
            | Key::AuthJwtPublicKey
            | Key::AuthIssuer
            | Key::AuthAudience
            | Key::DatabaseUrl
            | Key::RedisUrl
            | Key::RedisPrefix
            | Key::InstanceId => ValueKind::Text,
            _ => ValueKind::Integer,
        }
    }
}

/// How a key is written in `rampart.toml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ValueKind {
    Text,
    Integer,
    Boolean,
    /// An array of strings.
    List,
}

impl ValueKind {
    fn describe(self) -> &'static str {
        match self {
            ValueKind::Text => "a string",
            ValueKind::Integer => "an integer",
            ValueKind::Boolean => "true or false",
            ValueKind::List => "an array of strings",
        }
    }

    /// The value as the text the environment or a flag would give, or
    /// `None` when it is of another TOML type.
    fn text(self, value: &toml::Value) -> Option<String> {
        match (self, value) {
            (ValueKind::Text, toml::Value::String(text)) => Some(text.clone()),
            (ValueKind::Integer, toml::Value::Integer(number)) => Some(number.to_string()),
            (ValueKind::Boolean, toml::Value::Boolean(flag)) => Some(flag.to_string()),
            (ValueKind::List, toml::Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .map(|items| items.join(",")),
            _ => None,
        }
    }
}

/// Parses an absolute `ws://`/`wss://` or `http://`/`https://` base URL
/// (no query, no trailing slash kept), so paths can be appended to it.
fn base_url(text: &str, schemes: [&str; 2]) -> Result<String, String> {
    let url = text.trim().trim_end_matches('/');
    let rest = schemes
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme)?.strip_prefix("://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => Ok(url.to_owned()),
        _ => Err(format!(
            "must be a URL like {}://host:port or {}://host/prefix, without a query",
            schemes[0], schemes[1]
        )),
    }
}

/// Parses an integer in `min..=max`, with a message that states the range.
fn between<T>(text: &str, min: T, max: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    text.trim()
        .parse()
        .ok()
        .filter(|value| (min..=max).contains(value))
        .ok_or_else(|| format!("must be {min} to {max}"))
}

/// Parses an integer of at least `min` (and at most the type allows).
fn at_least<T>(text: &str, min: T) -> Result<T, String>
where
    T: std::str::FromStr + PartialOrd + fmt::Display + Copy,
{
    text.trim()
        .parse()
        .ok()
        .filter(|value| *value >= min)
        .ok_or_else(|| format!("must be an integer of at least {min}"))
}

impl Config {
    /// Builds the configuration from defaults, the file, the environment (read
    /// through `env`, so tests need not touch the process environment) and
    /// the flags, in that order of precedence.
    ///
    /// # Errors
    ///
    /// An unreadable or malformed file, an unknown key in the file, or any
    /// invalid value; the error names the key and where the value came from.
    pub fn load(
        args: &ServeArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let path = match (&args.config, env(CONFIG_ENV)) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(path)) => Some(PathBuf::from(path)),
            (None, None) => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        };
        if let Some(path) = path {
            let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                path: path.clone(),
                error,
            })?;
            config.apply_file(&path, &text)?;
        }
        for key in Key::ALL {
            let var = key.env_var();
            if let Some(value) = env(&var) {
                config.apply(key, &value, || format!("{var}={value}"))?;
            }
        }
        for (key, value) in args.values() {
            config.apply(key, value, || format!("{} {value}", key.flag()))?;
        }
        if let Some(port) = env(AGONES_PORT_ENV) {
            config.agones = true;
            config.agones_sdk_port = port.trim().parse().map_err(|_| ConfigError::Invalid {
                origin: format!("{AGONES_PORT_ENV}={port}"),
                key: "agones",
                problem: "needs the SDK sidecar's port number".to_owned(),
            })?;
        }
        config.check_together()?;
        Ok(config)
    }

    /// Checks the rules that tie several keys together.
    fn check_together(&self) -> Result<(), ConfigError> {
        let invalid = |key, problem: String| ConfigError::Invalid {
            origin: "configuration".to_owned(),
            key,
            problem,
        };
        if !self.public_udp_addrs.is_empty() && self.public_udp_addrs.len() != self.udp_sockets {
            return Err(invalid(
                "public_udp_addrs",
                format!(
                    "lists {} addresses but udp_sockets is {}: give one per socket",
                    self.public_udp_addrs.len(),
                    self.udp_sockets
                ),
            ));
        }
        if self.agones && self.http_addr.port() == AGONES_SIDECAR_HTTP_PORT {
            return Err(invalid(
                "http_addr",
                format!(
                    "uses port {AGONES_SIDECAR_HTTP_PORT}, which the Agones SDK sidecar binds in \
                     the pod; choose another port (e.g. 0.0.0.0:8000)"
                ),
            ));
        }
        Ok(())
    }

    /// The session host's share of the settings.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            max_sessions: self.max_sessions,
            tick_hz: self.tick_hz,
            idle_timeout: Duration::from_secs(self.idle_timeout_seconds),
            overrun_budget_pct: u32::from(self.overrun_budget_pct),
            ended_kept: ENDED_KEPT,
            snapshot_hz: self.snapshot_hz.min(self.tick_hz),
            reconnect_grace: Duration::from_secs(self.reconnect_grace_seconds),
        }
    }

    /// How long a SIGTERM drain may take.
    pub fn drain_deadline(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }

    /// Applies the keys of a `rampart.toml` whose text is `text`.
    fn apply_file(&mut self, path: &Path, text: &str) -> Result<(), ConfigError> {
        let table: toml::Table = toml::from_str(text).map_err(|error| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: error.to_string().trim_end().to_owned(),
        })?;
        let origin = || path.display().to_string();
        for (name, value) in &table {
            let Some(key) = Key::from_name(name) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key: name.clone(),
                    known: Key::ALL.map(Key::name).join(", "),
                });
            };
            let Some(text) = key.kind().text(value) else {
                return Err(ConfigError::Invalid {
                    origin: origin(),
                    key: key.name(),
                    problem: format!(
                        "must be {}, not {}",
                        key.kind().describe(),
                        value.type_str()
                    ),
                });
            };
            self.apply(key, &text, origin)?;
        }
        Ok(())
    }

    /// Parses and stores one value; `origin` describes its source for the error.
    fn apply(
        &mut self,
        key: Key,
        text: &str,
        origin: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        self.set(key, text).map_err(|problem| ConfigError::Invalid {
            origin: origin(),
            key: key.name(),
            problem,
        })
    }

    fn set(&mut self, key: Key, text: &str) -> Result<(), String> {
        match key {
            Key::HttpAddr => {
                self.http_addr = text
                    .trim()
                    .parse()
                    .map_err(|_| "must be an IP address and port like 127.0.0.1:8080".to_owned())?;
            }
            Key::AdminToken => {
                if text.is_empty() {
                    return Err(
                        "must not be empty (leave it unset to disable mutating endpoints)"
                            .to_owned(),
                    );
                }
                self.admin_token = Some(text.to_owned());
            }
            Key::MaxSessions => self.max_sessions = at_least(text, 1)?,
            Key::TickHz => self.tick_hz = between(text, 1, 60)?,
            Key::DrainSeconds => self.drain_seconds = between(text, 0, 3600)?,
            Key::Assets => {
                if text.trim().is_empty() {
                    return Err("must name a directory".to_owned());
                }
                self.assets = PathBuf::from(text);
            }
            Key::DataDir => {
                if text.trim().is_empty() {
                    return Err("must name a directory".to_owned());
                }
                self.data_dir = PathBuf::from(text);
            }
            Key::LogFormat => {
                self.log_format = match text.trim() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    _ => return Err("must be `text` or `json`".to_owned()),
                };
            }
            Key::IdleTimeoutSeconds => {
                self.idle_timeout_seconds = at_least(text, 1)?;
            }
            Key::RateLimitPerSecond => {
                self.rate_limit_per_second = at_least(text, 1)?;
            }
            Key::RateLimitBurst => self.rate_limit_burst = at_least(text, 1)?,
            Key::OverrunBudgetPct => self.overrun_budget_pct = between(text, 1, 100)?,
            Key::UdpAddr => {
                self.udp_addr = text
                    .trim()
                    .parse()
                    .map_err(|_| "must be an IP address and port like 127.0.0.1:5000".to_owned())?;
            }
            Key::UdpSockets => {
                self.udp_sockets = between(text, 1, 64)?;
            }
            Key::WsAddr => {
                self.ws_addr = text
                    .trim()
                    .parse()
                    .map_err(|_| "must be an IP address and port like 127.0.0.1:5080".to_owned())?;
            }
            Key::PublicIp => {
                self.public_ip = Some(
                    text.trim()
                        .parse()
                        .map_err(|_| "must be an IP address like 203.0.113.7".to_owned())?,
                );
            }
            Key::PublicUdpAddrs => {
                self.public_udp_addrs = text
                    .split(',')
                    .map(str::trim)
                    .filter(|item| !item.is_empty())
                    .map(|item| item.parse())
                    .collect::<Result<_, _>>()
                    .map_err(|_| {
                        "must be IP addresses and ports like 203.0.113.7:7001, one per UDP socket"
                            .to_owned()
                    })?;
            }
            Key::PublicWsUrl => self.public_ws_url = Some(base_url(text, ["ws", "wss"])?),
            Key::PublicHttpUrl => self.public_http_url = Some(base_url(text, ["http", "https"])?),
            Key::Agones => {
                self.agones = match text.trim() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err("must be `true` or `false`".to_owned()),
                };
            }
            Key::NetKey => {
                rampart_net::tickets::TicketKey::from_base64(text)
                    .map_err(|error| error.to_string())?;
                self.net_key = Some(text.trim().to_owned());
            }
            Key::SnapshotHz => {
                self.snapshot_hz = between(text, 1, 60)?;
            }
            Key::ReconnectGraceSeconds => {
                self.reconnect_grace_seconds = between(text, 1, 86_400)?;
            }
            Key::CommandRatePerSecond => {
                self.command_rate_per_second = between(text, 1, 1000)?;
            }
            Key::CommandBurst => {
                self.command_burst = between(text, 1, 1000)?;
            }
            Key::AuthJwtSecret => {
                if text.is_empty() {
                    return Err("must not be empty".to_owned());
                }
                self.auth_jwt_secret = Some(text.to_owned());
            }
            Key::AuthJwtPublicKey => {
                if text.trim().is_empty() {
                    return Err("must name a PEM file".to_owned());
                }
                self.auth_jwt_public_key = Some(PathBuf::from(text.trim()));
            }
            Key::AuthIssuer => {
                self.auth_issuer = Some(text.trim().to_owned());
            }
            Key::AuthAudience => {
                self.auth_audience = Some(text.trim().to_owned());
            }
            Key::DatabaseUrl => {
                let url = text.trim();
                if !["postgres://", "postgresql://", "sqlite://"]
                    .iter()
                    .any(|scheme| url.starts_with(scheme))
                {
                    return Err("must start with postgres://, postgresql:// or sqlite://".into());
                }
                self.database_url = Some(url.to_owned());
            }
            Key::RedisUrl => {
                let url = text.trim();
                if !url.starts_with("redis://") && !url.starts_with("rediss://") {
                    return Err("must start with redis:// or rediss://".into());
                }
                self.redis_url = Some(url.to_owned());
            }
            Key::RedisPrefix => {
                // A brace would end up before the `{session}` hash tag and
                // become the tag itself, scattering a session's keys over
                // Redis Cluster slots (its scripts need them in one).
                let prefix = text.trim();
                if prefix.len() > 64
                    || prefix
                        .chars()
                        .any(|c| c.is_whitespace() || c == '{' || c == '}')
                {
                    return Err("must be at most 64 characters without spaces or braces".into());
                }
                self.redis_prefix = prefix.to_owned();
            }
            Key::InstanceId => {
                let name = text.trim();
                if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
                    return Err("must be 1 to 128 characters without spaces".into());
                }
                self.instance_id = Some(name.to_owned());
            }
            Key::SnapshotIntervalMs => {
                self.snapshot_interval_ms = between(text, 100, 60_000)?;
            }
            Key::CheckpointSeconds => self.checkpoint_seconds = between(text, 1, 3600)?,
            Key::LeaseMs => self.lease_ms = between(text, 1000, 600_000)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use std::collections::HashMap;

    /// A file in the temp directory, removed when dropped, so tests can run
    /// in parallel without touching the working directory.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str) -> Self {
            let path = std::env::temp_dir()
                .join(format!("rampart-config-{}-{name}.toml", std::process::id()));
            std::fs::write(&path, text).unwrap();
            Self(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn with_file(path: &Path) -> ServeArgs {
        ServeArgs {
            config: Some(path.to_path_buf()),
            ..ServeArgs::default()
        }
    }

    #[test]
    fn defaults_without_any_source() {
        let config = Config::load(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert_eq!(config, Config::default());
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.tick_hz, 30);
        assert_eq!(config.admin_token, None);
    }

    #[test]
    fn file_then_env_then_flag() {
        let file = TempFile::new(
            "precedence",
            "tick_hz = 10\nmax_sessions = 5\ndrain_seconds = 7\nlog_format = \"json\"\n",
        );
        let env = env_of(&[("RAMPART_TICK_HZ", "20"), ("RAMPART_MAX_SESSIONS", "6")]);
        let mut args = with_file(&file.0);
        args.tick_hz = Some("40".to_owned());
        let config = Config::load(&args, &env).unwrap();
        assert_eq!(config.tick_hz, 40, "flag beats env and file");
        assert_eq!(config.max_sessions, 6, "env beats file");
        assert_eq!(config.drain_seconds, 7, "file beats default");
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.idle_timeout_seconds, 300, "default stays");
    }

    #[test]
    fn config_path_from_env() {
        let file = TempFile::new("env-path", "admin_token = \"s3cret\"\n");
        let path = file.0.display().to_string();
        let env = env_of(&[(CONFIG_ENV, &path)]);
        let config = Config::load(&ServeArgs::default(), &env).unwrap();
        assert_eq!(config.admin_token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn missing_named_file_is_an_error() {
        let args = with_file(Path::new("/nonexistent/rampart.toml"));
        let error = Config::load(&args, &env_of(&[])).unwrap_err().to_string();
        assert!(
            error.starts_with("/nonexistent/rampart.toml: cannot read"),
            "{error}"
        );
    }

    #[test]
    fn unknown_key_in_file() {
        let file = TempFile::new("unknown", "tick_hz = 30\ntick_rate = 30\n");
        let error = Config::load(&with_file(&file.0), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown key `tick_rate`"), "{error}");
        assert!(error.contains("tick_hz"), "lists the known keys: {error}");
    }

    #[test]
    fn invalid_values_name_key_and_source() {
        let env = env_of(&[("RAMPART_TICK_HZ", "0")]);
        let error = Config::load(&ServeArgs::default(), &env).unwrap_err();
        assert_eq!(
            error.to_string(),
            "RAMPART_TICK_HZ=0: tick_hz must be 1 to 60"
        );

        let file = TempFile::new("invalid", "max_sessions = 0\n");
        let error = Config::load(&with_file(&file.0), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            format!(
                "{}: max_sessions must be an integer of at least 1",
                file.0.display()
            )
        );

        let file = TempFile::new("wrong-type", "tick_hz = \"fast\"\n");
        let error = Config::load(&with_file(&file.0), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("tick_hz must be an integer, not string"),
            "{error}"
        );

        let args = ServeArgs {
            log_format: Some("xml".to_owned()),
            ..ServeArgs::default()
        };
        let error = Config::load(&args, &env_of(&[])).unwrap_err().to_string();
        assert_eq!(
            error,
            "--log-format xml: log_format must be `text` or `json`"
        );

        let args = ServeArgs {
            http_addr: Some("localhost".to_owned()),
            ..ServeArgs::default()
        };
        let error = Config::load(&args, &env_of(&[])).unwrap_err().to_string();
        assert!(
            error.starts_with("--http-addr localhost: http_addr must be"),
            "{error}"
        );

        let env = env_of(&[("RAMPART_OVERRUN_BUDGET_PCT", "101")]);
        let error = Config::load(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "RAMPART_OVERRUN_BUDGET_PCT=101: overrun_budget_pct must be 1 to 100"
        );
    }

    #[test]
    fn a_redis_prefix_keeps_out_of_the_session_hash_tag() {
        let env = env_of(&[("RAMPART_REDIS_PREFIX", "staging:")]);
        let config = Config::load(&ServeArgs::default(), &env).unwrap();
        assert_eq!(config.redis_prefix, "staging:");

        let env = env_of(&[("RAMPART_REDIS_PREFIX", "{staging}:")]);
        let error = Config::load(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "RAMPART_REDIS_PREFIX={staging}:: redis_prefix must be at most 64 characters \
             without spaces or braces"
        );
    }

    #[test]
    fn advertised_addresses_from_every_source() {
        let file = TempFile::new(
            "advertised",
            "udp_sockets = 2\npublic_udp_addrs = [\"203.0.113.7:7001\", \"203.0.113.7:7002\"]\n\
             public_ws_url = \"wss://play.example.com/pods/a/\"\n",
        );
        let env = env_of(&[("RAMPART_PUBLIC_HTTP_URL", "https://a.play.example.com")]);
        let config = Config::load(&with_file(&file.0), &env).unwrap();
        assert_eq!(
            config.public_udp_addrs,
            [
                "203.0.113.7:7001".parse().unwrap(),
                "203.0.113.7:7002".parse().unwrap()
            ]
        );
        assert_eq!(
            config.public_ws_url.as_deref(),
            Some("wss://play.example.com/pods/a"),
            "a trailing slash is dropped so paths can be appended"
        );
        assert_eq!(
            config.public_http_url.as_deref(),
            Some("https://a.play.example.com")
        );

        let env = env_of(&[("RAMPART_PUBLIC_UDP_ADDRS", "203.0.113.7:7001")]);
        let error = Config::load(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "configuration: public_udp_addrs lists 1 addresses but udp_sockets is 4: give one \
             per socket"
        );
        let env = env_of(&[("RAMPART_PUBLIC_WS_URL", "http://play.example.com")]);
        let error = Config::load(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("public_ws_url must be a URL like ws://"),
            "{error}"
        );
    }

    #[test]
    fn agones_turns_on_with_its_variable_and_keeps_off_port_8080() {
        let config = Config::load(&ServeArgs::default(), &env_of(&[])).unwrap();
        assert!(!config.agones, "off without the variable");

        let env = env_of(&[
            (AGONES_PORT_ENV, "9400"),
            ("RAMPART_HTTP_ADDR", "0.0.0.0:8000"),
        ]);
        let config = Config::load(&ServeArgs::default(), &env).unwrap();
        assert!(config.agones);
        assert_eq!(config.agones_sdk_port, 9400);

        let env = env_of(&[("RAMPART_AGONES", "true")]);
        let error = Config::load(&ServeArgs::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("configuration: http_addr uses port 8080, which the Agones SDK"),
            "{error}"
        );
        let file = TempFile::new("agones", "agones = \"yes\"\n");
        let error = Config::load(&with_file(&file.0), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            error.ends_with("agones must be true or false, not string"),
            "{error}"
        );
    }

    #[test]
    fn syntax_error_names_file() {
        let file = TempFile::new("syntax", "tick_hz = \n");
        let error = Config::load(&with_file(&file.0), &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(error.starts_with(&file.0.display().to_string()), "{error}");
    }

    #[test]
    fn example_file_lists_every_key_with_its_default() {
        let text = include_str!("../../rampart.toml.example");
        let uncommented: String = text
            .lines()
            .filter_map(|line| line.strip_prefix("# ").filter(|l| l.contains(" = ")))
            .map(|line| format!("{line}\n"))
            .collect();
        let path = Path::new("rampart.toml.example");
        let mut config = Config::default();
        config.apply_file(path, &uncommented).unwrap();
        let expected = Config {
            admin_token: config.admin_token.clone(),
            public_ip: config.public_ip,
            public_udp_addrs: config.public_udp_addrs.clone(),
            public_ws_url: config.public_ws_url.clone(),
            public_http_url: config.public_http_url.clone(),
            net_key: config.net_key.clone(),
            auth_jwt_secret: config.auth_jwt_secret.clone(),
            auth_jwt_public_key: config.auth_jwt_public_key.clone(),
            auth_issuer: config.auth_issuer.clone(),
            auth_audience: config.auth_audience.clone(),
            database_url: config.database_url.clone(),
            redis_url: config.redis_url.clone(),
            redis_prefix: config.redis_prefix.clone(),
            instance_id: config.instance_id.clone(),
            ..Config::default()
        };
        assert_eq!(config, expected, "the example's values are the defaults");
        for key in Key::ALL {
            assert!(
                uncommented.contains(&format!("{} = ", key.name())),
                "{} missing from rampart.toml.example",
                key.name()
            );
        }
    }
}
