//! The WebSocket transport for browsers: bundles of renet packets in binary
//! frames, accepted, upgraded, read and written on the net thread.
//!
//! No WebSocket transport exists for renet 2.x, so this is ours. The net
//! loop polls the listener and every socket through mio beside its UDP
//! sockets: a frame in or out costs one system call on the loop's own
//! thread. (Before, each connection was two tokio tasks fed through
//! queues: every frame woke another thread each way, a quarter of the
//! server's CPU under the Colyseus peer's workload.) The upgrade checks
//! the ticket: a bad one gets HTTP 401 and never reaches the game. The
//! renet logic and channels are the same as over UDP.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};
use tungstenite::handshake::server::{Callback, ErrorResponse, Request, Response, ServerHandshake};
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::StatusCode;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Bytes, Error as WsError, Message, WebSocket};

use crate::bundle::Slot;
use crate::tickets::{TicketKey, WsTicket};

/// The poll token of the listener.
pub(crate) const LISTENER: Token = Token(usize::MAX - 1);
/// Socket `n` polls as token `SOCKETS + n` (UDP sockets take their index,
/// far below).
const SOCKETS: usize = 1 << 40;
/// An upgrade must finish within this long, so half-open connections
/// cannot pile up.
const UPGRADE_TIMEOUT: Duration = Duration::from_secs(5);
/// Upgrades in progress at once; connections beyond are closed at once.
const MAX_UPGRADING: usize = 256;
/// Frames read from one socket per loop pass, so one flooder cannot hold
/// the loop (the socket stays listed for the next pass).
const FRAMES_PER_PASS: usize = 64;
/// Bytes a socket may hold unsent before newer frames are dropped (renet
/// resends what matters): a browser that stopped reading cannot make the
/// server buffer without bound.
const MAX_UNSENT_BYTES: usize = 256 * 1024;

/// What the sockets tell the net loop.
pub(crate) enum WsEvent {
    /// Upgraded with a valid ticket.
    Open {
        ticket: WsTicket,
        /// This socket's number: the ticket's client id is not enough to
        /// tell sockets apart, since a stolen ticket can be presented twice
        /// (the second is refused, and must not speak for the first).
        socket: u64,
    },
    /// One bundle of renet packets.
    Packet {
        client_id: u64,
        socket: u64,
        bytes: Bytes,
    },
    /// A connection or frame refused (bad ticket, text, oversized, too many
    /// upgrades): the reason, for the drop counters.
    Dropped { reason: &'static str },
    /// An upgraded socket closed.
    Closed { client_id: u64, socket: u64 },
}

/// Checks the ticket in the upgrade request and keeps it for the loop.
struct TicketCheck {
    key: Arc<TicketKey>,
    checked: Arc<OnceLock<WsTicket>>,
}

impl Callback for TicketCheck {
    fn on_request(self, request: &Request, response: Response) -> Result<Response, ErrorResponse> {
        let Some(ticket) = ticket_of(request) else {
            return Err(refuse(StatusCode::UNAUTHORIZED, "missing ticket"));
        };
        match self.key.verify_ws(ticket) {
            Ok(ticket) => {
                let _ = self.checked.set(ticket);
                Ok(response)
            }
            Err(error) => Err(refuse(StatusCode::UNAUTHORIZED, &error.to_string())),
        }
    }
}

/// The ticket from `?ticket=...` in the request line.
fn ticket_of(request: &Request) -> Option<&str> {
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("ticket="))
}

fn refuse(status: StatusCode, text: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text.to_owned()));
    *response.status_mut() = status;
    response
}

enum Socket {
    /// Between accept and the end of the upgrade.
    Upgrading {
        handshake: MidHandshake<ServerHandshake<TcpStream, TicketCheck>>,
        checked: Arc<OnceLock<WsTicket>>,
        since: Instant,
    },
    Open(OpenSocket),
}

struct OpenSocket {
    ws: WebSocket<TcpStream>,
    client_id: u64,
    /// Frames wait in tungstenite's buffer for the socket to drain; the
    /// socket is then polled for writability too.
    blocked: bool,
}

impl OpenSocket {
    /// Writes what tungstenite holds unsent, and polls the socket for
    /// writability while some is left (so the loop comes back to it).
    fn flush(&mut self, socket: u64, registry: &Registry) {
        match self.ws.flush() {
            Ok(()) => {
                if self.blocked {
                    self.blocked = false;
                    let _ =
                        registry.reregister(self.ws.get_mut(), token(socket), Interest::READABLE);
                }
            }
            Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                if !self.blocked {
                    self.blocked = true;
                    let _ = registry.reregister(
                        self.ws.get_mut(),
                        token(socket),
                        Interest::READABLE | Interest::WRITABLE,
                    );
                }
            }
            // The read side sees the socket end and reports it.
            Err(_) => {}
        }
    }
}

/// What a send did.
#[derive(Default)]
pub(crate) struct Sent {
    pub(crate) frames: u64,
    pub(crate) bytes: u64,
    /// Frames dropped because the socket held too much unsent.
    pub(crate) dropped: u64,
}

/// The listener and every WebSocket, owned by the net loop.
pub(crate) struct WsTransport {
    listener: TcpListener,
    key: Arc<TicketKey>,
    config: WebSocketConfig,
    sockets: HashMap<u64, Socket>,
    next_socket: u64,
    upgrading: usize,
    /// Whether the listener has connections waiting.
    accepting: bool,
    /// Sockets the poll reported ready (or left unread by a pass), each
    /// listed once.
    ready: Vec<u64>,
    /// Marks the sockets in `ready`.
    listed: std::collections::HashSet<u64>,
    /// Where a flush's packets are bundled, kept between flushes.
    bundle: Vec<u8>,
}

impl WsTransport {
    /// Takes over a bound listener.
    ///
    /// # Errors
    /// The listener cannot be made non-blocking.
    pub(crate) fn new(listener: std::net::TcpListener, key: Arc<TicketKey>) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener: TcpListener::from_std(listener),
            key,
            config: crate::protocol::websocket_config()
                .write_buffer_size(0)
                .max_write_buffer_size(MAX_UNSENT_BYTES),
            sockets: HashMap::new(),
            next_socket: 1,
            upgrading: 0,
            accepting: true,
            ready: Vec::new(),
            listed: std::collections::HashSet::new(),
            bundle: Vec::with_capacity(crate::bundle::BUNDLE_LIMIT),
        })
    }

    pub(crate) fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub(crate) fn register(&mut self, registry: &Registry) -> io::Result<()> {
        registry.register(&mut self.listener, LISTENER, Interest::READABLE)
    }

    /// Notes a poll event (the loop's other tokens are ignored).
    pub(crate) fn on_poll_event(&mut self, token: Token) {
        if token == LISTENER {
            self.accepting = true;
        } else if let Some(socket) = token.0.checked_sub(SOCKETS) {
            self.list(socket as u64);
        }
    }

    fn list(&mut self, socket: u64) {
        if self.listed.insert(socket) {
            self.ready.push(socket);
        }
    }

    /// Accepts what waits, moves upgrades on, and reads the ready sockets.
    /// True when anything happened.
    pub(crate) fn receive(&mut self, registry: &Registry, events: &mut Vec<WsEvent>) -> bool {
        let mut busy = false;
        if self.accepting {
            busy |= self.accept(registry, events);
        }
        let ready = std::mem::take(&mut self.ready);
        for &socket in &ready {
            self.listed.remove(&socket);
        }
        for socket in ready {
            busy = true;
            match self.sockets.get_mut(&socket) {
                Some(Socket::Upgrading { .. }) => self.upgrade(socket, registry, events),
                Some(Socket::Open(open)) => {
                    if open.blocked {
                        open.flush(socket, registry);
                    }
                    self.read(socket, registry, events);
                }
                None => {}
            }
        }
        busy
    }

    fn accept(&mut self, registry: &Registry, events: &mut Vec<WsEvent>) -> bool {
        let mut any = false;
        loop {
            let (mut stream, _) = match self.listener.accept() {
                Ok(accepted) => accepted,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    // Out of descriptors, say: the next maintenance tries
                    // again.
                    tracing::warn!(%error, "WebSocket accept failed");
                    break;
                }
            };
            any = true;
            if self.upgrading >= MAX_UPGRADING {
                events.push(WsEvent::Dropped {
                    reason: "server_busy",
                });
                continue;
            }
            let _ = stream.set_nodelay(true);
            let socket = self.next_socket;
            self.next_socket += 1;
            if let Err(error) = registry.register(&mut stream, token(socket), Interest::READABLE) {
                tracing::warn!(%error, "cannot poll a WebSocket");
                continue;
            }
            let checked = Arc::new(OnceLock::new());
            let check = TicketCheck {
                key: self.key.clone(),
                checked: checked.clone(),
            };
            self.upgrading += 1;
            let started = tungstenite::accept_hdr_with_config(stream, check, Some(self.config));
            self.upgraded(socket, started, checked, Instant::now(), registry, events);
        }
        self.accepting = false;
        any
    }

    /// Moves an upgrade on after its socket became ready.
    fn upgrade(&mut self, socket: u64, registry: &Registry, events: &mut Vec<WsEvent>) {
        let Some(Socket::Upgrading {
            handshake,
            checked,
            since,
        }) = self.sockets.remove(&socket)
        else {
            return;
        };
        self.upgraded(
            socket,
            handshake.handshake(),
            checked,
            since,
            registry,
            events,
        );
    }

    /// Files an upgrade's progress: still waiting, open, or refused.
    fn upgraded(
        &mut self,
        socket: u64,
        progress: Result<
            WebSocket<TcpStream>,
            HandshakeError<ServerHandshake<TcpStream, TicketCheck>>,
        >,
        checked: Arc<OnceLock<WsTicket>>,
        since: Instant,
        registry: &Registry,
        events: &mut Vec<WsEvent>,
    ) {
        match progress {
            Err(HandshakeError::Interrupted(handshake)) => {
                self.sockets.insert(
                    socket,
                    Socket::Upgrading {
                        handshake,
                        checked,
                        since,
                    },
                );
            }
            Ok(ws) => {
                self.upgrading -= 1;
                let Some(&ticket) = checked.get() else {
                    // The callback accepts only with a ticket.
                    events.push(WsEvent::Dropped {
                        reason: "invalid_ticket",
                    });
                    return;
                };
                self.sockets.insert(
                    socket,
                    Socket::Open(OpenSocket {
                        ws,
                        client_id: ticket.client_id,
                        blocked: false,
                    }),
                );
                events.push(WsEvent::Open { ticket, socket });
                // Frames that came with the upgrade's last read wait in
                // tungstenite's buffer, not in the socket: read them now.
                self.read(socket, registry, events);
            }
            Err(HandshakeError::Failure(error)) => {
                self.upgrading -= 1;
                tracing::debug!(%error, "WebSocket upgrade refused");
                events.push(WsEvent::Dropped {
                    reason: "invalid_ticket",
                });
            }
        }
    }

    /// Reads a socket's frames, at most [`FRAMES_PER_PASS`].
    fn read(&mut self, socket: u64, registry: &Registry, events: &mut Vec<WsEvent>) {
        let Some(Socket::Open(open)) = self.sockets.get_mut(&socket) else {
            return;
        };
        let client_id = open.client_id;
        for _ in 0..FRAMES_PER_PASS {
            let event = match open.ws.read() {
                Ok(Message::Binary(bytes)) => WsEvent::Packet {
                    client_id,
                    socket,
                    bytes,
                },
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Ok(Message::Text(_)) => WsEvent::Dropped {
                    reason: "ws_text_frame",
                },
                Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {
                    // A pong or the close reply may be waiting to go out.
                    let _ = open.ws.flush();
                    return;
                }
                Err(WsError::Capacity(_)) => {
                    events.push(WsEvent::Dropped {
                        reason: "oversized",
                    });
                    self.close(socket, registry, events);
                    return;
                }
                Ok(Message::Close(_)) | Err(_) => {
                    self.close(socket, registry, events);
                    return;
                }
            };
            events.push(event);
        }
        // More may wait: the socket's readiness edge is spent, so list it.
        self.list(socket);
    }

    /// Sends a flush's slots to a socket, bundled into frames. Frames its
    /// full buffer cannot take are dropped (and counted in the answer); the
    /// socket's end, if it ended, is left for its next read to report.
    pub(crate) fn send<'a>(
        &mut self,
        socket: u64,
        slots: impl IntoIterator<Item = Slot<'a>>,
        registry: &Registry,
    ) -> Sent {
        let mut sent = Sent::default();
        let Some(Socket::Open(open)) = self.sockets.get_mut(&socket) else {
            return sent;
        };
        crate::bundle::each_bundle(slots, &mut self.bundle, |frame| {
            let len = frame.len() as u64;
            match open
                .ws
                .write(Message::Binary(Bytes::copy_from_slice(frame)))
            {
                // Sent, or queued in tungstenite's buffer until the socket
                // drains.
                Ok(()) => {}
                Err(WsError::Io(error)) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(WsError::WriteBufferFull(_)) => {
                    sent.dropped += 1;
                    return true;
                }
                Err(_) => return false,
            }
            sent.frames += 1;
            sent.bytes += len;
            true
        });
        open.flush(socket, registry);
        sent
    }

    /// Closes a socket: a close frame if it can still take one, then the
    /// connection. An open socket's end is reported as [`WsEvent::Closed`].
    pub(crate) fn close(&mut self, socket: u64, registry: &Registry, events: &mut Vec<WsEvent>) {
        match self.sockets.remove(&socket) {
            Some(Socket::Open(mut open)) => {
                let _ = open.ws.close(None);
                let _ = open.ws.flush();
                let _ = registry.deregister(open.ws.get_mut());
                events.push(WsEvent::Closed {
                    client_id: open.client_id,
                    socket,
                });
            }
            Some(Socket::Upgrading { mut handshake, .. }) => {
                self.upgrading -= 1;
                let _ = registry.deregister(handshake.get_mut().get_mut());
            }
            None => {}
        }
    }

    /// Closes upgrades that took too long, and looks at the listener again
    /// (an accept that failed left connections waiting without a new
    /// readiness edge).
    pub(crate) fn maintain(
        &mut self,
        now: Instant,
        registry: &Registry,
        events: &mut Vec<WsEvent>,
    ) {
        self.accepting = true;
        let late: Vec<u64> = self
            .sockets
            .iter()
            .filter(|(_, socket)| {
                matches!(socket, Socket::Upgrading { since, .. }
                    if now.saturating_duration_since(*since) > UPGRADE_TIMEOUT)
            })
            .map(|(&id, _)| id)
            .collect();
        for socket in late {
            self.close(socket, registry, events);
            events.push(WsEvent::Dropped {
                reason: "ws_upgrade_timeout",
            });
        }
    }
}

fn token(socket: u64) -> Token {
    Token(SOCKETS + socket as usize)
}
