//! Running as an Agones game server: what the server tells the SDK sidecar
//! and when.
//!
//! - The GameServer's `status.address` and named `status.ports` are what
//!   clients dial (read before the transports start, see [`Agones::address`]).
//! - `Ready` once every listener is bound and content is loaded.
//! - `Health` every 2 s from a tokio task, but only while the tick thread
//!   advances: a wedged tick thread stops the pings, and Agones marks the
//!   server Unhealthy and replaces it (its sessions are adopted elsewhere).
//! - The high-density counters: `sessions` (count = open sessions, capacity
//!   = `max_sessions`) and `players` (connected seats), so allocations can
//!   pack players onto servers with room; a server whose last session ends
//!   says `Ready` again, so an Allocated server can be scaled down and
//!   replaced by a rollout.
//! - Labels: the server version, the content version, one per map.
//! - `Shutdown` once a drain has handed every session over.
//!
//! Without Agones none of this exists: no task, no connection, no cost.

mod sdk;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::host::HostHandle;
pub use sdk::{Call, HttpSidecar, SdkError, Sidecar, beta, call_with_retry};

/// How often the server says it is healthy. Agones' default health period
/// is 5 s with a failure threshold of 3; 2 s leaves room for a slow ping.
pub const HEALTH_PERIOD: Duration = Duration::from_secs(2);

/// How often the counters are brought up to date (only changes are sent).
const COUNTER_PERIOD: Duration = Duration::from_secs(1);

/// How long startup waits for the sidecar (it may start after the server).
const STARTUP_PATIENCE: Duration = Duration::from_secs(60);

/// Names of the GameServer ports, as the Fleet's pod template declares them:
/// `udp-0` .. `udp-<n-1>` for the UDP sockets in order, then these.
pub const WS_PORT_NAME: &str = "ws";
/// The HTTP API's port name (joins, and the 307s that name this instance).
pub const HTTP_PORT_NAME: &str = "http";

/// The counter of open sessions.
pub const SESSIONS_COUNTER: &str = "sessions";
/// The counter of connected players.
pub const PLAYERS_COUNTER: &str = "players";

/// The name of UDP socket `index`'s port.
pub fn udp_port_name(index: usize) -> String {
    format!("udp-{index}")
}

/// Why the Agones integration could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgonesError {
    /// A call failed for good, or the sidecar never answered.
    #[error(transparent)]
    Sdk(#[from] SdkError),
    /// The GameServer lacks what the server needs to advertise itself.
    #[error(
        "the GameServer has no port named `{name}` (it has: {present}); name the Fleet's ports \
         udp-0 .. udp-N, ws and http"
    )]
    MissingPort {
        /// The port name looked for.
        name: String,
        /// The names it has.
        present: String,
    },
    /// `status.address` is not an IP and does not resolve.
    #[error("the GameServer's address `{address}` does not resolve: {reason}")]
    Unresolvable {
        /// The address as given.
        address: String,
        /// Why.
        reason: String,
    },
}

/// Where the GameServer says clients reach this pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GameServerAddress {
    /// `status.address` as given (an IP or a host name), for URLs.
    pub host: String,
    /// The address resolved to an IP, for connect tokens.
    pub ip: IpAddr,
    /// `status.ports`: name to the port clients dial.
    pub ports: BTreeMap<String, u16>,
}

impl GameServerAddress {
    /// `host:port` for a URL (IPv6 in brackets).
    fn authority(&self, port: u16) -> String {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{}:{port}", self.host),
        }
    }

    /// What clients dial for each of `sockets` UDP sockets.
    ///
    /// # Errors
    /// A `udp-<i>` port is missing.
    pub fn udp(&self, sockets: usize) -> Result<Vec<SocketAddr>, AgonesError> {
        (0..sockets)
            .map(|index| Ok(SocketAddr::new(self.ip, self.port(&udp_port_name(index))?)))
            .collect()
    }

    /// `ws://host:port` of the `ws` port.
    ///
    /// # Errors
    /// The port is missing.
    pub fn ws_base(&self) -> Result<String, AgonesError> {
        Ok(format!("ws://{}", self.authority(self.port(WS_PORT_NAME)?)))
    }

    /// `http://host:port` of the `http` port.
    ///
    /// # Errors
    /// The port is missing.
    pub fn http_base(&self) -> Result<String, AgonesError> {
        Ok(format!(
            "http://{}",
            self.authority(self.port(HTTP_PORT_NAME)?)
        ))
    }

    fn port(&self, name: &str) -> Result<u16, AgonesError> {
        self.ports
            .get(name)
            .copied()
            .ok_or_else(|| AgonesError::MissingPort {
                name: name.to_owned(),
                present: self.ports.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }
}

/// Reads `status.address` and `status.ports` of a GameServer answer; `None`
/// while Agones has not filled them in (before the pod is scheduled).
fn parse_status(game_server: &Value) -> Option<(String, BTreeMap<String, u16>)> {
    let status = game_server.get("status")?;
    let address = status.get("address")?.as_str()?.trim();
    if address.is_empty() {
        return None;
    }
    let ports = status
        .get("ports")?
        .as_array()?
        .iter()
        .filter_map(|port| {
            let name = port.get("name")?.as_str()?;
            // int32 travels as a number; accept a string too, as gRPC-gateway
            // does for int64.
            let number = port.get("port")?;
            let number = number.as_u64().or_else(|| number.as_str()?.parse().ok())?;
            Some((name.to_owned(), u16::try_from(number).ok()?))
        })
        .collect::<BTreeMap<_, _>>();
    (!ports.is_empty()).then(|| (address.to_owned(), ports))
}

/// The server's side of Agones, over any [`Sidecar`].
pub struct Agones<S: Sidecar = HttpSidecar> {
    sidecar: Arc<S>,
}

impl<S: Sidecar> Clone for Agones<S> {
    fn clone(&self) -> Self {
        Self {
            sidecar: self.sidecar.clone(),
        }
    }
}

impl<S: Sidecar> Agones<S> {
    /// The integration over `sidecar`.
    pub fn new(sidecar: S) -> Self {
        Self {
            sidecar: Arc::new(sidecar),
        }
    }

    /// Reads the GameServer until Agones has given it an address and ports,
    /// retrying while the sidecar starts.
    ///
    /// # Errors
    /// The sidecar refuses, or gives no address within a minute.
    pub async fn address(&self) -> Result<GameServerAddress, AgonesError> {
        let started = tokio::time::Instant::now();
        let (host, ports) = loop {
            let remaining = STARTUP_PATIENCE.saturating_sub(started.elapsed());
            let game_server = call_with_retry(&*self.sidecar, &Call::GameServer, remaining).await?;
            if let Some(found) = parse_status(&game_server) {
                break found;
            }
            if started.elapsed() >= STARTUP_PATIENCE {
                return Err(AgonesError::MissingPort {
                    name: "any".to_owned(),
                    present: "none: status.address and status.ports stayed empty".to_owned(),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        let ip = match host.parse() {
            Ok(ip) => ip,
            Err(_) => tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|error| error.to_string())
                .and_then(|mut found| {
                    found
                        .next()
                        .map(|address| address.ip())
                        .ok_or_else(|| "no addresses".to_owned())
                })
                .map_err(|reason| AgonesError::Unresolvable {
                    address: host.clone(),
                    reason,
                })?,
        };
        Ok(GameServerAddress { host, ip, ports })
    }

    /// Labels the GameServer, then tells Agones it is ready for players.
    /// Call once every listener is bound and content is loaded.
    ///
    /// # Errors
    /// The sidecar refuses, or does not answer within a minute.
    pub async fn ready(&self, labels: &[(String, String)]) -> Result<(), SdkError> {
        for (key, value) in labels {
            let call = Call::SetLabel {
                key: key.clone(),
                value: value.clone(),
            };
            // A label is a convenience for selectors: a refused one (an
            // invalid value) must not keep the server from Ready.
            if let Err(error) = call_with_retry(&*self.sidecar, &call, STARTUP_PATIENCE).await {
                count_error(&call);
                tracing::warn!(%error, key, "cannot set an Agones label");
            }
        }
        call_with_retry(&*self.sidecar, &Call::Ready, STARTUP_PATIENCE).await?;
        tracing::info!("Agones: Ready");
        Ok(())
    }

    /// Pings `Health` every [`HEALTH_PERIOD`] while the host's tick thread
    /// advances. The pings come from a tokio task, so a busy tick cannot
    /// starve them, and stop when the tick thread is stuck, so Agones
    /// replaces a wedged server.
    pub fn keep_healthy(&self, host: HostHandle) -> tokio::task::JoinHandle<()> {
        let sidecar = self.sidecar.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(HEALTH_PERIOD);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_tick = None;
            let mut stalled = false;
            loop {
                every.tick().await;
                let tick = host.status().tick;
                if last_tick == Some(tick) {
                    if !stalled {
                        tracing::error!(
                            tick,
                            "the tick thread has not advanced for {HEALTH_PERIOD:?}: \
                             withholding Agones health pings"
                        );
                    }
                    stalled = true;
                    continue;
                }
                if stalled {
                    tracing::warn!(tick, "the tick thread advances again: health pings resume");
                    stalled = false;
                }
                last_tick = Some(tick);
                if let Err(error) = sidecar.call(&Call::Health).await {
                    count_error(&Call::Health);
                    tracing::warn!(%error, "Agones health ping failed");
                }
            }
        })
    }

    /// Keeps the `sessions` and `players` counters equal to the host's open
    /// sessions and connected players; capacities are set first.
    pub fn keep_counters(&self, host: HostHandle) -> tokio::task::JoinHandle<()> {
        let sidecar = self.sidecar.clone();
        tokio::spawn(async move {
            let max_sessions = i64::try_from(host.status().max_sessions).unwrap_or(i64::MAX);
            let capacities = [
                (SESSIONS_COUNTER, max_sessions),
                (
                    PLAYERS_COUNTER,
                    max_sessions.saturating_mul(i64::from(rampart_sim::MAX_PLAYERS)),
                ),
            ];
            for (name, capacity) in capacities {
                let call = Call::SetCounter {
                    name,
                    count: None,
                    capacity: Some(capacity),
                };
                if let Err(error) = call_with_retry(&*sidecar, &call, STARTUP_PATIENCE).await {
                    count_error(&call);
                    tracing::warn!(%error, counter = name, "cannot set an Agones counter's capacity");
                }
            }
            let mut sent: [Option<i64>; 2] = [None, None];
            let mut every = tokio::time::interval(COUNTER_PERIOD);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let status = host.status();
                let counts = [
                    (SESSIONS_COUNTER, status.lobby + status.running),
                    (PLAYERS_COUNTER, status.players_connected),
                ];
                // An empty server says Ready again: Agones never scales down
                // or replaces an Allocated GameServer, so without this a
                // fleet would keep every server it ever allocated.
                // Not while draining: the server is on its way out.
                let open = counts[0].1;
                if open == 0 && !status.draining && sent[0].is_some_and(|before| before > 0) {
                    match sidecar.call(&Call::Ready).await {
                        Ok(_) => tracing::info!("Agones: empty again, Ready"),
                        Err(error) => {
                            count_error(&Call::Ready);
                            tracing::warn!(%error, "cannot return to Ready when empty");
                        }
                    }
                }
                for ((name, count), sent) in counts.into_iter().zip(&mut sent) {
                    let count = i64::try_from(count).unwrap_or(i64::MAX);
                    if *sent == Some(count) {
                        continue;
                    }
                    let call = Call::SetCounter {
                        name,
                        count: Some(count),
                        capacity: None,
                    };
                    match sidecar.call(&call).await {
                        Ok(_) => *sent = Some(count),
                        // Tried again next period: the count is a level, not a
                        // difference, so a lost update heals itself.
                        Err(error) => {
                            count_error(&call);
                            tracing::warn!(%error, counter = name, "cannot update an Agones counter");
                        }
                    }
                }
            }
        })
    }

    /// Tells Agones the server is done (after a drain handed every session
    /// over), so the GameServer is deleted.
    ///
    /// # Errors
    /// The sidecar refuses or does not answer within `patience`.
    pub async fn shutdown(&self, patience: Duration) -> Result<(), SdkError> {
        call_with_retry(&*self.sidecar, &Call::Shutdown, patience)
            .await
            .map(|_| tracing::info!("Agones: Shutdown"))
            .inspect_err(|_| count_error(&Call::Shutdown))
    }
}

/// The labels a rampart GameServer carries (`agones.dev/sdk-<key>`), so
/// allocations and dashboards can select by version and map.
pub fn labels(
    content_version: u64,
    maps: impl IntoIterator<Item = String>,
) -> Vec<(String, String)> {
    let mut labels = vec![
        ("version".to_owned(), env!("CARGO_PKG_VERSION").to_owned()),
        ("content".to_owned(), format!("{content_version:016x}")),
    ];
    for map in maps {
        let key: String = map
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .take(48)
            .collect();
        labels.push((format!("map-{}", key.trim_matches('-')), "true".to_owned()));
    }
    labels
}

fn count_error(call: &Call) {
    metrics::counter!("rampart_agones_errors_total", "call" => call.name()).increment(1);
}

#[cfg(test)]
mod tests;
