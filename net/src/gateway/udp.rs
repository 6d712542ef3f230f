//! One UDP socket with its netcode server, feeding the shared renet server.
//!
//! Written over `renetcode` rather than `renet_netcode`'s transport because
//! we must count wire bytes and dropped datagrams ourselves (renet's own
//! statistics see payloads only), and one process runs several sockets
//! (netcode serves at most 1,024 clients each) into one renet server.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::UdpSocket;
use renet::RenetServer;
use renetcode::{
    NETCODE_MAX_PACKET_BYTES, NetcodeServer, ServerAuthentication, ServerConfig, ServerResult,
};

use super::datagrams::{BATCH, Inbox, Outbox};
use super::intake::Delivered;
use crate::bundle::Slot;
use crate::protocol::NETCODE_PROTOCOL_ID;
use crate::tickets::{Access, access_from_user_data};

/// netcode's limit per server.
pub(crate) const MAX_CLIENTS_PER_SOCKET: usize = 1024;
/// IPv4 and UDP headers, counted into wire bytes.
pub(crate) const UDP_OVERHEAD: u64 = 28;
/// How often netcode looks after each client: a keep-alive once nothing
/// went to it for 250 ms, the timeout after seconds of silence. So a
/// keep-alive is at most this late. netcode's clock advances every
/// maintenance (25 ms); walking every client that often found nothing due.
const UPKEEP: Duration = Duration::from_millis(100);
/// netcode's "connection denied" packet type: the low four bits of a
/// packet's prefix byte (netcode 1.02's standard; renetcode keeps its packet
/// types private). A server sends it only when it serves its most clients.
const CONNECTION_DENIED: u8 = 1;

/// What a socket tells the net loop.
pub(crate) enum UdpEvent {
    /// A client completed the handshake.
    Connected { client_id: u64, access: Access },
    /// A client left or timed out (renet already knows).
    Disconnected { client_id: u64 },
    /// A client's bundle arrived: what it held.
    Heard {
        client_id: u64,
        delivered: Delivered,
    },
}

/// Counters the net loop turns into metrics.
#[derive(Default)]
pub(crate) struct UdpCounters {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub oversized: u64,
    /// Authenticated payloads that were not well-formed bundles.
    pub malformed: u64,
    /// Connection requests netcode turned away because the socket served
    /// its most clients already. The client then gives up (it tries the
    /// next socket only when one does not answer), so this means the
    /// server needs more sockets (`udp_sockets`) or grants spread unevenly.
    pub denied: u64,
    /// Datagrams the kernel would not send (its send buffer full, or the
    /// address unreachable).
    pub send_failed: u64,
}

pub(crate) struct UdpTransport {
    /// The address clients are told to dial for this socket.
    public: SocketAddr,
    socket: UdpSocket,
    netcode: NetcodeServer,
    /// Where datagrams are read, a batch at a time.
    inbox: Inbox,
    /// What this pass sends, in order, until [`Self::send_queued`].
    outbox: Outbox,
    /// Where a flush's packets are bundled, kept between flushes.
    bundle: Vec<u8>,
    /// The socket's receive buffer, as the kernel granted it.
    receive_buffer: usize,
    /// The kernel's drop count when [`Self::kernel_drops`] last read it.
    drops_counted: u32,
    /// netcode time since the last upkeep of every client.
    since_upkeep: Duration,
    /// Reused for the client ids an upkeep walks.
    client_ids: Vec<u64>,
}

impl UdpTransport {
    /// Binds `address` with a receive buffer of `receive_buffer` bytes (or
    /// what the kernel allows) for at most `max_clients` clients (netcode
    /// allows [`MAX_CLIENTS_PER_SOCKET`]); `public` says what connect
    /// tokens name for the bound socket (the netcode handshake accepts only
    /// that).
    pub fn bind(
        address: SocketAddr,
        receive_buffer: usize,
        max_clients: usize,
        public: impl FnOnce(SocketAddr) -> SocketAddr,
        private_key: [u8; 32],
        current_time: Duration,
    ) -> io::Result<Self> {
        let (socket, receive_buffer) = super::socket::bind_udp(address, receive_buffer)?;
        let socket = UdpSocket::from_std(socket);
        let public = public(socket.local_addr()?);
        let authentication = ServerAuthentication::Secure { private_key };
        let netcode = NetcodeServer::new(ServerConfig {
            current_time,
            max_clients: max_clients.min(MAX_CLIENTS_PER_SOCKET),
            protocol_id: NETCODE_PROTOCOL_ID,
            public_addresses: vec![public],
            authentication,
        });
        Ok(Self {
            public,
            socket,
            netcode,
            inbox: Inbox::new(),
            outbox: Outbox::default(),
            bundle: Vec::with_capacity(crate::bundle::BUNDLE_LIMIT),
            receive_buffer,
            drops_counted: 0,
            since_upkeep: Duration::ZERO,
            client_ids: Vec::new(),
        })
    }

    /// The receive buffer the kernel granted, in bytes.
    pub fn receive_buffer(&self) -> usize {
        self.receive_buffer
    }

    /// Datagrams the kernel dropped since the last call, its buffer full
    /// (the net thread did not read in time), as far as the datagrams read
    /// since have told.
    pub fn kernel_drops(&mut self) -> u64 {
        let total = self.inbox.kernel_drops();
        u64::from(total.wrapping_sub(std::mem::replace(&mut self.drops_counted, total)))
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Lets `registry`'s poll wake when a datagram waits.
    pub fn register(&mut self, registry: &mio::Registry, token: mio::Token) -> io::Result<()> {
        registry.register(&mut self.socket, token, mio::Interest::READABLE)
    }

    /// Reads every waiting datagram. Returns how many were read. Replies
    /// (handshakes) are queued, to go with [`Self::send_queued`].
    pub fn receive(
        &mut self,
        renet: &mut RenetServer,
        events: &mut Vec<UdpEvent>,
        counters: &mut UdpCounters,
    ) -> usize {
        let mut read = 0;
        loop {
            match self.inbox.receive(&self.socket) {
                Ok(0) => return read,
                Ok(count) => {
                    read += count;
                    for index in 0..count {
                        let (datagram, addr) = self.inbox.datagram(index);
                        counters.bytes_in += datagram.len() as u64 + UDP_OVERHEAD;
                        if datagram.len() > NETCODE_MAX_PACKET_BYTES {
                            counters.oversized += 1;
                            continue;
                        }
                        let result = self.netcode.process_packet(addr, datagram);
                        handle(result, &mut self.outbox, renet, events, counters);
                    }
                    if count < BATCH {
                        // The socket had no more: asking again would only
                        // say so.
                        return read;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // An ICMP "port unreachable" from a client that went away.
                Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
                Err(error) => {
                    tracing::warn!(%error, "UDP receive failed");
                    return read;
                }
            }
        }
    }

    /// Advances netcode's clock, and every [`UPKEEP`] looks after each
    /// client: keep-alives (queued) and timeouts.
    pub fn update(
        &mut self,
        elapsed: Duration,
        renet: &mut RenetServer,
        events: &mut Vec<UdpEvent>,
        counters: &mut UdpCounters,
    ) {
        self.netcode.update(elapsed);
        self.since_upkeep += elapsed;
        if self.since_upkeep < UPKEEP {
            return;
        }
        self.since_upkeep = Duration::ZERO;
        let mut client_ids = std::mem::take(&mut self.client_ids);
        client_ids.clear();
        client_ids.extend(self.netcode.clients_id_iter());
        for &client_id in &client_ids {
            let result = self.netcode.update_client(client_id);
            handle(result, &mut self.outbox, renet, events, counters);
        }
        self.client_ids = client_ids;
    }

    /// Queues a flush's slots for one client, bundled, sealed by netcode.
    pub fn send<'a>(&mut self, client_id: u64, slots: impl IntoIterator<Item = Slot<'a>>) {
        let (netcode, outbox) = (&mut self.netcode, &mut self.outbox);
        crate::bundle::each_bundle(slots, &mut self.bundle, |bundle| {
            match netcode.generate_payload_packet(client_id, bundle) {
                Ok((addr, payload)) => {
                    outbox.push(payload, addr);
                    true
                }
                Err(error) => {
                    tracing::debug!(%error, client_id, "netcode refused a payload");
                    false
                }
            }
        });
    }

    /// Sends what was queued since the last call, in order: a system call
    /// per batch (`datagrams.rs`).
    pub fn send_queued(&mut self, counters: &mut UdpCounters) {
        let sent = self.outbox.send(&self.socket);
        counters.bytes_out += sent.bytes + sent.datagrams * UDP_OVERHEAD;
        counters.send_failed += sent.failed;
    }

    /// Ends a client's netcode connection (queues netcode's disconnect).
    pub fn disconnect(
        &mut self,
        client_id: u64,
        renet: &mut RenetServer,
        events: &mut Vec<UdpEvent>,
        counters: &mut UdpCounters,
    ) {
        let result = self.netcode.disconnect(client_id);
        handle(result, &mut self.outbox, renet, events, counters);
    }
}

fn handle(
    result: ServerResult<'_, '_>,
    outbox: &mut Outbox,
    renet: &mut RenetServer,
    events: &mut Vec<UdpEvent>,
    counters: &mut UdpCounters,
) {
    let mut send = |payload: &[u8], addr: SocketAddr| outbox.push(payload, addr);
    match result {
        ServerResult::None => {}
        ServerResult::PacketToSend { payload, addr } => {
            if payload.first().map(|prefix| prefix & 0x0f) == Some(CONNECTION_DENIED) {
                counters.denied += 1;
            }
            send(payload, addr);
        }
        ServerResult::Payload { client_id, payload } => {
            let delivered = super::intake::deliver(renet, client_id, payload);
            counters.malformed += delivered.refused;
            events.push(UdpEvent::Heard {
                client_id,
                delivered,
            });
        }
        ServerResult::ClientConnected {
            client_id,
            user_data,
            addr,
            payload,
        } => {
            renet.add_connection(client_id);
            events.push(UdpEvent::Connected {
                client_id,
                access: access_from_user_data(&user_data),
            });
            send(payload, addr);
        }
        ServerResult::ClientDisconnected {
            client_id,
            addr,
            payload,
        } => {
            renet.remove_connection(client_id);
            events.push(UdpEvent::Disconnected { client_id });
            if let Some(payload) = payload {
                send(payload, addr);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Instant;

    use super::*;
    use crate::client::{Client, ClientError, Endpoint};
    use crate::protocol;
    use crate::tickets::{SeatRef, TicketKey};

    /// Datagrams the kernel drops past a full receive buffer are reported
    /// once, as the datagrams read after them tell, also while the same
    /// thread reads another socket that never dropped (as the net loop
    /// reads all of its sockets).
    #[cfg(target_os = "linux")]
    #[test]
    fn the_kernels_drops_are_reported_once() {
        let bind = || {
            UdpTransport::bind(
                "127.0.0.1:0".parse().unwrap(),
                4096,
                8,
                |bound| bound,
                [7; 32],
                crate::tickets::since_epoch(),
            )
            .unwrap()
        };
        let (mut transport, mut beside) = (bind(), bind());
        let mut renet = RenetServer::new(protocol::connection_config());
        let (mut events, mut counters) = (Vec::new(), UdpCounters::default());
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = transport.local_addr().unwrap();
        sender.send_to(&[1], to).unwrap();
        assert_eq!(transport.receive(&mut renet, &mut events, &mut counters), 1);
        assert_eq!(transport.kernel_drops(), 0, "nothing dropped yet");
        // Loopback delivers within the send: what does not fit is dropped.
        let sent = 200;
        for _ in 0..sent {
            sender.send_to(&[7; 512], to).unwrap();
        }
        let kept = transport.receive(&mut renet, &mut events, &mut counters);
        assert!(kept < sent / 2, "{kept} of {sent} fit");
        // Those were queued before the drops; the ones after carry the
        // count (the first read may find its header's room used up).
        for _ in 0..2 {
            sender.send_to(&[9], beside.local_addr().unwrap()).unwrap();
            assert_eq!(beside.receive(&mut renet, &mut events, &mut counters), 1);
            sender.send_to(&[8], to).unwrap();
            assert_eq!(transport.receive(&mut renet, &mut events, &mut counters), 1);
        }
        assert_eq!(transport.kernel_drops(), (sent - kept) as u64);
        assert_eq!(transport.kernel_drops(), 0, "counted once");
        assert_eq!(beside.kernel_drops(), 0, "the other socket dropped none");
    }

    /// Two clients, a socket for one: the second is denied, and counted.
    #[test]
    fn a_full_socket_counts_each_client_it_turns_away() {
        let key = TicketKey::new([7; 32]).unwrap();
        let mut transport = UdpTransport::bind(
            "127.0.0.1:0".parse().unwrap(),
            1 << 16,
            1,
            |bound| bound,
            key.netcode_key(),
            crate::tickets::since_epoch(),
        )
        .unwrap();
        let mut renet = RenetServer::new(protocol::connection_config());
        let connect = |player| {
            let access = Access::Seat(SeatRef { session: 1, player });
            let grant = key.grant(access, vec![transport.public_addr()]).unwrap();
            Client::connect(&Endpoint::Udp {
                connect_token: grant.connect_token,
            })
            .unwrap()
        };
        let mut first = connect(0);
        let mut second = connect(1);
        let (mut events, mut counters) = (Vec::new(), UdpCounters::default());
        let mut connected = 0;
        let mut second_ended = None;
        let elapsed = Duration::from_millis(5);
        let deadline = Instant::now() + Duration::from_secs(5);
        while (connected == 0 || second_ended.is_none()) && Instant::now() < deadline {
            first.update(elapsed).unwrap();
            if second_ended.is_none() {
                second_ended = second.update(elapsed).err();
            }
            std::thread::sleep(elapsed);
            transport.receive(&mut renet, &mut events, &mut counters);
            transport.update(elapsed, &mut renet, &mut events, &mut counters);
            transport.send_queued(&mut counters);
            for event in events.drain(..) {
                connected += usize::from(matches!(event, UdpEvent::Connected { .. }));
            }
        }
        assert_eq!(connected, 1, "one client fits");
        assert!(
            matches!(&second_ended, Some(ClientError::Disconnected(reason)) if reason.contains("denied")),
            "the second is turned away: {second_ended:?}"
        );
        assert_eq!(counters.denied, 1);
    }
}
