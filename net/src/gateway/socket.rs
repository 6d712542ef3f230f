//! The kernel's side of the game's UDP sockets: a receive buffer sized for
//! the moments the net thread is off the CPU, and the datagrams the kernel
//! dropped when it was full anyway.
//!
//! Linux's default receive buffer (`net.core.rmem_default`, 208 KiB) holds
//! about 10 ms of a full socket's acknowledgements (1,024 clients, 20 a
//! second, about a kilobyte of kernel memory each). A net thread sharing
//! its core with the step threads is off it for longer than that: with the
//! default, a server pinned to one core at 500 sessions lost so many
//! datagrams that netcode timed out a tenth of its UDP clients, and nothing
//! on the server said why.

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
    socket.bind(&address.into())?;
    socket.set_nonblocking(true)?;
    Ok((socket.into(), granted))
}

/// The kernel's tables of this network namespace's UDP sockets
/// (`/proc/self/net/udp`, then `udp6`), read once for all of the server's
/// sockets. Empty where there is no `/proc`.
pub(crate) struct UdpTables(String);

impl UdpTables {
    pub(crate) fn read() -> Self {
        let mut tables = String::new();
        for path in ["/proc/self/net/udp", "/proc/self/net/udp6"] {
            if let Ok(table) = std::fs::read_to_string(path) {
                tables.push_str(&table);
            }
        }
        Self(tables)
    }

    /// The drops of the socket with `inode`: on its line (one per socket,
    /// the header lines aside), the tenth field is the inode and the last
    /// the drops.
    fn drops_of(&self, inode: u64) -> Option<u64> {
        self.0.lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            let ours = fields.nth(9)?.parse::<u64>().ok()? == inode;
            ours.then(|| fields.last()?.parse().ok()).flatten()
        })
    }
}

/// Datagrams the kernel dropped on a socket because its receive buffer was
/// full, counted since the last call. Where the kernel does not say (no
/// `/proc`, not Linux), none are counted and the socket works as ever.
pub(crate) struct KernelDrops {
    /// The socket's inode, which names it in the [`UdpTables`].
    inode: Option<u64>,
    seen: u64,
}

impl KernelDrops {
    /// Follows `socket`.
    pub(crate) fn of(socket: &std::net::UdpSocket) -> Self {
        let mut drops = KernelDrops {
            inode: inode(socket),
            seen: 0,
        };
        drops.seen = drops.total(&UdpTables::read()).unwrap_or(0);
        drops
    }

    /// Drops since the last call, from `tables` read just now.
    pub(crate) fn since_last(&mut self, tables: &UdpTables) -> u64 {
        let Some(total) = self.total(tables) else {
            return 0;
        };
        let new = total.saturating_sub(self.seen);
        self.seen = total;
        new
    }

    /// The socket's drops since it opened.
    fn total(&self, tables: &UdpTables) -> Option<u64> {
        tables.drops_of(self.inode?)
    }
}

/// The inode behind a socket's descriptor (`/proc/self/fd/N`).
#[cfg(unix)]
fn inode(socket: &std::net::UdpSocket) -> Option<u64> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let path = format!("/proc/self/fd/{}", socket.as_raw_fd());
    std::fs::metadata(path).ok().map(|metadata| metadata.ino())
}

#[cfg(not(unix))]
fn inode(_socket: &std::net::UdpSocket) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_socket_line_is_found_by_inode() {
        let tables = UdpTables(String::from("   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1163: 0100007F:1388 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 48213 2 0000000000000000 0
 1170: 0100007F:E4A1 00000000:0000 07 00000000:0003F000 00:00000000 00000000     0        0 48977 2 0000000000000000 1534
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1280: 00000000000000000000000001000000:1389 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 50112 2 0000000000000000 7
"));
        assert_eq!(tables.drops_of(48977), Some(1534));
        assert_eq!(tables.drops_of(48213), Some(0));
        assert_eq!(tables.drops_of(50112), Some(7), "the IPv6 table after it");
        assert_eq!(tables.drops_of(1), None);
    }

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

    /// A socket nobody reads drops what does not fit, and says so.
    #[cfg(target_os = "linux")]
    #[test]
    fn datagrams_past_a_full_buffer_are_counted() {
        let (socket, _) = bind_udp("127.0.0.1:0".parse().unwrap(), 4096).unwrap();
        let mut drops = KernelDrops::of(&socket);
        assert!(drops.inode.is_some(), "Linux names the socket in /proc");
        assert_eq!(drops.since_last(&UdpTables::read()), 0);
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let target = socket.local_addr().unwrap();
        for _ in 0..200 {
            sender.send_to(&[7; 512], target).unwrap();
        }
        let dropped = drops.since_last(&UdpTables::read());
        assert!(dropped > 100, "{dropped} of 200 dropped");
        assert_eq!(drops.since_last(&UdpTables::read()), 0, "counted once");
    }
}
