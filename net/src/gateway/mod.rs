//! The gateway, where game clients meet the game: one renet server behind several UDP
//! sockets and a WebSocket listener, run by one `rampart-net` thread.
//!
//! The loop owns every connection. It turns client messages into commands
//! for the game ([`GameLink`]), and turns what the game publishes
//! ([`Feed`]: snapshots, events, endings) into messages: per session it
//! tracks the wire world ([`WorldTracker`]) and keeps a ring of recent
//! worlds; each client gets a delta against the last world it acknowledged
//! (over a WebSocket, the last one written to it), or a full one, and one
//! encoding serves every client with the same baseline. None of this runs
//! on the tick thread.

mod connection;
mod datagrams;
mod intake;
mod messages;
mod net_loop;
mod session;
mod socket;
#[cfg(test)]
mod tests;
mod udp;
mod wait;
mod wake;
mod ws;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_sim::{Command, Event, Rejection, Snapshot};
use renet::{RenetServer, ServerEvent};
use tungstenite::Bytes;

use crate::bundle::{self, MAX_SNAPSHOT_SLOT, Slot};
use crate::protocol::{
    self, AbuseKind, ByeReason, CHANNEL_RELIABLE, CHANNEL_SNAPSHOT, ClientMessage, EndReason,
    MAX_CHAT_BYTES, MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, Welcome, WireEvent,
    WireRejection,
};
use crate::snapshot::{self, NetWorld, SnapshotRing, WorldTracker};
use crate::tickets::{Access, Grant, SeatRef, TicketError, TicketKey};
use udp::{UdpCounters, UdpEvent, UdpTransport};
use wait::{SnapshotWaitReading, SnapshotWaits};
use wake::{Nudge, NudgingSender};
use ws::{WsEvent, WsTransport};

use connection::{Connection, Outgoing, TokenBucket, Via};
use intake::Delivered;
use net_loop::{Attention, Hosted, NetLoop};
use session::{Encoding, SessionNet, send_world};

/// Abuse limits. Defaults are documented in `docs/PROTOCOL.md`.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Commands (and chat lines) a client may send per second, sustained.
    pub commands_per_second: f64,
    /// Commands a client may send in a burst.
    pub command_burst: f64,
    /// Rate-limited commands within about ten seconds before the client is
    /// disconnected for flooding.
    pub flood_strikes: u32,
    /// Malformed or oversized messages within about ten seconds before the
    /// client is disconnected.
    pub malformed_strikes: u32,
    /// A WebSocket client silent this long is dropped (netcode times UDP
    /// clients out itself).
    pub idle_timeout: Duration,
    /// Spectators one session may have at once; one more is told
    /// [`ByeReason::SpectatorsFull`].
    pub max_spectators: u16,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            commands_per_second: 10.0,
            command_burst: 20.0,
            flood_strikes: 50,
            malformed_strikes: 10,
            idle_timeout: Duration::from_secs(10),
            max_spectators: DEFAULT_MAX_SPECTATORS,
        }
    }
}

/// Spectators per session unless configured: a stream's worth of
/// watchers costs the net thread what as many players do (one encoding per
/// distinct baseline), so the default stays modest.
pub const DEFAULT_MAX_SPECTATORS: u16 = 32;

/// How the net server runs.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// First UDP socket; extra sockets take the following ports.
    pub udp_addr: SocketAddr,
    /// How many UDP sockets (each serves up to 1,024 clients).
    pub udp_sockets: usize,
    /// What clients dial for each socket (written into connect tokens).
    pub advertise: UdpAdvertise,
    /// Bytes of kernel receive buffer asked for each UDP socket.
    pub udp_receive_buffer: usize,
    /// Snapshots per second sent to each client.
    pub snapshot_hz: u32,
    /// The simulation rate, told to clients.
    pub tick_hz: u32,
    /// Abuse limits.
    pub limits: Limits,
}

/// Where clients reach the UDP sockets: netcode accepts a connection only
/// when the client's token names the address the socket advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UdpAdvertise {
    /// Each socket's bound address, with this IP in place of the bound one
    /// (`None`: the bound IP, or 127.0.0.1 when bound to every interface).
    Bound(Option<IpAddr>),
    /// One address per socket, in order, as clients reach it through NAT, a
    /// hostPort or Agones' port allocation.
    Given(Vec<SocketAddr>),
}

impl UdpAdvertise {
    /// What clients dial for socket `index`, bound at `bound`.
    fn address(&self, index: usize, bound: SocketAddr) -> SocketAddr {
        match self {
            UdpAdvertise::Given(addresses) => addresses.get(index).copied().unwrap_or(bound),
            UdpAdvertise::Bound(ip) => public_address(bound, *ip),
        }
    }
}

/// What the game publishes to the network, from the tick thread.
#[derive(Clone, Debug)]
pub enum Feed {
    /// A session is hosted here from now on.
    Opened {
        /// Session id.
        session: u64,
        /// Map key.
        map: Arc<str>,
        /// Seats.
        players: u8,
        /// The content version the session was built from, which its
        /// clients must match (a client's 0 accepts any) and are told in
        /// the welcome.
        content_version: u64,
    },
    /// The session's visible state at a snapshot tick.
    Snapshot {
        /// Session id.
        session: u64,
        /// The state.
        snapshot: Arc<Snapshot>,
        /// When the tick queued it: the loop measures how long snapshots
        /// wait for it ([`FeedSender::snapshot_wait_p99`]).
        queued: Instant,
    },
    /// The result of one command submitted through [`GameLink::submit`].
    Answer {
        /// Session id.
        session: u64,
        /// The seat that sent it.
        player: u8,
        /// Who sent it, as given to `submit`.
        origin: CommandOrigin,
        /// `Ok` when applied.
        result: Result<(), Rejection>,
    },
    /// The events of one tick (command results excepted: those are
    /// [`Feed::Answer`]s).
    Events {
        /// Session id.
        session: u64,
        /// The tick.
        tick: u64,
        /// In order.
        events: Arc<[Event]>,
    },
    /// The session ended, and why.
    Ended {
        /// Session id.
        session: u64,
        /// Why.
        reason: EndReason,
    },
    /// The server is draining: every client is told.
    Draining,
}

/// Who sent a command: the connection and the client's `seq`. The game
/// hands it back with the command's result ([`Feed::Answer`]), so a result
/// reaches the connection that asked and carries its own `seq`, whatever
/// was lost or reordered in between.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommandOrigin {
    /// The connection (renet client id) the command came in on.
    pub client: u64,
    /// The client's number for the command.
    pub seq: u32,
}

/// What the net server needs from the game (the session host).
pub trait GameLink: Send + Sync + 'static {
    /// Queues a command for the seat's session. False when it could not be
    /// queued (the host is overloaded); the client is told. Once queued,
    /// the game answers it exactly once with a [`Feed::Answer`] carrying
    /// `origin` (or never, if that answer is lost on a full feed).
    fn submit(&self, seat: SeatRef, command: Command, origin: CommandOrigin) -> bool;
    /// A client for the seat has connected.
    fn connected(&self, seat: SeatRef);
    /// The seat's client has gone (its reconnect grace starts).
    fn disconnected(&self, seat: SeatRef);
    /// The session now has `count` spectators connected. A watched session
    /// must publish its snapshots and events even with nobody seated;
    /// spectators never hold a seat nor keep a session alive.
    fn watchers(&self, session: u64, count: u16);
}

/// The queue from the game to the net loop. The game only ever
/// `try_send`s: the tick never blocks on the network.
pub fn feed_channel() -> (FeedSender, FeedReceiver) {
    let (sender, receiver) = sync_channel(FEED_QUEUE);
    let nudge = Arc::new(Nudge::default());
    let waits = SnapshotWaitReading::default();
    (
        FeedSender {
            queue: NudgingSender::new(sender, nudge.clone()),
            waits: waits.clone(),
        },
        FeedReceiver {
            receiver,
            nudge,
            waits,
        },
    )
}

/// The game's end of [`feed_channel`]: queuing wakes the net loop, and the
/// loop says how long snapshots wait for it.
#[derive(Clone)]
pub struct FeedSender {
    queue: NudgingSender<Feed>,
    waits: SnapshotWaitReading,
}

impl FeedSender {
    /// Queues `feed` without waiting; a full queue gives it back.
    ///
    /// # Errors
    /// The queue is full (or the net loop has gone).
    pub fn try_send(&self, feed: Feed) -> Result<(), TrySendError<Feed>> {
        self.queue.try_send(feed)
    }

    /// The 99th percentile, over the net loop's last full second, of how
    /// long a snapshot waited between [`Self::try_send`] and the loop
    /// taking it (zero before the loop has measured a second with any).
    /// Longer than a snapshot period, clients get fewer snapshots than
    /// their rate.
    pub fn snapshot_wait_p99(&self) -> Duration {
        self.waits.p99()
    }
}

/// The net loop's end of [`feed_channel`], with the doorbell its senders
/// ring.
pub struct FeedReceiver {
    receiver: Receiver<Feed>,
    nudge: Arc<Nudge>,
    waits: SnapshotWaitReading,
}

impl FeedReceiver {
    /// What waits in the queue, taken without waiting: for tests of what a
    /// game publishes, without a net loop.
    pub fn try_iter(&self) -> impl Iterator<Item = Feed> + '_ {
        self.receiver.try_iter()
    }

    /// Reports snapshots waiting `p99` for the net loop, as a loop does
    /// once a second: for tests of a game's answer to a slow network,
    /// without a net loop.
    pub fn report_snapshot_wait(&self, p99: Duration) {
        self.waits.report(p99);
    }
}

/// How many feed items may wait for the net loop; the tick thread never
/// blocks on a full queue (a dropped snapshot is replaced by the next).
const FEED_QUEUE: usize = 65_536;
/// Live counts for `/ready`, metrics and tests.
#[derive(Default)]
pub struct NetStats {
    /// Clients connected over UDP.
    pub udp_clients: AtomicUsize,
    /// Clients connected over WebSocket.
    pub ws_clients: AtomicUsize,
    /// Wire bytes received.
    pub bytes_in: AtomicU64,
    /// Wire bytes sent.
    pub bytes_out: AtomicU64,
    /// Spectators connected, every session together.
    pub spectators: AtomicUsize,
}

/// The socket grant number `grant` names first, of `sockets`. Not
/// `grant % sockets`: a grant does not say which transport its client will
/// take, and clients that alternate UDP and WebSocket (as the load
/// generator's do) would then put every UDP client on every other socket,
/// where netcode turns away the 1,025th while the others stand empty. The
/// grant number scrambled by Fibonacci hashing spreads any such pattern
/// evenly (the multiples of the golden ratio are equidistributed, every
/// other one too).
fn first_socket(grant: usize, sockets: usize) -> usize {
    let scrambled = (grant as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    (scrambled % sockets.max(1) as u64) as usize
}

/// The running net server.
pub struct NetHandle {
    key: Arc<TicketKey>,
    max_spectators: u16,
    udp_addresses: Vec<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    next_socket: AtomicUsize,
    stop: Arc<AtomicBool>,
    stats: Arc<NetStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetHandle {
    /// Binds the UDP sockets and starts the net thread, which also serves
    /// the WebSocket listener if one is given.
    ///
    /// # Errors
    /// A UDP socket cannot be bound, or the thread cannot start.
    pub fn start(
        config: NetConfig,
        key: Arc<TicketKey>,
        link: Arc<dyn GameLink>,
        feed: FeedReceiver,
        ws_listener: Option<std::net::TcpListener>,
    ) -> io::Result<Self> {
        let started = crate::tickets::since_epoch();
        let netcode_key = key.netcode_key();
        if let UdpAdvertise::Given(addresses) = &config.advertise
            && addresses.len() != config.udp_sockets.max(1)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} advertised UDP addresses for {} sockets: give one per socket",
                    addresses.len(),
                    config.udp_sockets.max(1)
                ),
            ));
        }
        let mut transports = Vec::with_capacity(config.udp_sockets.max(1));
        for index in 0..config.udp_sockets.max(1) {
            let mut address = config.udp_addr;
            // Port 0 asks for ephemeral ports, one per socket.
            if index > 0 && address.port() != 0 {
                let port = config
                    .udp_addr
                    .port()
                    .checked_add(index as u16)
                    .ok_or_else(|| {
                        io::Error::other(format!(
                            "UDP port {} + {index} overflows",
                            config.udp_addr.port()
                        ))
                    })?;
                address.set_port(port);
            }
            let public = |bound| config.advertise.address(index, bound);
            let transport = UdpTransport::bind(
                address,
                config.udp_receive_buffer,
                udp::MAX_CLIENTS_PER_SOCKET,
                public,
                netcode_key,
                started,
            )
            .map_err(|error| {
                io::Error::new(error.kind(), format!("binding UDP {address}: {error}"))
            })?;
            transports.push(transport);
        }
        let granted = transports
            .iter()
            .map(UdpTransport::receive_buffer)
            .min()
            .unwrap_or(0);
        if granted < config.udp_receive_buffer {
            tracing::warn!(
                asked = config.udp_receive_buffer,
                granted,
                "the kernel capped the UDP receive buffers (net.core.rmem_max): datagrams \
                 that come while the net thread is off the CPU may be dropped (counted as \
                 rampart_net_dropped_total{{reason=\"udp_buffer_full\"}}); raise \
                 net.core.rmem_max to at least the asked size"
            );
        }
        let udp_addresses = transports.iter().map(UdpTransport::public_addr).collect();
        let ws = ws_listener
            .map(|listener| WsTransport::new(listener, key.clone()))
            .transpose()?;
        let ws_addr = ws.as_ref().map(WsTransport::local_addr).transpose()?;
        let max_spectators = config.limits.max_spectators;
        let net_loop = NetLoop::new(config, link, feed, ws, transports)?;
        let stop = net_loop.stop.clone();
        let stats = net_loop.stats.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-net".into())
            .spawn(move || net_loop.run())?;
        Ok(Self {
            key,
            max_spectators,
            udp_addresses,
            ws_addr,
            next_socket: AtomicUsize::new(0),
            stop,
            stats,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// The UDP addresses clients are given.
    pub fn udp_addresses(&self) -> &[SocketAddr] {
        &self.udp_addresses
    }

    /// The bound WebSocket address, if any.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// Live counts.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// Tokens for a seat or a spectator. The token lists every socket,
    /// starting with the chosen one ([`first_socket`]). A client moves on
    /// to the next only when one does not answer within netcode's timeout:
    /// a full socket's "denied" ends the attempt, so the sockets must fill
    /// evenly.
    ///
    /// # Errors
    /// If netcode cannot build the token.
    pub fn grant(&self, access: Access) -> Result<Grant, TicketError> {
        let grant = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let first = first_socket(grant, self.udp_addresses.len());
        let mut addresses = self.udp_addresses.clone();
        addresses.rotate_left(first);
        addresses.truncate(32);
        self.key.grant(access, addresses)
    }

    /// Spectators a session may have ([`Limits::max_spectators`]).
    pub fn max_spectators(&self) -> u16 {
        self.max_spectators
    }

    /// The key tickets are signed with.
    pub fn key(&self) -> &Arc<TicketKey> {
        &self.key
    }

    /// Says goodbye to every client, sends it, and stops the loop.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().ok().and_then(|mut thread| thread.take());
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

/// Where clients reach a socket bound at `bound`.
pub fn public_address(bound: SocketAddr, public_ip: Option<IpAddr>) -> SocketAddr {
    let ip = match public_ip {
        Some(ip) => ip,
        None if bound.ip().is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        None => bound.ip(),
    };
    SocketAddr::new(ip, bound.port())
}
