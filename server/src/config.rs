//! The server's configuration: defaults that run on a laptop, overridden by
//! `rampart.toml`, then by `RAMPART_*` environment variables, then by flags.
//!
//! Every key is one entry of the `config_keys!` table below, from which the
//! `Config` field, the flag, the environment variable, the file's type and
//! the parser all follow; every source goes through that one parser, so a
//! bad value reads the same wherever it came from and always names the key
//! and the source.

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
    /// How many values its flag takes: a switch may stand alone.
    fn flag_values(self) -> clap::builder::ValueRange {
        match self {
            ValueKind::Boolean => clap::builder::ValueRange::new(0..=1),
            _ => clap::builder::ValueRange::new(1),
        }
    }

    /// What a flag given without a value means: `--agones` is `--agones
    /// true`; other kinds need their value.
    fn bare_flag(self) -> Option<&'static str> {
        (self == ValueKind::Boolean).then_some("true")
    }

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

/// Declares every configuration key once: its field in [`Config`] (with the
/// doc comment, which is also the flag's help), its default, how the file
/// writes it, the flag's value name, its environment variable when that is
/// not `RAMPART_<KEY>`, and its parser. The flags, the environment, the file,
/// the precedence and the `rampart.toml.example` check all follow from it.
macro_rules! config_keys {
    (
        $(
            $(#[doc = $doc:literal])*
            $name:ident: $ty:ty = $default:expr,
                toml $kind:ident, flag $value:literal, env $env:expr,
                parse $parse:expr;
        )*
    ) => {
        /// The server's settings after every source has been applied.
        #[derive(Clone, Debug, PartialEq)]
        pub struct Config {
            $( $(#[doc = $doc])* pub $name: $ty, )*
            /// The SDK sidecar's REST port on localhost, from
            /// `AGONES_SDK_HTTP_PORT` (default 9358); not a key of its own,
            /// since Agones sets it.
            pub agones_sdk_port: u16,
        }

        impl Default for Config {
            fn default() -> Self {
                Self {
                    $( $name: $default, )*
                    agones_sdk_port: AGONES_DEFAULT_SDK_PORT,
                }
            }
        }

        /// Flags of `rampart serve`; each one overrides the file and the
        /// environment.
        #[derive(Clone, Debug, Default, clap::Args)]
        pub struct ServeArgs {
            /// Configuration file [env: RAMPART_CONFIG] [default: ./rampart.toml if it exists].
            #[arg(long, value_name = "PATH")]
            pub config: Option<PathBuf>,
            $(
                $(#[doc = $doc])*
                #[arg(
                    long,
                    value_name = $value,
                    num_args = ValueKind::$kind.flag_values(),
                    default_missing_value = ValueKind::$kind.bare_flag(),
                )]
                pub $name: Option<String>,
            )*
        }

        impl ServeArgs {
            /// The flags that were given, with their keys.
            fn values(&self) -> impl Iterator<Item = (&'static Key, &str)> {
                [$( (stringify!($name), self.$name.as_deref()) ),*]
                    .into_iter()
                    .filter_map(|(name, value)| Some((Key::named(name)?, value?)))
            }
        }

        /// Every key, in the order of `rampart.toml.example`.
        static KEYS: &[Key] = &[
            $(
                Key {
                    name: stringify!($name),
                    kind: ValueKind::$kind,
                    env: $env,
                    set: |config, text| {
                        let parse: fn(&str) -> Result<$ty, String> = $parse;
                        config.$name = parse(text)?;
                        Ok(())
                    },
                },
            )*
        ];
    };
}

/// One configuration key, as [`config_keys!`] declares it.
struct Key {
    /// The name in `rampart.toml`; the flag and the variable derive from it.
    name: &'static str,
    /// How the file writes it.
    kind: ValueKind,
    /// The environment variable when it is not `RAMPART_<NAME>`.
    env: Option<&'static str>,
    /// Parses a value and stores it.
    set: fn(&mut Config, &str) -> Result<(), String>,
}

impl Key {
    fn named(name: &str) -> Option<&'static Key> {
        KEYS.iter().find(|key| key.name == name)
    }

    /// `RAMPART_<KEY>`, except the store URLs, which keep the names every
    /// platform and tool already uses for them.
    fn env_var(&self) -> String {
        self.env.map_or_else(
            || format!("RAMPART_{}", self.name.to_ascii_uppercase()),
            str::to_owned,
        )
    }

    fn flag(&self) -> String {
        format!("--{}", self.name.replace('_', "-"))
    }
}

/// `true` or `false` (or 1 and 0, as environment variables often say).
fn boolean(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("must be `true` or `false`".to_owned()),
    }
}

/// A string that must not be empty (use unset for "none").
fn nonempty(text: &str, problem: &str) -> Result<String, String> {
    if text.trim().is_empty() {
        return Err(problem.to_owned());
    }
    Ok(text.to_owned())
}

/// An IP address and port; `example` shows the form.
fn socket_addr(text: &str, example: &str) -> Result<SocketAddr, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("must be an IP address and port like {example}"))
}

config_keys! {
    /// Where the HTTP API (health, readiness, metrics, sessions) listens.
    /// Default 127.0.0.1:8080; use 0.0.0.0:8080 in a container.
    http_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)),
        toml Text, flag "ADDR", env None,
        parse |text| socket_addr(text, "127.0.0.1:8080");
    /// Bearer token for the mutating endpoints; prefer RAMPART_ADMIN_TOKEN,
    /// as flags show in `ps`. Unset (the default) disables them rather than
    /// leaving them open.
    admin_token: Option<String> = None,
        toml Text, flag "TOKEN", env None,
        parse |text| if text.is_empty() {
            Err("must not be empty (leave it unset to disable mutating endpoints)".to_owned())
        } else {
            Ok(Some(text.to_owned()))
        };
    /// Open (lobby or running) sessions this instance accepts; beyond it,
    /// creation answers 503 and /ready turns false. Default 1000.
    max_sessions: usize = 1000,
        toml Integer, flag "N", env None,
        parse |text| at_least(text, 1);
    /// Simulation ticks per second, 1 to 60. Default 30.
    tick_hz: u32 = 30,
        toml Integer, flag "HZ", env None,
        parse |text| between(text, 1, 60);
    /// Seconds a SIGTERM drain may take before the process exits anyway.
    /// Default 30, matching Kubernetes' default grace period.
    drain_seconds: u64 = 30,
        toml Integer, flag "SECONDS", env None,
        parse |text| between(text, 0, 3600);
    /// The content directory. Default assets.
    assets: PathBuf = PathBuf::from("assets"),
        toml Text, flag "DIR", env None,
        parse |text| nonempty(text, "must name a directory").map(PathBuf::from);
    /// Reload the content directory whenever a file under it changes: new
    /// sessions use valid new content, running ones keep theirs, and
    /// invalid content is logged and ignored. For designers' servers; a
    /// bare `--watch-assets` means true. Default off.
    watch_assets: bool = false,
        toml Boolean, flag "BOOL", env None,
        parse boolean;
    /// Where the embedded SQLite database lives. Default data.
    data_dir: PathBuf = PathBuf::from("data"),
        toml Text, flag "DIR", env None,
        parse |text| nonempty(text, "must name a directory").map(PathBuf::from);
    /// Threads stepping sessions in parallel. Default 0: one per core the
    /// process may use (its CPU affinity and cgroup quota); fewer leaves
    /// cores to the net thread and whatever shares the machine.
    step_threads: usize = 0,
        toml Integer, flag "N", env None,
        parse |text| between(text, 0, 1024);
    /// Log output: text (default) for terminals, json for log collectors.
    log_format: LogFormat = LogFormat::Text,
        toml Text, flag "FORMAT", env None,
        parse |text| match text.trim() {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            _ => Err("must be `text` or `json`".to_owned()),
        };
    /// Seconds a session may have no connected player before it is ended.
    /// Default 300.
    idle_timeout_seconds: u64 = 300,
        toml Integer, flag "SECONDS", env None,
        parse |text| at_least(text, 1);
    /// Sustained /v1/* requests per second allowed per client IP. Default 20.
    rate_limit_per_second: u32 = 20,
        toml Integer, flag "N", env None,
        parse |text| at_least(text, 1);
    /// Requests a client IP may send at once before the rate applies.
    /// Default 40.
    rate_limit_burst: u32 = 40,
        toml Integer, flag "N", env None,
        parse |text| at_least(text, 1);
    /// A tick that takes longer than this share (percent) of the tick
    /// period counts as late (an overrun). Default 80.
    overrun_budget_pct: u8 = 80,
        toml Integer, flag "PCT", env None,
        parse |text| between(text, 1, 100);
    /// First UDP socket for game clients (renet over netcode); extra
    /// sockets (udp_sockets) take the following ports. Default
    /// 127.0.0.1:5000.
    udp_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5000)),
        toml Text, flag "ADDR", env None,
        parse |text| socket_addr(text, "127.0.0.1:5000");
    /// UDP sockets, 1 to 64; each serves up to 1,024 clients. Default 4,
    /// enough for max_sessions sessions of four players.
    udp_sockets: usize = 4,
        toml Integer, flag "N", env None,
        parse |text| between(text, 1, 64);
    /// Kernel receive buffer asked for each UDP socket, in bytes: datagrams
    /// wait there while the net thread is off the CPU, and what does not
    /// fit is dropped (counted as rampart_net_dropped_total
    /// {reason="udp_buffer_full"}). Linux grants at most net.core.rmem_max
    /// (208 KiB unless raised; the server warns when capped). Default
    /// 4 MiB, about 200 ms of a full socket's traffic.
    udp_receive_buffer_bytes: usize = 4 << 20,
        toml Integer, flag "BYTES", env None,
        parse |text| between(text, 64 << 10, 1 << 30);
    /// Where browsers connect over WebSocket (/ws?ticket=...). Default
    /// 127.0.0.1:5080.
    ws_addr: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 5080)),
        toml Text, flag "ADDR", env None,
        parse |text| socket_addr(text, "127.0.0.1:5080");
    /// The IP clients reach this instance at, written into connect tokens
    /// and WebSocket URLs. Unset: the bound IP (127.0.0.1 if bound to
    /// 0.0.0.0).
    public_ip: Option<IpAddr> = None,
        toml Text, flag "IP", env None,
        parse |text| text
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| "must be an IP address like 203.0.113.7".to_owned());
    /// What clients must dial for each UDP socket, in order, when it is not
    /// the bound address (NAT, hostPort, a load balancer per pod): written
    /// into connect tokens, and checked by the netcode handshake. Empty
    /// (the default): the bound addresses with public_ip, or the Agones
    /// GameServer's ports.
    public_udp_addrs: Vec<SocketAddr> = Vec::new(),
        toml List, flag "ADDRS", env None,
        parse |text| text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| {
                "must be IP addresses and ports like 203.0.113.7:7001, one per UDP socket".to_owned()
            });
    /// Where clients open WebSockets, without the /ws path: ws:// or wss://
    /// behind a TLS terminator, with any path prefix a proxy routes on.
    /// Unset: ws:// and the bound address (or the GameServer's).
    public_ws_url: Option<String> = None,
        toml Text, flag "URL", env None,
        parse |text| base_url(text, ["ws", "wss"]).map(Some);
    /// This instance's HTTP API as clients reach it, named in the 307s that
    /// send players to the instance running their session. Unset: http://
    /// and the bound address (or the GameServer's).
    public_http_url: Option<String> = None,
        toml Text, flag "URL", env None,
        parse |text| base_url(text, ["http", "https"]).map(Some);
    /// Run as an Agones game server: talk to the SDK sidecar (Ready, Health,
    /// counters, labels, Shutdown) and take the advertised addresses from
    /// the GameServer. Also on when AGONES_SDK_HTTP_PORT is set. Default
    /// off.
    agones: bool = false,
        toml Boolean, flag "BOOL", env None,
        parse boolean;
    /// The 32-byte key (standard base64) that encrypts connect tokens and
    /// signs tickets; every instance of a fleet needs the same one; prefer
    /// RAMPART_NET_KEY. Unset: a random development key, announced as such
    /// at startup.
    net_key: Option<String> = None,
        toml Text, flag "KEY", env None,
        parse |text| {
            rampart_net::tickets::TicketKey::from_base64(text).map_err(|error| error.to_string())?;
            Ok(Some(text.trim().to_owned()))
        };
    /// Snapshots per second to each client, 1 to 60 (at most the tick rate
    /// is used). Default 20.
    snapshot_hz: u32 = 20,
        toml Integer, flag "N", env None,
        parse |text| between(text, 1, 60);
    /// Seconds a dropped player's seat stays theirs. Default 60.
    reconnect_grace_seconds: u64 = 60,
        toml Integer, flag "SECONDS", env None,
        parse |text| between(text, 1, 86_400);
    /// Commands per second a client may send, sustained. Default 10.
    command_rate_per_second: u32 = 10,
        toml Integer, flag "N", env None,
        parse |text| between(text, 1, 1000);
    /// Commands a client may send at once. Default 20.
    command_burst: u32 = 20,
        toml Integer, flag "N", env None,
        parse |text| between(text, 1, 1000);
    /// Spectators one session may have at once (POST
    /// /v1/sessions/{id}/spectate), 0 to 10000; 0 turns spectating off.
    /// Default 32.
    max_spectators: u16 = rampart_net::gateway::DEFAULT_MAX_SPECTATORS,
        toml Integer, flag "N", env None,
        parse |text| between(text, 0, 10_000);
    /// HS256 secret for players' bearer JWTs on POST /v1/join; prefer
    /// RAMPART_AUTH_JWT_SECRET. With neither this nor auth_jwt_public_key,
    /// joining is anonymous (development).
    auth_jwt_secret: Option<String> = None,
        toml Text, flag "SECRET", env None,
        parse |text| if text.is_empty() {
            Err("must not be empty".to_owned())
        } else {
            Ok(Some(text.to_owned()))
        };
    /// PEM file with the RS256 or EdDSA public key for players' JWTs.
    auth_jwt_public_key: Option<PathBuf> = None,
        toml Text, flag "PATH", env None,
        parse |text| nonempty(text, "must name a PEM file")
            .map(|path| Some(PathBuf::from(path.trim())));
    /// Required `iss` of players' JWTs, when set.
    auth_issuer: Option<String> = None,
        toml Text, flag "ISSUER", env None,
        parse |text| Ok(Some(text.trim().to_owned()));
    /// Required `aud` of players' JWTs, when set.
    auth_audience: Option<String> = None,
        toml Text, flag "AUDIENCE", env None,
        parse |text| Ok(Some(text.trim().to_owned()));
    /// The durable store: postgres://... or sqlite://PATH [env:
    /// DATABASE_URL]. Unset: SQLite at <data_dir>/rampart.db (the embedded
    /// default).
    database_url: Option<String> = None,
        toml Text, flag "URL", env Some("DATABASE_URL"),
        parse |text| {
            let url = text.trim();
            if ["postgres://", "postgresql://", "sqlite://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                Ok(Some(url.to_owned()))
            } else {
                Err("must start with postgres://, postgresql:// or sqlite://".to_owned())
            }
        };
    /// The hot store and ownership leases, redis://... [env: REDIS_URL].
    /// Unset: hot state goes to the database at the snapshot interval and
    /// sessions have no leases (one instance per database).
    redis_url: Option<String> = None,
        toml Text, flag "URL", env Some("REDIS_URL"),
        parse |text| {
            let url = text.trim();
            if url.starts_with("redis://") || url.starts_with("rediss://") {
                Ok(Some(url.to_owned()))
            } else {
                Err("must start with redis:// or rediss://".to_owned())
            }
        };
    /// Put before every Redis key this deployment writes, so several
    /// deployments (staging beside production, a test run) can share one
    /// Redis. Default empty.
    redis_prefix: String = String::new(),
        toml Text, flag "PREFIX", env None,
        parse |text| {
            // A brace would end up before the `{session}` hash tag and
            // become the tag itself, scattering a session's keys over
            // Redis Cluster slots (its scripts need them in one).
            let prefix = text.trim();
            if prefix.len() > 64
                || prefix.chars().any(|c| c.is_whitespace() || c == '{' || c == '}')
            {
                Err("must be at most 64 characters without spaces or braces".to_owned())
            } else {
                Ok(prefix.to_owned())
            }
        };
    /// This instance's name as a session owner. Unset: the host name plus a
    /// random suffix, so a restarted pod is a new owner.
    instance_id: Option<String> = None,
        toml Text, flag "NAME", env None,
        parse |text| {
            let name = text.trim();
            if name.is_empty() || name.len() > 128 || name.chars().any(char::is_whitespace) {
                Err("must be 1 to 128 characters without spaces".to_owned())
            } else {
                Ok(Some(name.to_owned()))
            }
        };
    /// Milliseconds between two saves of a running session (to Redis, or to
    /// the database without Redis); at most this much play is lost when an
    /// instance dies. Default 1000.
    snapshot_interval_ms: u64 = 1000,
        toml Integer, flag "MS", env None,
        parse |text| between(text, 100, 60_000);
    /// Seconds between two database checkpoints of a session while Redis
    /// holds its hot state. Default 10.
    checkpoint_seconds: u64 = 10,
        toml Integer, flag "SECONDS", env None,
        parse |text| between(text, 1, 3600);
    /// Milliseconds a session's lease lasts without renewal: how soon
    /// another instance adopts the sessions of a dead one. Default 6000.
    lease_ms: u64 = 6000,
        toml Integer, flag "MS", env None,
        parse |text| between(text, 1000, 600_000);
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
        for key in KEYS {
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
            step_threads: self.step_threads,
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
            let Some(key) = Key::named(name) else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key: name.clone(),
                    known: KEYS
                        .iter()
                        .map(|key| key.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            };
            let Some(text) = key.kind.text(value) else {
                return Err(ConfigError::Invalid {
                    origin: origin(),
                    key: key.name,
                    problem: format!("must be {}, not {}", key.kind.describe(), value.type_str()),
                });
            };
            self.apply(key, &text, origin)?;
        }
        Ok(())
    }

    /// Parses and stores one value; `origin` describes its source for the error.
    fn apply(
        &mut self,
        key: &'static Key,
        text: &str,
        origin: impl FnOnce() -> String,
    ) -> Result<(), ConfigError> {
        (key.set)(self, text).map_err(|problem| ConfigError::Invalid {
            origin: origin(),
            key: key.name,
            problem,
        })
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

    /// A switch on the command line may stand alone; other flags still need
    /// their value.
    #[test]
    fn a_bare_switch_means_true() {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli = Cli::try_parse_from(["rampart", "--watch-assets", "--tick-hz", "20"]).unwrap();
        let config = Config::load(&cli.serve, &env_of(&[])).unwrap();
        assert!(config.watch_assets);
        assert_eq!(config.tick_hz, 20);
        let cli = Cli::try_parse_from(["rampart", "--watch-assets", "false"]).unwrap();
        assert!(!Config::load(&cli.serve, &env_of(&[])).unwrap().watch_assets);
        assert!(Cli::try_parse_from(["rampart", "--admin-token"]).is_err());
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
        for key in KEYS {
            assert!(
                uncommented.contains(&format!("{} = ", key.name)),
                "{} missing from rampart.toml.example",
                key.name
            );
        }
    }
}
