//! The kernel's side of the game's UDP sockets: a receive buffer sized for
//! the moments the net thread is off the CPU, and the kernel asked to tell
//! how many datagrams it dropped when the buffer was full anyway.
//!
//! Linux's default receive buffer (`net.core.rmem_default`, 208 KiB) holds
//! about 10 ms of a full socket's acknowledgements (1,024 clients, 20 a
//! second, about a kilobyte of kernel memory each). A net thread sharing
//! its core with the step threads is off it for longer than that: with the
//! default, a server pinned to one core at 500 sessions lost so many
//! datagrams that netcode timed out a tenth of its UDP clients, and nothing
//! on the server said why.
//!
//! The drops come with the datagrams read (`SO_RXQ_OVFL`,
//! `datagrams::Inbox::kernel_drops`). They were read once a second from
//! `/proc/self/net/udp`, which lists every UDP socket of the network
//! namespace: beside a load generator's 1,800 that took the net thread
//! about 6 ms each time, a stall in its loop.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Binds a non-blocking UDP socket at `address`, asking for a receive
/// buffer of `receive_buffer` bytes. Returns the socket and the bytes the
/// kernel granted: Linux caps the request at `net.core.rmem_max`.
pub(crate) fn bind_udp(
    address: SocketAddr,
    receive_buffer: usize,
) -> io::Result<(std::net::UdpSocket, usize)> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_recv_buffer_size(receive_buffer)?;
    // Linux reports twice what it grants, its bookkeeping's share included.
    let reported_per_granted = if cfg!(target_os = "linux") { 2 } else { 1 };
    let granted = socket.recv_buffer_size()? / reported_per_granted;
    #[cfg(target_os = "linux")]
    if let Err(error) =
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::RxqOvfl, &1)
    {
        tracing::warn!(%error, "a UDP socket will not count the datagrams its kernel drops");
    }
    socket.bind(&address.into())?;
    socket.set_nonblocking(true)?;
    Ok((socket.into(), granted))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_receive_buffer_is_what_was_asked_up_to_the_kernels_cap() {
        let (socket, granted) = bind_udp("127.0.0.1:0".parse().unwrap(), 1 << 20).unwrap();
        assert!(socket.local_addr().unwrap().port() != 0);
        // Linux grants min(asked, rmem_max).
        if cfg!(target_os = "linux") {
            let cap: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
                .unwrap()
                .trim()
                .parse()
                .unwrap();
            assert_eq!(granted, cap.min(1 << 20));
        }
    }
}
