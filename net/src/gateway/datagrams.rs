//! Datagrams in batches: on Linux one system call reads (`recvmmsg`) or
//! sends (`sendmmsg`) up to [`BATCH`] of them, elsewhere one call each
//! (`one_by_one`, which the tests run on Linux too).
//!
//! At 800 peer sessions on one core the server read some 30,000 datagrams
//! a second and sent as many, one `recvfrom` or `sendto` each; the calls'
//! own cost (entry, the file lookup, libc's cancellation points), apart
//! from the network stack's work per datagram, was 3-4% of its CPU.
//! A pass of the net loop reads what came since the last and sends what
//! its flushes made: tens of datagrams per socket, one call each way.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;
use renetcode::NETCODE_MAX_PACKET_BYTES;

/// Datagrams per system call.
pub(crate) const BATCH: usize = 32;
/// One byte more than netcode allows, so an oversized datagram shows.
pub(crate) const DATAGRAM_ROOM: usize = NETCODE_MAX_PACKET_BYTES + 1;

/// Datagrams queued for one socket, in the order they are to go: what a
/// pass of the net loop sends (tens of datagrams; after a goodbye to
/// everyone, one each), sent at its end.
#[derive(Default)]
pub(crate) struct Outbox {
    /// The payloads, back to back.
    bytes: Vec<u8>,
    /// Each payload's end in `bytes`, and where it goes.
    datagrams: Vec<(usize, SocketAddr)>,
}

/// What sending an outbox did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Sent {
    /// Payload bytes the kernel took.
    pub bytes: u64,
    /// Datagrams the kernel took.
    pub datagrams: u64,
    /// Datagrams the kernel refused (its send buffer full, or the address
    /// unreachable): dropped, as a lost datagram would be.
    pub failed: u64,
}

impl Outbox {
    pub(crate) fn push(&mut self, payload: &[u8], to: SocketAddr) {
        self.bytes.extend_from_slice(payload);
        self.datagrams.push((self.bytes.len(), to));
    }

    /// Sends everything queued, in order, and empties the box.
    pub(crate) fn send(&mut self, socket: &UdpSocket) -> Sent {
        self.send_with(socket, send_batch)
    }

    fn send_with(&mut self, socket: &UdpSocket, send_batch: SendBatch) -> Sent {
        let mut sent = Sent::default();
        let mut first = 0;
        while first < self.datagrams.len() {
            let batch = &self.datagrams[first..(first + BATCH).min(self.datagrams.len())];
            let start = first
                .checked_sub(1)
                .map_or(0, |last| self.datagrams[last].0);
            match send_batch(socket, &self.bytes, start, batch) {
                Ok(count) if count > 0 => {
                    let end = batch[count - 1].0;
                    sent.bytes += (end - start) as u64;
                    sent.datagrams += count as u64;
                    first += count;
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // The kernel's send buffer is full. Everything left would
                // be refused alike, a system call each, so it is dropped
                // at once, as a full queue drops datagrams: snapshots are
                // superseded and renet resends what must arrive.
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    tracing::debug!(%error, "UDP send buffer full");
                    sent.failed += (self.datagrams.len() - first) as u64;
                    break;
                }
                // The first of the batch failed (or, which the kernel never
                // reports, nothing went): drop it, go on.
                result => {
                    tracing::debug!(?result, to = %batch[0].1, "UDP send failed");
                    sent.failed += 1;
                    first += 1;
                }
            }
        }
        self.bytes.clear();
        self.datagrams.clear();
        sent
    }
}

/// Room for a batch of datagrams read at once.
pub(crate) struct Inbox {
    buffers: Box<[[u8; DATAGRAM_ROOM]; BATCH]>,
    received: Received,
}

/// What the reads of a socket found.
struct Received {
    /// The last read's datagrams, one per buffer: its length as read
    /// (truncated to [`DATAGRAM_ROOM`]) and its sender.
    datagrams: Vec<(usize, SocketAddr)>,
    /// Datagrams the kernel dropped on the socket since it opened, its
    /// receive buffer full, as the latest datagram read told. On Linux
    /// every datagram queued after a drop carries the count
    /// (`SO_RXQ_OVFL`, set by `socket::bind_udp`); elsewhere it stays 0.
    kernel_drops: u32,
}

impl Inbox {
    pub(crate) fn new() -> Self {
        Self {
            buffers: Box::new([[0; DATAGRAM_ROOM]; BATCH]),
            received: Received {
                datagrams: Vec::with_capacity(BATCH),
                kernel_drops: 0,
            },
        }
    }

    /// Datagrams the kernel dropped on the socket since it opened (wrapping
    /// at `u32::MAX`), as of the latest datagram read: a drop shows once a
    /// datagram queued after it is read.
    pub(crate) fn kernel_drops(&self) -> u32 {
        self.received.kernel_drops
    }

    /// Reads up to [`BATCH`] waiting datagrams; `Ok(0)` when none wait.
    /// Fewer than a batch means the socket had no more: the caller need
    /// not ask again (a system call) only to hear so.
    pub(crate) fn receive(&mut self, socket: &UdpSocket) -> io::Result<usize> {
        self.receive_with(socket, receive_batch)
    }

    fn receive_with(
        &mut self,
        socket: &UdpSocket,
        receive_batch: ReceiveBatch,
    ) -> io::Result<usize> {
        self.received.datagrams.clear();
        match receive_batch(socket, &mut self.buffers, &mut self.received) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(0),
            result => result,
        }
    }

    /// The `index`th datagram of the last read: its bytes (those past
    /// `DATAGRAM_ROOM` cut off) and its sender.
    pub(crate) fn datagram(&mut self, index: usize) -> (&mut [u8], SocketAddr) {
        let (len, from) = self.received.datagrams[index];
        (&mut self.buffers[index][..len], from)
    }
}

#[cfg(target_os = "linux")]
mod batched {
    use std::cell::RefCell;
    use std::io::{IoSlice, IoSliceMut};
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
    use std::os::fd::{AsRawFd, RawFd};

    use nix::sys::socket::{
        ControlMessageOwned, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg,
    };
    use rustix::net::{MMsgHdr, SendAncillaryBuffer, SendFlags, SocketAddrAny, sendmmsg};

    use super::*;

    /// The address of an unused message slot, and the sender recorded for
    /// a datagram that came without an IP one (which a UDP socket never
    /// gets; it is kept in its place, empty, and netcode refuses it).
    const NOWHERE: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0));

    thread_local! {
        /// The kernel's message headers for batch reads, a set per socket
        /// (by descriptor). They point into the buffers of each call, so
        /// they are not `Send` and cannot live in the net loop, which is
        /// built on one thread and run on another: each thread keeps its
        /// own, allocated once (and again after the kernel cut a drop
        /// count short, below). No two sockets share a set: a read leaves
        /// each header it used the control room its datagram took, so a
        /// socket that never dropped would take back, at every read, the
        /// room another that has dropped needs for its count.
        static HEADERS: RefCell<Vec<(RawFd, MultiHeaders<SockaddrStorage>)>> =
            const { RefCell::new(Vec::new()) };
    }

    /// Headers for a batch, each with room for a datagram's drop count.
    fn fresh_headers() -> MultiHeaders<SockaddrStorage> {
        MultiHeaders::preallocate(BATCH, Some(nix::cmsg_space!(u32)))
    }

    /// Sends `batch` (payloads back to back in `bytes` from `start`, each
    /// ending where its entry says) with one `sendmmsg`. How many went:
    /// the first that did not is the next call's first, whose error that
    /// call reports.
    pub(super) fn send_batch(
        socket: &UdpSocket,
        bytes: &[u8],
        start: usize,
        batch: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        let mut from = start;
        let slices: [[IoSlice<'_>; 1]; BATCH] = std::array::from_fn(|index| {
            let payload = match batch.get(index) {
                Some(&(end, _)) => &bytes[std::mem::replace(&mut from, end)..end],
                None => &[],
            };
            [IoSlice::new(payload)]
        });
        let addresses: [SocketAddrAny; BATCH] = std::array::from_fn(|index| {
            SocketAddrAny::from(batch.get(index).map_or(NOWHERE, |&(_, to)| to))
        });
        let mut controls: [SendAncillaryBuffer<'_, '_, '_>; BATCH] =
            std::array::from_fn(|_| SendAncillaryBuffer::default());
        let mut controls = controls.iter_mut();
        let mut messages: [MMsgHdr<'_>; BATCH] = std::array::from_fn(|index| {
            let Some(control) = controls.next() else {
                unreachable!("one control buffer per message");
            };
            MMsgHdr::new_with_addr(&addresses[index], &slices[index], control)
        });
        // The caller passes at most a batch; more would go unsent, not
        // out of bounds.
        let count = batch.len().min(BATCH);
        Ok(sendmmsg(
            socket,
            &mut messages[..count],
            SendFlags::DONTWAIT,
        )?)
    }

    /// Reads up to [`BATCH`] datagrams with one `recvmmsg`, noting each
    /// one's length and sender, and the kernel's drop count where one
    /// came, in `received`: as many as wait, so fewer than a batch means
    /// none are left.
    pub(super) fn receive_batch(
        socket: &UdpSocket,
        buffers: &mut [[u8; DATAGRAM_ROOM]; BATCH],
        received: &mut Received,
    ) -> io::Result<usize> {
        let fd = socket.as_raw_fd();
        HEADERS.with_borrow_mut(|sets| {
            let set = match sets.iter().position(|(owner, _)| *owner == fd) {
                Some(set) => set,
                None => {
                    sets.push((fd, fresh_headers()));
                    sets.len() - 1
                }
            };
            let headers = &mut sets[set].1;
            let mut slices = buffers.each_mut().map(|buffer| [IoSliceMut::new(buffer)]);
            let messages = recvmmsg(fd, headers, slices.iter_mut(), MsgFlags::MSG_DONTWAIT, None)?;
            let mut cut = false;
            // The count is the socket's total so far: the batch's last
            // datagram that has room for it tells all the batch can.
            let mut latest = None;
            for message in messages {
                received
                    .datagrams
                    .push(match message.address.as_ref().and_then(socket_addr) {
                        Some(from) => (message.bytes, from),
                        None => (0, NOWHERE),
                    });
                if message.flags.contains(MsgFlags::MSG_CTRUNC) {
                    cut = true;
                } else {
                    latest = Some(message);
                }
            }
            if let Some(Ok(controls)) = latest.as_ref().map(|message| message.cmsgs()) {
                for control in controls {
                    if let ControlMessageOwned::RxqOvfl(total) = control {
                        received.kernel_drops = total;
                    }
                }
            }
            if cut {
                // The kernel writes back how much control room each read
                // used, and nix does not restore it, so a header whose
                // datagrams came without a count (before any drop) has no
                // room left for one. After a drop every datagram carries
                // the count: rebuilt once, the headers keep their room,
                // and the next read tells the count this one lost.
                *headers = fresh_headers();
            }
            Ok(received.datagrams.len())
        })
    }

    fn socket_addr(address: &SockaddrStorage) -> Option<SocketAddr> {
        match (address.as_sockaddr_in(), address.as_sockaddr_in6()) {
            (Some(v4), _) => Some(SocketAddr::V4(SocketAddrV4::from(*v4))),
            (_, Some(v6)) => Some(SocketAddr::V6(SocketAddrV6::from(*v6))),
            _ => None,
        }
    }
}

#[cfg(any(not(target_os = "linux"), test))]
mod one_by_one {
    use super::*;

    /// One `send_to` per call: how many went (one), or the error.
    pub(super) fn send_batch(
        socket: &UdpSocket,
        bytes: &[u8],
        start: usize,
        batch: &[(usize, SocketAddr)],
    ) -> io::Result<usize> {
        let (end, to) = batch[0];
        socket.send_to(&bytes[start..end], to).map(|_| 1)
    }

    /// Up to [`BATCH`] datagrams, one `recv_from` each, until none wait:
    /// the same answer as a `recvmmsg`, so fewer than a batch means none
    /// are left.
    pub(super) fn receive_batch(
        socket: &UdpSocket,
        buffers: &mut [[u8; DATAGRAM_ROOM]; BATCH],
        received: &mut Received,
    ) -> io::Result<usize> {
        for buffer in buffers.iter_mut() {
            match socket.recv_from(buffer) {
                Ok((len, from)) => received.datagrams.push((len, from)),
                // What came is handed over; the error (`WouldBlock`: none
                // left) is the next call's, as with `recvmmsg`.
                Err(_) if !received.datagrams.is_empty() => break,
                Err(error) => return Err(error),
            }
        }
        Ok(received.datagrams.len())
    }
}

type SendBatch = fn(&UdpSocket, &[u8], usize, &[(usize, SocketAddr)]) -> io::Result<usize>;
type ReceiveBatch =
    fn(&UdpSocket, &mut [[u8; DATAGRAM_ROOM]; BATCH], &mut Received) -> io::Result<usize>;

#[cfg(target_os = "linux")]
use batched::{receive_batch, send_batch};
#[cfg(not(target_os = "linux"))]
use one_by_one::{receive_batch, send_batch};

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::{Duration, Instant};

    use super::*;

    /// Both ways of moving datagrams on Linux; elsewhere the one there is.
    #[cfg(target_os = "linux")]
    const WAYS: [(&str, SendBatch, ReceiveBatch); 2] = [
        ("batched", batched::send_batch, batched::receive_batch),
        ONE_BY_ONE,
    ];
    #[cfg(not(target_os = "linux"))]
    const WAYS: [(&str, SendBatch, ReceiveBatch); 1] = [ONE_BY_ONE];
    const ONE_BY_ONE: (&str, SendBatch, ReceiveBatch) = (
        "one by one",
        one_by_one::send_batch,
        one_by_one::receive_batch,
    );

    fn bound() -> UdpSocket {
        UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap()
    }

    /// Reads what `inbox` gets until `count` datagrams came (or 5 s).
    fn read(
        inbox: &mut Inbox,
        socket: &UdpSocket,
        receive: ReceiveBatch,
        count: usize,
    ) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while got.len() < count && Instant::now() < deadline {
            let read = inbox.receive_with(socket, receive).unwrap();
            assert!(read <= BATCH);
            for index in 0..read {
                let (bytes, from) = inbox.datagram(index);
                got.push((bytes.to_vec(), from));
            }
            if read == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        got
    }

    /// More than two batches to two sockets: every datagram arrives, each
    /// socket's in the order queued, and the count and bytes are reported.
    #[test]
    fn an_outbox_sends_everything_in_order_a_batch_at_a_time() {
        for (way, send, receive) in WAYS {
            let (sender, first, second) = (bound(), bound(), bound());
            let mut outbox = Outbox::default();
            let total = 2 * BATCH + 5;
            let mut bytes = 0;
            for index in 0..total {
                let to = if index % 3 == 0 { &second } else { &first };
                let payload = vec![index as u8; 1 + index * 7];
                bytes += payload.len() as u64;
                outbox.push(&payload, to.local_addr().unwrap());
            }
            let sent = outbox.send_with(&sender, send);
            let expected = Sent {
                bytes,
                datagrams: total as u64,
                failed: 0,
            };
            assert_eq!(sent, expected, "{way}");
            assert_eq!(
                outbox.send_with(&sender, send),
                Sent::default(),
                "{way}: the box is empty after"
            );
            let mut inbox = Inbox::new();
            let from = sender.local_addr().unwrap();
            for (socket, to_second) in [(&first, false), (&second, true)] {
                let expected: Vec<(u8, usize, SocketAddr)> = (0..total)
                    .filter(|index| (index % 3 == 0) == to_second)
                    .map(|index| (index as u8, 1 + index * 7, from))
                    .collect();
                let got: Vec<(u8, usize, SocketAddr)> =
                    read(&mut inbox, socket, receive, expected.len())
                        .into_iter()
                        .map(|(bytes, from)| (bytes[0], bytes.len(), from))
                        .collect();
                assert_eq!(got, expected, "{way}");
            }
        }
    }

    /// A read takes what waits, up to a batch: fewer than a batch means
    /// the socket is empty, so the net loop asks no more that pass.
    #[test]
    fn a_short_batch_means_nothing_is_left() {
        for (way, _, receive) in WAYS {
            let (sender, receiver) = (bound(), bound());
            let to = receiver.local_addr().unwrap();
            for index in 0..BATCH + 3 {
                sender.send_to(&[index as u8], to).unwrap();
            }
            // Loopback delivers within the send.
            let mut inbox = Inbox::new();
            assert_eq!(
                inbox.receive_with(&receiver, receive).unwrap(),
                BATCH,
                "{way}"
            );
            assert_eq!(inbox.receive_with(&receiver, receive).unwrap(), 3, "{way}");
            assert_eq!(inbox.datagram(2).0, [BATCH as u8 + 2], "{way}");
            assert_eq!(inbox.receive_with(&receiver, receive).unwrap(), 0, "{way}");
        }
    }

    /// A datagram the kernel refuses (an IPv6 destination for an IPv4
    /// socket) is counted and dropped; those after it still go.
    #[test]
    fn a_refused_datagram_is_dropped_and_the_rest_go() {
        for (way, send, receive) in WAYS {
            let (sender, receiver) = (bound(), bound());
            let to = receiver.local_addr().unwrap();
            let mut outbox = Outbox::default();
            outbox.push(b"one", to);
            outbox.push(b"lost", "[::1]:9".parse().unwrap());
            outbox.push(b"two", to);
            let sent = outbox.send_with(&sender, send);
            let expected = Sent {
                bytes: 6,
                datagrams: 2,
                failed: 1,
            };
            assert_eq!(sent, expected, "{way}");
            let got = read(&mut Inbox::new(), &receiver, receive, 2);
            let payloads: Vec<&[u8]> = got.iter().map(|(bytes, _)| &bytes[..]).collect();
            assert_eq!(payloads, [&b"one"[..], &b"two"[..]], "{way}");
        }
    }

    /// With the send buffer full, what is left is dropped and counted in
    /// one go, not tried again a system call per datagram.
    #[test]
    fn a_full_send_buffer_drops_the_rest_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static CALLS: AtomicUsize = AtomicUsize::new(0);
        /// Takes three datagrams, then finds the buffer full.
        fn fills_after_three(
            _: &UdpSocket,
            _: &[u8],
            _: usize,
            batch: &[(usize, SocketAddr)],
        ) -> io::Result<usize> {
            match CALLS.fetch_add(1, Ordering::SeqCst) {
                0 => Ok(batch.len().min(3)),
                _ => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
        let sender = bound();
        let to = bound().local_addr().unwrap();
        let mut outbox = Outbox::default();
        for _ in 0..BATCH + 10 {
            outbox.push(b"snapshot", to);
        }
        let sent = outbox.send_with(&sender, fills_after_three);
        let expected = Sent {
            bytes: 3 * 8,
            datagrams: 3,
            failed: BATCH as u64 + 7,
        };
        assert_eq!(sent, expected);
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        assert_eq!(
            outbox.send_with(&sender, fills_after_three),
            Sent::default()
        );
    }

    /// A datagram larger than netcode allows is read cut at one byte past
    /// the limit, so the caller sees it is too large.
    #[test]
    fn an_oversized_datagram_shows_as_one_byte_too_long() {
        for (way, _, receive) in WAYS {
            let (sender, receiver) = (bound(), bound());
            let to = receiver.local_addr().unwrap();
            sender.send_to(&[1; 3000], to).unwrap();
            sender.send_to(&[2; 10], to).unwrap();
            let got = read(&mut Inbox::new(), &receiver, receive, 2);
            let lengths: Vec<usize> = got.iter().map(|(bytes, _)| bytes.len()).collect();
            assert_eq!(lengths, [DATAGRAM_ROOM, 10], "{way}");
        }
    }
}
