//! The WebSocket transport for browsers: bundles of renet packets in binary
//! frames.
//!
//! No WebSocket transport exists for renet 2.x, so this is ours: each
//! connection is a tokio task that checks the ticket during the upgrade
//! (a bad one gets HTTP 401 and never reaches the game), then forwards
//! frames to the net loop and writes what the loop hands back. The renet
//! logic and channels are the same as over UDP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::TrySendError;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::{Bytes, Message};

use super::NudgingSender;
use crate::tickets::{TicketKey, WsTicket};

/// Packets queued towards one browser before newer ones are dropped (renet
/// resends what matters).
const OUTBOX: usize = 256;

/// What a WebSocket connection tells the net loop.
pub(crate) enum WsEvent {
    /// Upgraded with a valid ticket.
    Open {
        ticket: WsTicket,
        /// This socket's number: the ticket's client id is not enough to
        /// tell sockets apart, since a stolen ticket can be presented twice
        /// (the second is refused, and must not speak for the first).
        socket: u64,
        outbox: mpsc::Sender<Bytes>,
    },
    /// One bundle of renet packets.
    Packet {
        client_id: u64,
        socket: u64,
        bytes: Bytes,
    },
    /// A frame that is not a renet packet (text, oversized, protocol error).
    Dropped { reason: &'static str },
    /// The socket closed.
    Closed { client_id: u64, socket: u64 },
}

/// Numbers the sockets of this process.
static NEXT_SOCKET: AtomicU64 = AtomicU64::new(1);

/// Accepts connections until the listener fails or the loop is gone.
pub(crate) async fn accept(
    listener: TcpListener,
    key: Arc<TicketKey>,
    events: NudgingSender<WsEvent>,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "WebSocket accept failed");
                continue;
            }
        };
        let key = key.clone();
        let events = events.clone();
        tokio::spawn(async move {
            if let Err(reason) = serve(stream, peer, &key, &events).await {
                tracing::debug!(%peer, reason, "WebSocket connection refused");
                let _ = events.try_send(WsEvent::Dropped { reason });
            }
        });
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

#[allow(
    clippy::result_large_err,
    reason = "the handshake callback's error type is tungstenite's"
)]
fn refuse(status: StatusCode, text: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text.to_owned()));
    *response.status_mut() = status;
    response
}

#[allow(
    clippy::result_large_err,
    reason = "the handshake callback's error type is tungstenite's"
)]
async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    key: &TicketKey,
    events: &NudgingSender<WsEvent>,
) -> Result<(), &'static str> {
    // A frame carries one bundle; nothing larger is legitimate.
    let config = crate::protocol::websocket_config();
    let _ = stream.set_nodelay(true);
    let mut checked = None;
    let check = |request: &Request, response: Response| {
        let Some(ticket) = ticket_of(request) else {
            return Err(refuse(StatusCode::UNAUTHORIZED, "missing ticket"));
        };
        match key.verify_ws(ticket) {
            Ok(ticket) => {
                checked = Some(ticket);
                Ok(response)
            }
            Err(error) => Err(refuse(StatusCode::UNAUTHORIZED, &error.to_string())),
        }
    };
    let socket = tokio_tungstenite::accept_hdr_async_with_config(stream, check, Some(config))
        .await
        .map_err(|_| "invalid_ticket")?;
    let ticket = checked.ok_or("invalid_ticket")?;
    tracing::debug!(%peer, client_id = ticket.client_id, "WebSocket connected");
    let (mut sink, mut frames) = socket.split();
    let (outbox, mut queued) = mpsc::channel::<Bytes>(OUTBOX);
    let socket = NEXT_SOCKET.fetch_add(1, Ordering::Relaxed);
    events
        .try_send(WsEvent::Open {
            ticket,
            socket,
            outbox,
        })
        .map_err(|_| "server_busy")?;
    let client_id = ticket.client_id;
    let writer = tokio::spawn(async move {
        while let Some(bytes) = queued.recv().await {
            if sink.send(Message::Binary(bytes)).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });
    while let Some(frame) = frames.next().await {
        let event = match frame {
            Ok(Message::Binary(bytes)) => WsEvent::Packet {
                client_id,
                socket,
                bytes,
            },
            Ok(Message::Close(_)) => break,
            Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
            Ok(Message::Text(_)) => WsEvent::Dropped {
                reason: "ws_text_frame",
            },
            Err(tokio_tungstenite::tungstenite::Error::Capacity(_)) => {
                let _ = events.try_send(WsEvent::Dropped {
                    reason: "oversized",
                });
                break;
            }
            Err(_) => break,
        };
        match events.try_send(event) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                // The loop is behind: shed this packet, as a router would.
                let _ = events.try_send(WsEvent::Dropped {
                    reason: "server_busy",
                });
            }
            Err(TrySendError::Disconnected(_)) => break,
        }
    }
    let _ = events.try_send(WsEvent::Closed { client_id, socket });
    writer.abort();
    Ok(())
}
