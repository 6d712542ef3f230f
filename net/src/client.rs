//! The client library: connect over UDP or WebSocket, join, send commands,
//! keep the world reconstructed from snapshot deltas. Used by the tests, the
//! load generator's bots and game clients.
//!
//! It is poll-driven like renet itself: call [`Client::update`] often (every
//! frame, or every few milliseconds) and read what arrived with
//! [`Client::poll`] and [`Client::world`]. Nothing runs in the background.

use std::collections::VecDeque;
use std::io::{self, ErrorKind};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_sim::Command;
use renet::RenetClient;
use renetcode::{ClientAuthentication, NETCODE_MAX_PACKET_BYTES, NetcodeClient};
use serde::{Deserialize, Serialize};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::bundle::{self, Slot};
use crate::protocol::{
    self, ByeReason, CHANNEL_RELIABLE, CHANNEL_SNAPSHOT, ClientMessage, NO_WORLD, PROTOCOL_VERSION,
    ServerMessage, Welcome, WireCommand,
};
use crate::snapshot::{self, CodecError, NetWorld, SnapshotRing};
use crate::tickets::decode_connect_token;

/// IPv4 and UDP headers, counted into wire bytes.
const UDP_OVERHEAD: u64 = 28;
/// WebSocket frame header and TCP/IP headers per frame.
const WS_OVERHEAD: u64 = 4 + 40;
/// Flush at least this often even with nothing to say (renet's acks and
/// resends); and renet's packets join an acknowledgement once renet has
/// sent nothing for this long, so they ride in datagrams that go anyway.
const IDLE_FLUSH: Duration = Duration::from_millis(100);
/// Over a WebSocket, which acknowledges nothing it need not (the server
/// presumes the snapshots it wrote arrived), a frame goes at least this
/// often: renet's acks, and a sign of life for the server's 10 s idle
/// timeout.
const KEEP_ALIVE: Duration = Duration::from_secs(1);
/// Reliable messages kept for [`Client::poll`] before the oldest are
/// dropped (a client that never polls must not grow without bound).
const INBOX_LIMIT: usize = 4096;

/// What `POST /v1/join` answers (the fields a client needs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JoinResponse {
    /// Session id, 16 hex digits.
    pub session_id: String,
    /// The seat.
    pub player_id: u8,
    /// netcode connect token, standard base64.
    pub connect_token: String,
    /// UDP addresses in the token.
    pub udp_addresses: Vec<SocketAddr>,
    /// `ws://HOST:PORT/ws?ticket=...`.
    pub ws_url: String,
    /// Presented to `POST /v1/join` to reclaim this seat later.
    pub reconnect_token: String,
    /// Lets whoever it is passed to watch this session, private or not
    /// (`POST /v1/sessions/{id}/spectate` with `{"invite": ...}`).
    pub spectate_invite: String,
}

/// What `POST /v1/sessions/{id}/spectate` answers: a read-only connection
/// (snapshots and events; commands are refused). No reconnect token: a
/// spectator who drops simply asks again.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SpectateResponse {
    /// Session id, 16 hex digits.
    pub session_id: String,
    /// netcode connect token, standard base64.
    pub connect_token: String,
    /// UDP addresses in the token.
    pub udp_addresses: Vec<SocketAddr>,
    /// `ws://HOST:PORT/ws?ticket=...`.
    pub ws_url: String,
}

/// Which transport to connect with.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// UDP with a netcode connect token (standard base64).
    Udp {
        /// The token from the join answer.
        connect_token: String,
    },
    /// WebSocket at a URL that carries its ticket.
    WebSocket {
        /// `ws://HOST:PORT/ws?ticket=...`.
        url: String,
    },
}

impl JoinResponse {
    /// The endpoint for UDP (`websocket == false`) or WebSocket.
    pub fn endpoint(&self, websocket: bool) -> Endpoint {
        Endpoint::choose(websocket, &self.ws_url, &self.connect_token)
    }
}

impl SpectateResponse {
    /// The endpoint for UDP (`websocket == false`) or WebSocket.
    pub fn endpoint(&self, websocket: bool) -> Endpoint {
        Endpoint::choose(websocket, &self.ws_url, &self.connect_token)
    }
}

impl Endpoint {
    fn choose(websocket: bool, ws_url: &str, connect_token: &str) -> Self {
        if websocket {
            Endpoint::WebSocket {
                url: ws_url.to_owned(),
            }
        } else {
            Endpoint::Udp {
                connect_token: connect_token.to_owned(),
            }
        }
    }
}

/// Why the client could not connect or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Socket trouble.
    #[error("network error: {0}")]
    Io(#[from] io::Error),
    /// The connect token is not valid base64 netcode.
    #[error("bad connect token: {0}")]
    Token(String),
    /// netcode refused or dropped the connection.
    #[error("netcode: {0}")]
    Netcode(#[from] renetcode::NetcodeError),
    /// The WebSocket handshake or stream failed.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tungstenite::Error>),
    /// The server said goodbye.
    #[error("server closed the connection: {0}")]
    Bye(ByeReason),
    /// The connection dropped without a goodbye.
    #[error("disconnected: {0}")]
    Disconnected(String),
}

/// Counters a load test reads.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientStats {
    /// Wire bytes received, headers included.
    pub bytes_in: u64,
    /// Wire bytes sent, headers included.
    pub bytes_out: u64,
    /// Snapshots applied.
    pub snapshots: u64,
    /// Full snapshots among them.
    pub full_snapshots: u64,
    /// Snapshots whose checksum did not match after applying: the
    /// reconstructed world differs from the server's.
    pub desyncs: u64,
    /// Snapshots that could not be applied (unknown baseline, malformed).
    pub rejected_snapshots: u64,
    /// Largest snapshot message seen, in bytes.
    pub largest_snapshot: usize,
    /// Snapshot acknowledgements sent: over UDP one per update that
    /// applied a snapshot; over a WebSocket only for a snapshot renet
    /// sliced, after a rejected one, and as a keep-alive.
    pub acks_sent: u64,
}

enum Transport {
    Udp {
        socket: UdpSocket,
        netcode: Box<NetcodeClient>,
        buffer: Box<[u8; NETCODE_MAX_PACKET_BYTES]>,
    },
    WebSocket(Box<WebSocket<MaybeTlsStream<TcpStream>>>),
}

/// A connection to a rampart server.
pub struct Client {
    renet: LazyRenet,
    transport: Transport,
    welcome: Option<Welcome>,
    worlds: Worlds,
    inbox: VecDeque<ServerMessage>,
    next_seq: u32,
    /// renet must flush at the next update: the hello, or its acks for
    /// reliable messages that arrived (so the server does not resend them).
    flush_due: bool,
    /// When anything last went out.
    last_flush: Instant,
    /// When renet's packets last went out (an ack alone leaves renet
    /// alone).
    renet_flushed: Instant,
    stats: ClientStats,
    bye: Option<ByeReason>,
    /// Start of the current bandwidth window and the byte counts then.
    rate_window: (Instant, u64, u64),
    /// Bytes per second down and up over the last full window.
    rates: (f64, f64),
}

/// Bandwidth is averaged over windows this long.
const RATE_WINDOW: Duration = Duration::from_secs(1);

/// What a client does with the snapshots it receives.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Snapshots {
    /// Rebuilds each world from its delta, checking the checksums the
    /// server sends: what a game needs.
    #[default]
    Rebuild,
    /// Reads each snapshot's header only: counts it, and acknowledges it
    /// as held when a rebuilding client would (its baseline held, newer
    /// than the newest), so the server does the same work for it. For a
    /// load generator, whose thousands of clients on one core cannot all
    /// rebuild (the Colyseus peer's harness skips decoding in its capacity
    /// runs for the same reason). [`Client::world`] then has only the
    /// newest tick, and no checksum is checked.
    HeadersOnly,
}

impl Client {
    /// Connects and says hello. The handshake completes during
    /// [`Self::update`]; [`Self::welcome`] is set once the server accepts.
    ///
    /// # Errors
    /// A bad token, or the socket or WebSocket handshake failing.
    pub fn connect(endpoint: &Endpoint) -> Result<Self, ClientError> {
        Self::connect_with(endpoint, Snapshots::Rebuild)
    }

    /// [`Self::connect`], choosing what becomes of the snapshots.
    ///
    /// # Errors
    /// As [`Self::connect`].
    pub fn connect_with(endpoint: &Endpoint, snapshots: Snapshots) -> Result<Self, ClientError> {
        let mut renet = RenetClient::new(protocol::connection_config());
        let transport = match endpoint {
            Endpoint::Udp { connect_token } => {
                let token = decode_connect_token(connect_token).map_err(ClientError::Token)?;
                let socket = UdpSocket::bind(
                    "127.0.0.1:0"
                        .parse::<SocketAddr>()
                        .map_err(io::Error::other)?,
                )
                .or_else(|_| UdpSocket::bind("0.0.0.0:0"))?;
                socket.set_nonblocking(true)?;
                let netcode = NetcodeClient::new(
                    crate::tickets::since_epoch(),
                    ClientAuthentication::Secure {
                        connect_token: token,
                    },
                )?;
                renet.set_connecting();
                Transport::Udp {
                    socket,
                    netcode: Box::new(netcode),
                    buffer: Box::new([0; NETCODE_MAX_PACKET_BYTES]),
                }
            }
            Endpoint::WebSocket { url } => {
                let config = protocol::websocket_config();
                let (socket, _) =
                    tungstenite::client::connect_with_config(url.as_str(), Some(config), 3)
                        .map_err(Box::new)?;
                if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
                    stream.set_nodelay(true)?;
                    stream.set_nonblocking(true)?;
                }
                renet.set_connected();
                Transport::WebSocket(Box::new(socket))
            }
        };
        renet.send_message(
            CHANNEL_RELIABLE,
            protocol::encode(&ClientMessage::Hello {
                protocol: PROTOCOL_VERSION,
                content_version: 0,
            }),
        );
        let in_order = matches!(transport, Transport::WebSocket(_));
        Ok(Self {
            renet: LazyRenet::new(renet),
            transport,
            welcome: None,
            worlds: Worlds::new(in_order, snapshots),
            inbox: VecDeque::new(),
            next_seq: 0,
            // The hello goes with the first update that can send it.
            flush_due: true,
            last_flush: Instant::now(),
            renet_flushed: Instant::now(),
            stats: ClientStats::default(),
            bye: None,
            rate_window: (Instant::now(), 0, 0),
            rates: (0.0, 0.0),
        })
    }

    /// Receives, applies snapshots, acknowledges them and sends what is
    /// queued. Call it often; `elapsed` is the time since the last call.
    ///
    /// # Errors
    /// The connection is gone (with the server's reason if it gave one).
    pub fn update(&mut self, elapsed: Duration) -> Result<(), ClientError> {
        if let Some(reason) = self.bye {
            return Err(ClientError::Bye(reason));
        }
        self.renet.elapse(elapsed);
        let closed = self.receive(elapsed)?;
        self.read_messages();
        if closed {
            // Only now: renet hides what arrived once it is disconnected,
            // and the goodbye usually comes just before the close.
            self.renet.client.disconnect_due_to_transport();
        }
        if let Some(reason) = self.bye {
            return Err(ClientError::Bye(reason));
        }
        let quiet_for = if self.worlds.in_order {
            KEEP_ALIVE
        } else {
            IDLE_FLUSH
        };
        let quiet = self.last_flush.elapsed() >= quiet_for;
        if self.flush_due || quiet || self.worlds.owed.is_some() {
            let renet_idle = self.renet_flushed.elapsed() >= IDLE_FLUSH;
            self.flush(self.flush_due || renet_idle)?;
        }
        let (started, bytes_in, bytes_out) = self.rate_window;
        let window = started.elapsed();
        if window >= RATE_WINDOW {
            let seconds = window.as_secs_f64();
            self.rates = (
                (self.stats.bytes_in - bytes_in) as f64 / seconds,
                (self.stats.bytes_out - bytes_out) as f64 / seconds,
            );
            self.rate_window = (Instant::now(), self.stats.bytes_in, self.stats.bytes_out);
        }
        if self.renet.client.is_disconnected() {
            let reason = self
                .renet
                .client
                .disconnect_reason()
                .map_or_else(|| "unknown".to_owned(), |reason| reason.to_string());
            return Err(ClientError::Disconnected(reason));
        }
        Ok(())
    }

    /// Reads what the transport has; true when a WebSocket was closed.
    fn receive(&mut self, elapsed: Duration) -> Result<bool, ClientError> {
        match &mut self.transport {
            Transport::Udp {
                socket,
                netcode,
                buffer,
            } => {
                if let Some(reason) = netcode.disconnect_reason() {
                    self.renet.client.disconnect_due_to_transport();
                    return Err(ClientError::Disconnected(reason.to_string()));
                }
                if netcode.is_connected() {
                    self.renet.client.set_connected();
                }
                loop {
                    match socket.recv_from(&mut buffer[..]) {
                        Ok((len, addr)) => {
                            if addr != netcode.server_addr() {
                                continue;
                            }
                            self.stats.bytes_in += len as u64 + UDP_OVERHEAD;
                            if let Some(payload) = netcode.process_packet(&mut buffer[..len]) {
                                for slot in bundle::unbundle(payload).flatten() {
                                    take_slot(
                                        slot,
                                        &mut self.renet,
                                        &mut self.worlds,
                                        &mut self.stats,
                                    );
                                }
                            }
                        }
                        Err(error) if error.kind() == ErrorKind::WouldBlock => break,
                        Err(error) if error.kind() == ErrorKind::Interrupted => {}
                        Err(error) if error.kind() == ErrorKind::ConnectionRefused => {}
                        Err(error) => return Err(error.into()),
                    }
                }
                if let Some((packet, addr)) = netcode.update(elapsed) {
                    let sent = socket.send_to(packet, addr)?;
                    self.stats.bytes_out += sent as u64 + UDP_OVERHEAD;
                }
            }
            Transport::WebSocket(socket) => loop {
                match socket.read() {
                    Ok(Message::Binary(bytes)) => {
                        self.stats.bytes_in += bytes.len() as u64 + WS_OVERHEAD;
                        for slot in bundle::unbundle(&bytes).flatten() {
                            take_slot(slot, &mut self.renet, &mut self.worlds, &mut self.stats);
                        }
                    }
                    Ok(Message::Close(_)) => return Ok(true),
                    Ok(_) => {}
                    Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {
                        break;
                    }
                    Err(
                        tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                    ) => {
                        return Ok(true);
                    }
                    Err(error) => return Err(Box::new(error).into()),
                }
            },
        }
        Ok(false)
    }

    fn read_messages(&mut self) {
        // renet has new messages only after taking packets: the last read
        // took every message it had.
        if !std::mem::take(&mut self.renet.heard) {
            return;
        }
        // Snapshots too large for one bundle slot come sliced by renet.
        while let Some(bytes) = self.renet.client.receive_message(CHANNEL_SNAPSHOT) {
            self.worlds.apply(&bytes, Arrival::Sliced, &mut self.stats);
        }
        while let Some(bytes) = self.renet.client.receive_message(CHANNEL_RELIABLE) {
            self.flush_due = true;
            let Ok(message) = protocol::decode::<ServerMessage>(&bytes, usize::MAX) else {
                continue;
            };
            match &message {
                ServerMessage::Welcome(welcome) => self.welcome = Some(welcome.clone()),
                ServerMessage::Bye { reason } => self.bye = Some(*reason),
                _ => {}
            }
            if self.inbox.len() == INBOX_LIMIT {
                self.inbox.pop_front();
            }
            self.inbox.push_back(message);
        }
    }

    /// Sends the acknowledgement the server is owed, if any (it travels
    /// beside renet, in the same datagram or frame), and renet's packets
    /// when `with_renet`. A WebSocket frame with nothing else in it
    /// acknowledges the newest world again: the server hears from the
    /// client, and deltas against a world it holds.
    fn flush(&mut self, with_renet: bool) -> Result<(), ClientError> {
        if let Transport::Udp { netcode, .. } = &self.transport
            && !netcode.is_connected()
        {
            // renet's packets (the hello) wait for the handshake.
            return Ok(());
        }
        self.last_flush = Instant::now();
        let packets = if with_renet {
            self.renet_flushed = self.last_flush;
            self.flush_due = false;
            self.renet.timed().get_packets_to_send()
        } else {
            Vec::new()
        };
        let mut ack = self.worlds.owed.take();
        if ack.is_none() && packets.is_empty() && self.worlds.in_order {
            ack = self.worlds.newest();
        }
        if ack.is_some() {
            self.stats.acks_sent += 1;
        }
        let packets =
            bundle::bundle(bundle::renet_slots(&packets).chain(ack.map(Slot::SnapshotAck)));
        match &mut self.transport {
            Transport::Udp {
                socket, netcode, ..
            } => {
                for packet in packets {
                    let (addr, payload) = netcode.generate_payload_packet(&packet)?;
                    let sent = socket.send_to(payload, addr)?;
                    self.stats.bytes_out += sent as u64 + UDP_OVERHEAD;
                }
            }
            Transport::WebSocket(socket) => {
                for packet in packets {
                    self.stats.bytes_out += packet.len() as u64 + WS_OVERHEAD;
                    match socket.write(Message::binary(packet)) {
                        Ok(()) => {}
                        Err(tungstenite::Error::Io(error))
                            if error.kind() == ErrorKind::WouldBlock => {}
                        Err(error) => return Err(Box::new(error).into()),
                    }
                }
                match socket.flush() {
                    Ok(()) => {}
                    Err(tungstenite::Error::Io(error)) if error.kind() == ErrorKind::WouldBlock => {
                    }
                    Err(error) => return Err(Box::new(error).into()),
                }
            }
        }
        Ok(())
    }

    /// Queues a command; returns the `seq` its result will carry. Sent at
    /// once (a command should not wait for the next ack).
    ///
    /// # Errors
    /// If sending fails.
    pub fn send_command(&mut self, command: Command) -> Result<u32, ClientError> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        let message = ClientMessage::Command {
            seq,
            command: WireCommand::from(command),
        };
        self.send_raw(&protocol::encode(&message))?;
        Ok(seq)
    }

    /// Sends a chat line.
    ///
    /// # Errors
    /// If sending fails.
    pub fn chat(&mut self, text: &str) -> Result<(), ClientError> {
        self.send_raw(&protocol::encode(&ClientMessage::Chat {
            text: text.into(),
        }))
    }

    /// Sends any bytes on the reliable channel at once: for tests of the
    /// server's defences.
    ///
    /// # Errors
    /// If sending fails.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.renet
            .client
            .send_message(CHANNEL_RELIABLE, bytes.to_vec());
        self.flush(true)
    }

    /// The next message from the server (welcome, command results, events,
    /// chat, goodbye), in order.
    pub fn poll(&mut self) -> Option<ServerMessage> {
        self.inbox.pop_front()
    }

    /// The server's welcome, once received.
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// The newest reconstructed world (only its tick with
    /// [`Snapshots::HeadersOnly`]).
    pub fn world(&self) -> &NetWorld {
        &self.worlds.world
    }

    /// The socket the client reads, for a program that runs many clients
    /// and waits on all their sockets at once (epoll, mio) rather than
    /// polling each: call [`Self::update`] when it is readable (it reads
    /// until the socket would block), and every few tens of milliseconds
    /// anyway for the clocks (handshake, resends, idle flushes). `None`
    /// for a stream the client does not read directly (TLS).
    #[cfg(unix)]
    pub fn socket_fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match &self.transport {
            Transport::Udp { socket, .. } => Some(socket.as_raw_fd()),
            Transport::WebSocket(socket) => match socket.get_ref() {
                MaybeTlsStream::Plain(stream) => Some(stream.as_raw_fd()),
                _ => None,
            },
        }
    }

    /// Round-trip time as renet measures it.
    pub fn rtt(&self) -> Duration {
        Duration::from_secs_f64(self.renet.client.rtt().max(0.0))
    }

    /// Wire bytes per second (headers included), down and up, over the
    /// last second.
    pub fn bytes_per_second(&self) -> (f64, f64) {
        self.rates
    }

    /// Byte and snapshot counters.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// The server's goodbye, if it said one.
    pub fn bye(&self) -> Option<ByeReason> {
        self.bye
    }

    /// Leaves politely: the server frees the connection at once (the seat
    /// and its towers stay).
    pub fn disconnect(&mut self) {
        let _ = self.send_raw(&protocol::encode(&ClientMessage::Leave));
        match &mut self.transport {
            Transport::Udp {
                socket, netcode, ..
            } => {
                if let Ok((addr, packet)) = netcode.disconnect() {
                    let _ = socket.send_to(packet, addr);
                }
            }
            Transport::WebSocket(socket) => {
                let _ = socket.close(None);
                let _ = socket.flush();
            }
        }
        self.renet.client.disconnect();
    }
}

/// renet's end of the connection, told the time only when it is about to
/// use it. A program of many clients updates each every few tens of
/// milliseconds and whenever its socket is readable, while renet's packets
/// come and go about every 100 ms: advancing renet's clock (its statistics
/// and its slice and sent-packet upkeep) and asking both channels for
/// messages on every update were a tenth of the load generator's samples.
struct LazyRenet {
    client: RenetClient,
    /// Time passed that renet has not been told of.
    behind: Duration,
    /// renet took packets since its messages were last read.
    heard: bool,
}

impl LazyRenet {
    fn new(client: RenetClient) -> Self {
        Self {
            client,
            behind: Duration::ZERO,
            heard: false,
        }
    }

    fn elapse(&mut self, elapsed: Duration) {
        self.behind += elapsed;
    }

    /// renet with its clock brought up to now, for the calls that read it:
    /// taking a packet (round trips, slice deadlines) and sending (resends).
    fn timed(&mut self) -> &mut RenetClient {
        if !self.behind.is_zero() {
            self.client.update(std::mem::take(&mut self.behind));
        }
        &mut self.client
    }

    fn process_packet(&mut self, packet: &[u8]) {
        self.heard = true;
        self.timed().process_packet(packet);
    }
}

/// Hands one slot of a bundle from the server to whoever reads it.
fn take_slot(slot: Slot<'_>, renet: &mut LazyRenet, worlds: &mut Worlds, stats: &mut ClientStats) {
    match slot {
        Slot::Renet(packet) => renet.process_packet(packet),
        Slot::Snapshot(bytes) => worlds.apply(bytes, Arrival::Slot, stats),
        // Only clients acknowledge.
        Slot::SnapshotAck(_) => {}
    }
}

/// How a snapshot came: in a bundle slot of its own, or as a renet
/// message (too large for a slot, renet sliced it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Arrival {
    Slot,
    Sliced,
}

/// What became of one snapshot.
enum Applied {
    /// A newer world, now the newest.
    New,
    /// Not newer than the newest world: late or duplicated.
    Old,
    /// Its baseline is not held, it does not decode, or its checksum
    /// differs from the rebuilt world's.
    Rejected,
}

/// The reconstructed worlds (the newest, and the recent ones deltas may
/// name as their baseline) and what the server should hear of them.
struct Worlds {
    world: Arc<NetWorld>,
    ring: SnapshotRing,
    /// Where the next delta is applied: a world the ring handed back, or
    /// one a rejected delta left.
    spare: Option<Arc<NetWorld>>,
    /// The transport delivers in order what the server wrote (a
    /// WebSocket), and the server deltas against the last snapshot it
    /// wrote in a slot of its own: only a sliced snapshot (renet may drop
    /// it) and a rejected one are acknowledged. Over UDP every new world
    /// is: the server deltas against the newest acknowledged, and a delta
    /// grows with its baseline's age (movers are trajectories: only their
    /// changes are sent); acking five times a second cost the server 42%
    /// more bytes down at the steady state for 5% less CPU
    /// (`docs/BENCHMARKS.md`).
    in_order: bool,
    /// The tick the next flush acknowledges.
    owed: Option<u64>,
    /// Worlds are rebuilt, or only their ticks kept.
    snapshots: Snapshots,
}

impl Worlds {
    fn new(in_order: bool, snapshots: Snapshots) -> Self {
        Self {
            world: Arc::default(),
            ring: SnapshotRing::new(),
            spare: None,
            in_order,
            owed: None,
            snapshots,
        }
    }

    /// The newest world's tick, once one is held.
    fn newest(&self) -> Option<u64> {
        self.ring.latest().map(|world| world.tick)
    }

    fn apply(&mut self, bytes: &[u8], arrival: Arrival, stats: &mut ClientStats) {
        match self.rebuild(bytes, stats) {
            Applied::New if !self.in_order || arrival == Arrival::Sliced => {
                self.owed = self.newest();
            }
            // The server deltas against a world this client lacks until it
            // hears which one it holds (or that it holds none: over UDP
            // too, once a failed checksum emptied the ring).
            Applied::Rejected if self.in_order || self.newest().is_none() => {
                self.owed = Some(self.newest().unwrap_or(NO_WORLD));
            }
            Applied::New | Applied::Old | Applied::Rejected => {}
        }
    }

    fn rebuild(&mut self, bytes: &[u8], stats: &mut ClientStats) -> Applied {
        stats.largest_snapshot = stats.largest_snapshot.max(bytes.len());
        let Ok(header) = snapshot::decode_header(bytes) else {
            stats.rejected_snapshots += 1;
            return Applied::Rejected;
        };
        if self.newest().is_some_and(|newest| header.tick <= newest) {
            return Applied::Old;
        }
        let base = match header.base_tick {
            Some(tick) => match self.ring.get(tick) {
                Some(base) => Some(base.clone()),
                None => {
                    stats.rejected_snapshots += 1;
                    return Applied::Rejected;
                }
            },
            None => None,
        };
        let mut next = snapshot::writable(self.spare.take());
        let rebuilt = match self.snapshots {
            Snapshots::Rebuild => snapshot::apply(base.as_deref(), bytes, Arc::make_mut(&mut next)),
            Snapshots::HeadersOnly => {
                Arc::make_mut(&mut next).tick = header.tick;
                Ok(())
            }
        };
        match rebuilt {
            Ok(()) => {
                stats.snapshots += 1;
                if base.is_none() {
                    stats.full_snapshots += 1;
                }
                self.world = next.clone();
                self.spare = self.ring.push(next);
                Applied::New
            }
            Err(error) => {
                self.spare = Some(next);
                match error {
                    CodecError::Checksum => {
                        stats.desyncs += 1;
                        // Worlds between checked ones carry no checksum:
                        // any since the last checked may be wrong too.
                        self.ring.clear();
                    }
                    _ => stats.rejected_snapshots += 1,
                }
                Applied::Rejected
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn world(tick: u64, lives: u32) -> NetWorld {
        NetWorld {
            tick,
            lives,
            ..NetWorld::default()
        }
    }

    fn delta(base: Option<&NetWorld>, next: &NetWorld) -> Vec<u8> {
        let mut bytes = Vec::new();
        snapshot::encode(base, next, &mut bytes);
        bytes
    }

    /// Over a WebSocket the server builds on what it wrote: a world in a
    /// slot of its own is not acknowledged, a sliced one is, and a rejected
    /// one is answered with the world held, or `NO_WORLD` when none is.
    #[test]
    fn a_websocket_client_speaks_only_for_sliced_and_rejected_snapshots() {
        let (first, second, third) = (world(3, 20), world(6, 19), world(9, 18));
        let mut stats = ClientStats::default();
        let mut worlds = Worlds::new(true, Snapshots::Rebuild);
        worlds.apply(&delta(Some(&first), &second), Arrival::Slot, &mut stats);
        assert_eq!(worlds.owed, Some(NO_WORLD), "a delta on a world never held");

        let mut worlds = Worlds::new(true, Snapshots::Rebuild);
        worlds.apply(&delta(None, &first), Arrival::Slot, &mut stats);
        assert_eq!(worlds.owed, None, "presumed held");
        worlds.apply(&delta(Some(&first), &second), Arrival::Sliced, &mut stats);
        assert_eq!(worlds.owed, Some(6), "renet may drop what it sliced");
        worlds.owed = None;
        worlds.apply(
            &delta(Some(&world(5, 1)), &third),
            Arrival::Slot,
            &mut stats,
        );
        assert_eq!(worlds.owed, Some(6), "the world held after a rejection");
        assert_eq!(worlds.world.tick, 6);
    }

    /// Over UDP every new world is acknowledged, and a rejected one is not:
    /// the server goes on from the newest acknowledged.
    #[test]
    fn a_udp_client_acknowledges_every_new_world() {
        let (first, second) = (world(3, 20), world(6, 19));
        let mut stats = ClientStats::default();
        let mut worlds = Worlds::new(false, Snapshots::Rebuild);
        worlds.apply(&delta(None, &first), Arrival::Slot, &mut stats);
        assert_eq!(worlds.owed.take(), Some(3));
        worlds.apply(
            &delta(Some(&world(5, 1)), &second),
            Arrival::Slot,
            &mut stats,
        );
        assert_eq!(worlds.owed, None);
        worlds.apply(&delta(Some(&first), &second), Arrival::Slot, &mut stats);
        assert_eq!(worlds.owed, Some(6));
    }

    /// A world that fails its checksum condemns those applied since the
    /// last checked one: the client drops them all and, over either
    /// transport, asks for a full world until one comes.
    #[test]
    fn a_failed_checksum_drops_every_world_and_asks_for_a_full_one() {
        let (first, second, third) = (world(3, 20), world(6, 19), world(9, 18));
        for in_order in [false, true] {
            let mut stats = ClientStats::default();
            let mut worlds = Worlds::new(in_order, Snapshots::Rebuild);
            worlds.apply(&delta(None, &first), Arrival::Slot, &mut stats);
            let mut unchecked = Vec::new();
            snapshot::encode_unchecked(Some(&first), &second, &mut unchecked);
            worlds.apply(&unchecked, Arrival::Slot, &mut stats);
            assert_eq!(worlds.newest(), Some(6));
            worlds.owed = None;

            let mut broken = delta(Some(&second), &third);
            // tick, base, then the checksum's first byte.
            broken[2] ^= 1;
            worlds.apply(&broken, Arrival::Slot, &mut stats);
            assert_eq!(stats.desyncs, 1);
            assert_eq!(worlds.newest(), None, "in order: {in_order}");
            assert_eq!(worlds.owed.take(), Some(NO_WORLD), "in order: {in_order}");
            worlds.apply(&delta(Some(&second), &third), Arrival::Slot, &mut stats);
            assert_eq!(worlds.owed.take(), Some(NO_WORLD), "still none held");

            worlds.apply(&delta(None, &third), Arrival::Slot, &mut stats);
            assert_eq!(worlds.newest(), Some(9));
        }
    }

    /// A client reading headers only tells the server what a rebuilding one
    /// would, snapshot by snapshot, on either transport (so a load
    /// generator's server does the same work), and keeps the ticks.
    #[test]
    fn a_client_reading_headers_only_acknowledges_as_a_rebuilding_one() {
        let worlds: Vec<NetWorld> = (1..=4)
            .map(|step| world(3 * step, 20 - step as u32))
            .collect();
        let arrivals = [
            (delta(None, &worlds[0]), Arrival::Slot),
            // Its base was never held.
            (delta(Some(&world(5, 1)), &worlds[1]), Arrival::Slot),
            (delta(Some(&worlds[0]), &worlds[1]), Arrival::Sliced),
            // Late.
            (delta(None, &worlds[0]), Arrival::Slot),
            (delta(Some(&worlds[1]), &worlds[3]), Arrival::Slot),
            (delta(Some(&worlds[1]), &worlds[2]), Arrival::Slot),
        ];
        for in_order in [false, true] {
            let mut rebuilding = (
                Worlds::new(in_order, Snapshots::Rebuild),
                ClientStats::default(),
            );
            let mut counting = (
                Worlds::new(in_order, Snapshots::HeadersOnly),
                ClientStats::default(),
            );
            for (index, (bytes, arrival)) in arrivals.iter().enumerate() {
                for (worlds, stats) in [&mut rebuilding, &mut counting] {
                    worlds.apply(bytes, *arrival, stats);
                }
                let context = format!("snapshot {index}, in order: {in_order}");
                assert_eq!(
                    counting.0.owed.take(),
                    rebuilding.0.owed.take(),
                    "{context}"
                );
                assert_eq!(counting.0.world.tick, rebuilding.0.world.tick, "{context}");
            }
            for (counted, rebuilt) in [
                (counting.1.snapshots, rebuilding.1.snapshots),
                (counting.1.full_snapshots, rebuilding.1.full_snapshots),
                (
                    counting.1.rejected_snapshots,
                    rebuilding.1.rejected_snapshots,
                ),
            ] {
                assert_eq!(counted, rebuilt, "in order: {in_order}");
            }
            assert_eq!(
                rebuilding.0.world.lives, 16,
                "the rebuilding one has the world"
            );
            assert_eq!(counting.0.world.lives, 0, "the other only its tick");
        }
    }

    /// Time given to renet lazily still reaches it before it decides what
    /// to resend.
    #[test]
    fn renet_hears_the_time_before_it_sends() {
        let mut renet = LazyRenet::new(RenetClient::new(protocol::connection_config()));
        renet.client.set_connected();
        renet.client.send_message(CHANNEL_RELIABLE, vec![1, 2, 3]);
        assert_eq!(renet.timed().get_packets_to_send().len(), 1);
        renet.elapse(Duration::from_millis(60));
        assert!(renet.timed().get_packets_to_send().is_empty(), "not due");
        renet.elapse(Duration::from_millis(60));
        assert_eq!(
            renet.timed().get_packets_to_send().len(),
            1,
            "resent once renet knows 120 ms passed"
        );
    }
}
