//! The game-facing network server: one renet server behind several UDP
//! sockets and a WebSocket listener, run by one `rampart-net` thread.
//!
//! The loop owns every connection. It turns client messages into commands
//! for the game ([`GameLink`]), and turns what the game publishes
//! ([`Feed`]: snapshots, events, endings) into messages: per session it
//! tracks the wire world ([`WorldTracker`]) and keeps a ring of recent
//! worlds; each client gets a delta against the last world it acknowledged
//! (or a full one), and one encoding serves every client with the same
//! baseline. None of this runs on the tick thread.

mod intake;
#[cfg(test)]
mod tests;
mod udp;
mod ws;

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rampart_sim::{Command, Event, Rejection, Snapshot};
use renet::{RenetServer, ServerEvent};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Bytes;

use crate::protocol::{
    self, AbuseKind, ByeReason, CHANNEL_RELIABLE, CHANNEL_SNAPSHOT, ClientMessage, EndReason,
    MAX_CHAT_BYTES, MAX_CLIENT_MESSAGE_BYTES, PROTOCOL_VERSION, ServerMessage, SnapshotAck,
    Welcome, WireEvent, WireRejection,
};
use crate::snapshot::{self, NetWorld, SnapshotRing, WorldTracker};
use crate::tickets::{Grant, SeatRef, TicketError, TicketKey};
use udp::{UdpCounters, UdpEvent, UdpTransport};
use ws::WsEvent;

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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            commands_per_second: 10.0,
            command_burst: 20.0,
            flood_strikes: 50,
            malformed_strikes: 10,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// How the net server runs.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// First UDP socket; extra sockets take the following ports.
    pub udp_addr: SocketAddr,
    /// How many UDP sockets (each serves up to 1,024 clients).
    pub udp_sockets: usize,
    /// What clients dial for each socket (written into connect tokens).
    pub advertise: UdpAdvertise,
    /// Snapshots per second sent to each client.
    pub snapshot_hz: u32,
    /// The simulation rate, told to clients.
    pub tick_hz: u32,
    /// The content version clients must match (0 from a client means any).
    pub content_version: u64,
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
    },
    /// The session's visible state at a snapshot tick.
    Snapshot {
        /// Session id.
        session: u64,
        /// The state.
        snapshot: Arc<Snapshot>,
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
}

/// The queue from the game to the net loop. The game only ever
/// `try_send`s: the tick never blocks on the network.
pub fn feed_channel() -> (SyncSender<Feed>, FeedReceiver) {
    let (sender, receiver) = sync_channel(FEED_QUEUE);
    (sender, FeedReceiver(receiver))
}

/// The net loop's end of [`feed_channel`].
pub struct FeedReceiver(Receiver<Feed>);

/// How many feed items may wait for the net loop; the tick thread never
/// blocks on a full queue (a dropped snapshot is replaced by the next).
const FEED_QUEUE: usize = 65_536;
/// WebSocket events waiting for the loop.
const WS_QUEUE: usize = 65_536;
/// A client that got nothing for this long is flushed anyway (acks,
/// resends, keep-alives).
const IDLE_FLUSH: Duration = Duration::from_millis(100);
/// How long an idle loop waits for the game before it polls the sockets
/// again, with clients connected: their datagrams wait at most this long.
const POLL_CONNECTED: Duration = Duration::from_millis(1);
/// The same with nobody connected, when the only traffic is a new client's
/// handshake: a connect answered 10 ms later costs nothing, while polling
/// every millisecond kept an empty server's net thread at 5% of a core.
const POLL_EMPTY: Duration = Duration::from_millis(10);
/// Messages read from one client per loop pass, so one flooder cannot
/// hold the loop.
const MESSAGES_PER_PASS: usize = 64;
/// Window over which strikes refill.
const STRIKE_WINDOW_SECONDS: f64 = 10.0;
/// WebSocket frame header plus TCP/IP headers, counted into wire bytes
/// (one segment per frame: Nagle is off).
const WS_OVERHEAD: u64 = 4 + 40;

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
}

/// The running net server.
pub struct NetHandle {
    key: Arc<TicketKey>,
    udp_addresses: Vec<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    next_socket: AtomicUsize,
    stop: Arc<AtomicBool>,
    stats: Arc<NetStats>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl NetHandle {
    /// Binds the UDP sockets, starts the net thread and (inside the current
    /// tokio runtime) the WebSocket listener.
    ///
    /// # Errors
    /// A UDP socket cannot be bound, or the thread cannot start.
    pub fn start(
        config: NetConfig,
        key: Arc<TicketKey>,
        link: Arc<dyn GameLink>,
        feed: FeedReceiver,
        ws_listener: Option<tokio::net::TcpListener>,
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
            let transport =
                UdpTransport::bind(address, public, netcode_key, started).map_err(|error| {
                    io::Error::new(error.kind(), format!("binding UDP {address}: {error}"))
                })?;
            transports.push(transport);
        }
        let udp_addresses = transports.iter().map(UdpTransport::public_addr).collect();
        let (ws_events, ws_queue) = sync_channel(WS_QUEUE);
        let ws_addr = match ws_listener {
            Some(listener) => {
                let address = listener.local_addr()?;
                tokio::spawn(ws::accept(listener, key.clone(), ws_events));
                Some(address)
            }
            None => None,
        };
        let net_loop = NetLoop::new(config, link, feed, ws_queue, transports);
        let stop = net_loop.stop.clone();
        let stats = net_loop.stats.clone();
        let thread = std::thread::Builder::new()
            .name("rampart-net".into())
            .spawn(move || net_loop.run())?;
        Ok(Self {
            key,
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

    /// Tokens for a seat. Sockets are handed out in turn; the token lists
    /// every socket, starting with the chosen one. A client moves on to the
    /// next only when one does not answer within netcode's timeout: a full
    /// socket's "denied" ends the attempt; handing sockets out in turn
    /// keeps them equally full.
    ///
    /// # Errors
    /// If netcode cannot build the token.
    pub fn grant(&self, seat: SeatRef) -> Result<Grant, TicketError> {
        let first = self.next_socket.fetch_add(1, Ordering::Relaxed) % self.udp_addresses.len();
        let mut addresses = self.udp_addresses.clone();
        addresses.rotate_left(first);
        addresses.truncate(32);
        self.key.grant(seat, addresses)
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

/// Sends a session's newest world, if it has not gone out yet, to each of
/// its clients: a delta against the world the client acknowledged (a full
/// one when that is unknown or out of the ring), encoded once per distinct
/// baseline.
fn send_world(
    net: &mut SessionNet,
    connections: &mut HashMap<u64, Connection>,
    renet: &mut RenetServer,
) {
    if !net.fresh {
        return;
    }
    net.fresh = false;
    let Some(latest) = net.ring.latest().cloned() else {
        return;
    };
    net.encoded.clear();
    for &client_id in &net.clients {
        let Some(connection) = connections.get_mut(&client_id) else {
            continue;
        };
        if !connection.welcomed || connection.closing || connection.acked == Some(latest.tick) {
            continue;
        }
        let base: Option<&Arc<NetWorld>> = connection
            .acked
            .and_then(|tick| net.ring.get(tick))
            .filter(|base| base.tick < latest.tick);
        let key = base.map(|base| base.tick);
        let bytes = match net.encoded.iter().find(|(baseline, _)| *baseline == key) {
            Some((_, bytes)) => bytes.clone(),
            None => {
                let mut out = Vec::with_capacity(256);
                snapshot::encode(base.map(|base| &**base), &latest, &mut out);
                let bytes = Bytes::from(out);
                net.encoded.push((key, bytes.clone()));
                bytes
            }
        };
        renet.send_message(client_id, CHANNEL_SNAPSHOT, bytes);
        connection.dirty = true;
        // A snapshot goes out at once, with whatever else is queued.
        connection.urgent = true;
    }
}

/// A client's way back.
enum Via {
    Udp(usize),
    /// The socket's number (events of any other socket presenting the same
    /// ticket are ignored) and its outbox.
    Ws {
        socket: u64,
        outbox: mpsc::Sender<Bytes>,
    },
}

impl Via {
    fn label(&self) -> &'static str {
        match self {
            Via::Udp(_) => "udp",
            Via::Ws { .. } => "ws",
        }
    }

    /// Whether this is WebSocket `socket`.
    fn is_socket(&self, socket: u64) -> bool {
        matches!(self, Via::Ws { socket: ours, .. } if *ours == socket)
    }
}

/// A refilling allowance.
struct TokenBucket {
    tokens: f64,
    capacity: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(capacity: f64, per_second: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            capacity,
            per_second,
            last: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Connection {
    seat: SeatRef,
    via: Via,
    welcomed: bool,
    /// Newest snapshot tick the client acknowledged.
    acked: Option<u64>,
    commands: TokenBucket,
    flood: TokenBucket,
    malformed: TokenBucket,
    last_heard: Instant,
    last_flush: Instant,
    /// Something waits that should not wait for the next snapshot.
    urgent: bool,
    /// Has messages queued since its last flush.
    dirty: bool,
    /// Said goodbye: disconnect after the next flush.
    closing: bool,
}

/// The network's view of one session.
struct SessionNet {
    tracker: WorldTracker,
    ring: SnapshotRing,
    clients: Vec<u64>,
    /// A new world arrived since the last send.
    fresh: bool,
    /// Encodings of the newest world by baseline tick, this round.
    encoded: Vec<(Option<u64>, Bytes)>,
}

impl SessionNet {
    fn new() -> Self {
        Self {
            tracker: WorldTracker::new(),
            ring: SnapshotRing::new(),
            clients: Vec::new(),
            fresh: false,
            encoded: Vec::new(),
        }
    }
}

/// Counts published to metrics about once a second.
#[derive(Default)]
struct Counters {
    udp: UdpCounters,
    ws_in: u64,
    ws_out: u64,
    dropped: HashMap<&'static str, u64>,
}

impl Counters {
    fn drop(&mut self, reason: &'static str) {
        self.drop_many(reason, 1);
    }

    fn drop_many(&mut self, reason: &'static str, count: u64) {
        if count > 0 {
            *self.dropped.entry(reason).or_default() += count;
        }
    }
}

struct NetLoop {
    renet: RenetServer,
    udp: Vec<UdpTransport>,
    feed: Receiver<Feed>,
    ws: Receiver<WsEvent>,
    link: Arc<dyn GameLink>,
    config: NetConfig,
    connections: HashMap<u64, Connection>,
    seats: HashMap<SeatRef, u64>,
    sessions: HashMap<u64, SessionNet>,
    /// Sessions hosted here: map key and seats, for the welcome.
    hosted: HashMap<u64, (Arc<str>, u8)>,
    /// WebSocket tickets already used, by client id, until they expire.
    used_tickets: HashMap<u64, u64>,
    udp_events: Vec<UdpEvent>,
    /// Reused for the client ids a pass walks, so passes do not allocate.
    client_ids: Vec<u64>,
    counters: Counters,
    stats: Arc<NetStats>,
    stop: Arc<AtomicBool>,
}

impl NetLoop {
    /// A loop over these transports (none in the in-process tests, which
    /// play the WebSocket side through `ws`).
    fn new(
        config: NetConfig,
        link: Arc<dyn GameLink>,
        feed: FeedReceiver,
        ws: Receiver<WsEvent>,
        udp: Vec<UdpTransport>,
    ) -> Self {
        NetLoop {
            renet: RenetServer::new(protocol::connection_config()),
            udp,
            feed: feed.0,
            ws,
            link,
            config,
            connections: HashMap::new(),
            seats: HashMap::new(),
            sessions: HashMap::new(),
            hosted: HashMap::new(),
            used_tickets: HashMap::new(),
            udp_events: Vec::new(),
            client_ids: Vec::new(),
            counters: Counters::default(),
            stats: Arc::new(NetStats::default()),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    fn run(mut self) {
        tracing::info!(
            udp = ?self.udp.iter().filter_map(|udp| udp.local_addr().ok()).collect::<Vec<_>>(),
            snapshot_hz = self.config.snapshot_hz,
            "net server running"
        );
        let mut last = Instant::now();
        let mut last_publish = last;
        while !self.stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            let elapsed = now - last;
            last = now;
            let busy = self.pass(now, elapsed);
            if now - last_publish >= Duration::from_secs(1) {
                self.publish_metrics();
                last_publish = now;
            }
            if !busy {
                // Nothing happened: wait for the game's next publication
                // or the poll interval, whichever comes first.
                let poll = if self.connections.is_empty() {
                    POLL_EMPTY
                } else {
                    POLL_CONNECTED
                };
                match self.feed.recv_timeout(poll) {
                    Ok(feed) => self.on_feed(feed),
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        self.goodbye();
        self.publish_metrics();
    }

    /// One pass of the loop; true when there was work.
    fn pass(&mut self, now: Instant, elapsed: Duration) -> bool {
        // 1. What the game published.
        let mut busy = self.drain_feed();
        // 2. Transports: datagrams, WebSocket frames, timeouts.
        self.renet.update(elapsed);
        for index in 0..self.udp.len() {
            let transport = &mut self.udp[index];
            transport.update(
                elapsed,
                &mut self.renet,
                &mut self.udp_events,
                &mut self.counters.udp,
            );
            busy |= transport.receive(
                &mut self.renet,
                &mut self.udp_events,
                &mut self.counters.udp,
            ) > 0;
            self.handle_udp_events(index, now);
        }
        busy |= self.receive_ws(now);
        while let Some(event) = self.renet.get_event() {
            if let ServerEvent::ClientDisconnected { client_id, reason } = event {
                tracing::info!(client_id, %reason, "client disconnected");
                self.forget(client_id);
            }
        }
        // 3. Client messages.
        let mut ids = std::mem::take(&mut self.client_ids);
        ids.clear();
        ids.extend(self.connections.keys());
        for &client_id in &ids {
            busy |= self.read_client(client_id, now);
        }
        self.client_ids = ids;
        // 4. Snapshots to everyone whose session moved, then flushes.
        self.send_snapshots();
        self.flush_due(now);
        // 5. Close what must close.
        self.close_disconnected(now);
        busy
    }

    /// Handles everything the game has published. True if there was any.
    fn drain_feed(&mut self) -> bool {
        let mut any = false;
        for _ in 0..FEED_QUEUE {
            match self.feed.try_recv() {
                Ok(feed) => {
                    any = true;
                    self.on_feed(feed);
                }
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        any
    }

    fn handle_udp_events(&mut self, index: usize, now: Instant) {
        let mut events = std::mem::take(&mut self.udp_events);
        for event in events.drain(..) {
            match event {
                UdpEvent::Connected { client_id, seat } => {
                    self.connected(client_id, seat, Via::Udp(index), now);
                }
                // renet reports it too; forgetting twice is harmless.
                UdpEvent::Disconnected { client_id } => self.forget(client_id),
            }
        }
        self.udp_events = events;
    }

    fn receive_ws(&mut self, now: Instant) -> bool {
        let mut busy = false;
        for _ in 0..WS_QUEUE {
            let event = match self.ws.try_recv() {
                Ok(event) => event,
                Err(_) => break,
            };
            busy = true;
            match event {
                WsEvent::Open {
                    ticket,
                    socket,
                    outbox,
                } => {
                    let unix_now = crate::tickets::since_epoch().as_secs();
                    self.used_tickets
                        .retain(|_, &mut expires| expires >= unix_now);
                    if self
                        .used_tickets
                        .insert(ticket.client_id, ticket.expires)
                        .is_some()
                        || self.connections.contains_key(&ticket.client_id)
                    {
                        self.counters.drop("ticket_replayed");
                        continue;
                    }
                    self.renet.add_connection(ticket.client_id);
                    let via = Via::Ws { socket, outbox };
                    self.connected(ticket.client_id, ticket.seat, via, now);
                }
                WsEvent::Packet {
                    client_id,
                    socket,
                    bytes,
                } => {
                    self.counters.ws_in += bytes.len() as u64 + WS_OVERHEAD;
                    if let Some(connection) = self.connections.get_mut(&client_id)
                        && connection.via.is_socket(socket)
                    {
                        connection.last_heard = now;
                        let refused = intake::deliver(&mut self.renet, client_id, &bytes);
                        self.counters.drop_many("malformed", refused);
                    }
                }
                WsEvent::Dropped { reason } => self.counters.drop(reason),
                WsEvent::Closed { client_id, socket } => {
                    if self
                        .connections
                        .get(&client_id)
                        .is_some_and(|connection| connection.via.is_socket(socket))
                    {
                        self.renet.remove_connection(client_id);
                    }
                }
            }
        }
        busy
    }

    /// A transport finished its handshake for `seat`.
    fn connected(&mut self, client_id: u64, seat: SeatRef, via: Via, now: Instant) {
        // A session opens before its join is answered, but a WebSocket can
        // connect within one pass of the loop: its opening may be waiting.
        if !self.hosted.contains_key(&seat.session) {
            self.drain_feed();
        }
        if !self.hosted.contains_key(&seat.session) {
            // A token for a session that ended (or lives elsewhere).
            tracing::info!(
                client_id,
                session = format_args!("{:016x}", seat.session),
                "connection for a session not hosted here"
            );
            self.counters.drop("unknown_session");
            self.connections
                .insert(client_id, self.connection(seat, via, now));
            self.say_bye(client_id, ByeReason::SessionEnded(EndReason::Gone));
            return;
        }
        if let Some(previous) = self.seats.insert(seat, client_id) {
            // The player came back before the old connection timed out.
            self.say_bye(previous, ByeReason::Replaced);
        }
        let label = via.label();
        self.connections
            .insert(client_id, self.connection(seat, via, now));
        let session = self
            .sessions
            .entry(seat.session)
            .or_insert_with(SessionNet::new);
        session.clients.push(client_id);
        self.link.connected(seat);
        tracing::info!(
            client_id,
            session = format_args!("{:016x}", seat.session),
            player = seat.player,
            transport = label,
            "client connected"
        );
    }

    fn connection(&self, seat: SeatRef, via: Via, now: Instant) -> Connection {
        let limits = &self.config.limits;
        let strikes = |count: u32| {
            TokenBucket::new(
                f64::from(count),
                f64::from(count) / STRIKE_WINDOW_SECONDS,
                now,
            )
        };
        Connection {
            seat,
            via,
            welcomed: false,
            acked: None,
            commands: TokenBucket::new(limits.command_burst, limits.commands_per_second, now),
            flood: strikes(limits.flood_strikes),
            malformed: strikes(limits.malformed_strikes),
            last_heard: now,
            last_flush: now,
            urgent: false,
            dirty: false,
            closing: false,
        }
    }

    /// Drops everything known about a client that is gone.
    fn forget(&mut self, client_id: u64) {
        let Some(connection) = self.connections.remove(&client_id) else {
            return;
        };
        let seat = connection.seat;
        if let Some(session) = self.sessions.get_mut(&seat.session) {
            session.clients.retain(|&id| id != client_id);
        }
        if self.seats.get(&seat) == Some(&client_id) {
            self.seats.remove(&seat);
            self.link.disconnected(seat);
        }
    }

    /// Queues a message for a client.
    fn send(&mut self, client_id: u64, message: &ServerMessage, urgent: bool) {
        if let Some(connection) = self.connections.get_mut(&client_id) {
            self.renet
                .send_message(client_id, CHANNEL_RELIABLE, protocol::encode(message));
            connection.dirty = true;
            connection.urgent |= urgent;
        }
    }

    fn say_bye(&mut self, client_id: u64, reason: ByeReason) {
        self.send(client_id, &ServerMessage::Bye { reason }, true);
        if let Some(connection) = self.connections.get_mut(&client_id) {
            connection.closing = true;
        }
    }

    fn strike(&mut self, client_id: u64, reason: &'static str, now: Instant) {
        self.counters.drop(reason);
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        let (bucket, kind) = if reason == "rate_limited" {
            (&mut connection.flood, AbuseKind::Flood)
        } else {
            (&mut connection.malformed, AbuseKind::Malformed)
        };
        if !bucket.take(now) && !connection.closing {
            tracing::warn!(client_id, %kind, "disconnecting an abusive client");
            self.counters.drop(match kind {
                AbuseKind::Flood => "flood_disconnect",
                AbuseKind::Malformed => "malformed_disconnect",
            });
            self.say_bye(client_id, ByeReason::Abuse(kind));
        }
    }

    /// Reads a client's waiting messages. True when there were any.
    fn read_client(&mut self, client_id: u64, now: Instant) -> bool {
        let mut read = false;
        for _ in 0..MESSAGES_PER_PASS {
            let Some(bytes) = self.renet.receive_message(client_id, CHANNEL_SNAPSHOT) else {
                break;
            };
            read = true;
            match protocol::decode::<SnapshotAck>(&bytes, MAX_CLIENT_MESSAGE_BYTES) {
                Ok(ack) => {
                    if let Some(connection) = self.connections.get_mut(&client_id) {
                        connection.last_heard = now;
                        connection.acked = connection.acked.max(Some(ack.tick));
                    }
                }
                Err(_) => self.strike(client_id, "malformed", now),
            }
        }
        for _ in 0..MESSAGES_PER_PASS {
            let Some(bytes) = self.renet.receive_message(client_id, CHANNEL_RELIABLE) else {
                break;
            };
            read = true;
            if let Some(connection) = self.connections.get_mut(&client_id) {
                connection.last_heard = now;
            }
            match protocol::decode::<ClientMessage>(&bytes, MAX_CLIENT_MESSAGE_BYTES) {
                Ok(message) => self.on_message(client_id, message, now),
                Err(protocol::WireError::Oversized { .. }) => {
                    self.strike(client_id, "oversized", now)
                }
                Err(_) => self.strike(client_id, "malformed", now),
            }
        }
        read
    }

    fn on_message(&mut self, client_id: u64, message: ClientMessage, now: Instant) {
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        if connection.closing {
            return;
        }
        let seat = connection.seat;
        match message {
            ClientMessage::Hello {
                protocol,
                content_version,
            } => {
                if protocol != PROTOCOL_VERSION {
                    self.say_bye(
                        client_id,
                        ByeReason::ProtocolMismatch {
                            server: PROTOCOL_VERSION,
                        },
                    );
                } else if content_version != 0 && content_version != self.config.content_version {
                    self.say_bye(
                        client_id,
                        ByeReason::ContentMismatch {
                            server: self.config.content_version,
                        },
                    );
                } else if let Some((map, players)) = self.hosted.get(&seat.session).cloned() {
                    connection.welcomed = true;
                    connection.acked = None;
                    let welcome = Welcome {
                        protocol: PROTOCOL_VERSION,
                        session: seat.session,
                        player: seat.player,
                        players,
                        map: map.to_string(),
                        content_version: self.config.content_version,
                        tick_hz: self.config.tick_hz as u16,
                        snapshot_hz: self.config.snapshot_hz as u16,
                    };
                    self.send(client_id, &ServerMessage::Welcome(welcome), true);
                    // The newest world goes out at once, not at the next snapshot.
                    if let Some(session) = self.sessions.get_mut(&seat.session) {
                        session.fresh |= session.ring.latest().is_some();
                    }
                } else {
                    self.say_bye(client_id, ByeReason::SessionEnded(EndReason::Gone));
                }
            }
            ClientMessage::Command { seq, command } => {
                let result = if !connection.welcomed {
                    Err(WireRejection::NotJoined)
                } else if !connection.commands.take(now) {
                    self.strike(client_id, "rate_limited", now);
                    Err(WireRejection::RateLimited)
                } else if let Some(command) = command.to_command() {
                    let origin = CommandOrigin {
                        client: client_id,
                        seq,
                    };
                    if self.link.submit(seat, command, origin) {
                        return;
                    }
                    self.counters.drop("server_busy");
                    Err(WireRejection::ServerBusy)
                } else {
                    self.strike(client_id, "malformed", now);
                    Err(WireRejection::Malformed)
                };
                self.send(
                    client_id,
                    &ServerMessage::CommandResult { seq, result },
                    true,
                );
            }
            ClientMessage::Chat { text } => {
                if !connection.welcomed {
                    return;
                }
                if text.len() > MAX_CHAT_BYTES {
                    self.strike(client_id, "oversized", now);
                    return;
                }
                if !connection.commands.take(now) {
                    self.strike(client_id, "rate_limited", now);
                    return;
                }
                let line = ServerMessage::Chat {
                    player: seat.player,
                    text,
                };
                let clients = self
                    .sessions
                    .get(&seat.session)
                    .map(|session| session.clients.clone())
                    .unwrap_or_default();
                for other in clients {
                    self.send(other, &line, false);
                }
            }
            ClientMessage::Leave => {
                connection.closing = true;
                connection.urgent = true;
            }
        }
    }

    fn on_feed(&mut self, feed: Feed) {
        match feed {
            Feed::Opened {
                session,
                map,
                players,
            } => {
                self.hosted.insert(session, (map, players));
            }
            Feed::Snapshot { session, snapshot } => {
                let net = self.sessions.entry(session).or_insert_with(SessionNet::new);
                let world = net.tracker.observe(&snapshot);
                net.ring.push(Arc::new(world.clone()));
                net.fresh = true;
            }
            Feed::Answer {
                session,
                player,
                origin,
                result,
            } => self.on_answer(SeatRef { session, player }, origin, result),
            Feed::Events {
                session,
                tick,
                events,
            } => self.on_events(session, tick, &events),
            Feed::Ended { session, reason } => {
                self.hosted.remove(&session);
                if let Some(mut net) = self.sessions.remove(&session) {
                    // The deciding tick's world goes out with the goodbye.
                    send_world(&mut net, &mut self.connections, &mut self.renet);
                    for client_id in net.clients {
                        if let Some(connection) = self.connections.get(&client_id) {
                            self.seats.remove(&connection.seat);
                        }
                        self.say_bye(client_id, ByeReason::SessionEnded(reason));
                    }
                }
            }
            Feed::Draining => {
                let ids: Vec<u64> = self.connections.keys().copied().collect();
                for client_id in ids {
                    self.send(
                        client_id,
                        &ServerMessage::Event {
                            tick: 0,
                            event: WireEvent::Draining,
                        },
                        true,
                    );
                }
            }
        }
    }

    /// Gives a command's result to the connection that sent it, if that
    /// connection still holds the seat; otherwise the result is lost for
    /// that client, and never given to another.
    fn on_answer(&mut self, seat: SeatRef, origin: CommandOrigin, result: Result<(), Rejection>) {
        if self.seats.get(&seat) != Some(&origin.client) {
            return;
        }
        let message = ServerMessage::CommandResult {
            seq: origin.seq,
            result: result.map_err(WireRejection::Game),
        };
        self.send(origin.client, &message, true);
    }

    fn on_events(&mut self, session: u64, tick: u64, events: &[Event]) {
        let Some(net) = self.sessions.get_mut(&session) else {
            return;
        };
        let clients = net.clients.clone();
        for event in events {
            if let Some(event) = WireEvent::from_event(event) {
                let bytes = protocol::encode(&ServerMessage::Event { tick, event });
                for &client_id in &clients {
                    if let Some(connection) = self.connections.get_mut(&client_id)
                        && connection.welcomed
                    {
                        self.renet
                            .send_message(client_id, CHANNEL_RELIABLE, bytes.clone());
                        connection.dirty = true;
                    }
                }
            }
        }
    }

    /// Sends each session's newest world to its clients.
    fn send_snapshots(&mut self) {
        for net in self.sessions.values_mut() {
            send_world(net, &mut self.connections, &mut self.renet);
        }
    }

    fn flush_due(&mut self, now: Instant) {
        let mut due = std::mem::take(&mut self.client_ids);
        due.clear();
        due.extend(
            self.connections
                .iter()
                .filter(|(_, connection)| {
                    connection.urgent || now - connection.last_flush >= IDLE_FLUSH
                })
                .map(|(&id, _)| id),
        );
        for &client_id in &due {
            self.flush(client_id, now);
        }
        self.client_ids = due;
    }

    fn flush(&mut self, client_id: u64, now: Instant) {
        let Ok(packets) = self.renet.get_packets_to_send(client_id) else {
            return;
        };
        let Some(connection) = self.connections.get_mut(&client_id) else {
            return;
        };
        connection.urgent = false;
        connection.dirty = false;
        connection.last_flush = now;
        match &connection.via {
            Via::Udp(index) => {
                let sent = self.udp[*index].send(client_id, packets);
                self.counters.udp.bytes_out += sent;
            }
            Via::Ws { outbox, .. } => {
                for packet in crate::bundle::bundle(packets) {
                    let len = packet.len() as u64;
                    match outbox.try_send(Bytes::from(packet)) {
                        Ok(()) => self.counters.ws_out += len + WS_OVERHEAD,
                        Err(mpsc::error::TrySendError::Full(_)) => self.counters.drop("ws_backlog"),
                        Err(mpsc::error::TrySendError::Closed(_)) => break,
                    }
                }
            }
        }
    }

    /// Disconnects clients that said goodbye (after their last flush),
    /// WebSocket clients that went quiet, and whatever renet gave up on.
    fn close_disconnected(&mut self, now: Instant) {
        let idle = self.config.limits.idle_timeout;
        let quiet: Vec<u64> = self
            .connections
            .iter()
            .filter(|(_, connection)| {
                !connection.closing
                    && matches!(connection.via, Via::Ws { .. })
                    && now - connection.last_heard > idle
            })
            .map(|(&client_id, _)| client_id)
            .collect();
        for client_id in quiet {
            self.counters.drop("timed_out");
            self.say_bye(client_id, ByeReason::TimedOut);
        }
        for (&client_id, connection) in &self.connections {
            if connection.closing && !connection.dirty {
                self.renet.disconnect(client_id);
            }
        }
        for client_id in self.renet.disconnections_id() {
            match self
                .connections
                .get(&client_id)
                .map(|connection| &connection.via)
            {
                Some(Via::Udp(index)) => {
                    let index = *index;
                    self.udp[index].disconnect(
                        client_id,
                        &mut self.renet,
                        &mut self.udp_events,
                        &mut self.counters.udp,
                    );
                    self.handle_udp_events(index, now);
                }
                // Dropping the outbox closes the socket.
                _ => self.renet.remove_connection(client_id),
            }
            self.forget(client_id);
        }
    }

    /// Tells every client the server is going, and sends it.
    fn goodbye(&mut self) {
        let ids: Vec<u64> = self.connections.keys().copied().collect();
        let now = Instant::now();
        for &client_id in &ids {
            self.say_bye(client_id, ByeReason::ServerShutdown);
            self.flush(client_id, now);
        }
        for client_id in ids {
            self.renet.disconnect(client_id);
        }
        self.close_disconnected(now);
    }

    fn publish_metrics(&mut self) {
        let counters = std::mem::take(&mut self.counters);
        let bytes = [
            ("in", "udp", counters.udp.bytes_in),
            ("out", "udp", counters.udp.bytes_out),
            ("in", "ws", counters.ws_in),
            ("out", "ws", counters.ws_out),
        ];
        for (direction, transport, count) in bytes {
            if count > 0 {
                metrics::counter!("rampart_net_bytes_total", "direction" => direction, "transport" => transport)
                    .increment(count);
            }
        }
        self.stats
            .bytes_in
            .fetch_add(counters.udp.bytes_in + counters.ws_in, Ordering::Relaxed);
        self.stats
            .bytes_out
            .fetch_add(counters.udp.bytes_out + counters.ws_out, Ordering::Relaxed);
        if counters.udp.malformed > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "malformed")
                .increment(counters.udp.malformed);
        }
        if counters.udp.oversized > 0 {
            metrics::counter!("rampart_net_dropped_total", "reason" => "oversized")
                .increment(counters.udp.oversized);
        }
        for (reason, count) in counters.dropped {
            metrics::counter!("rampart_net_dropped_total", "reason" => reason).increment(count);
        }
        let udp = self
            .connections
            .values()
            .filter(|connection| matches!(connection.via, Via::Udp(_)))
            .count();
        let ws = self.connections.len() - udp;
        self.stats.udp_clients.store(udp, Ordering::Relaxed);
        self.stats.ws_clients.store(ws, Ordering::Relaxed);
        metrics::gauge!("rampart_clients_connected", "transport" => "udp").set(udp as f64);
        metrics::gauge!("rampart_clients_connected", "transport" => "ws").set(ws as f64);
    }
}
