//! rampart-net: how game clients and the server talk.
//!
//! - [`protocol`]: the versioned messages, channels and limits (see
//!   `docs/PROTOCOL.md`).
//! - [`snapshot`]: the world as clients see it ([`snapshot::NetWorld`]), the
//!   tracker that derives it from the simulation, and the delta codec.
//! - [`tickets`]: netcode connect tokens, WebSocket tickets and reconnect
//!   tokens, all signed with the server's key.
//! - [`gateway`]: where clients meet the game: the renet server behind the
//!   UDP and WebSocket transports, and the seam to the host ([`gateway::GameLink`]).
//! - [`client`]: the client library used by tests, bots and game clients.
//! - [`bundle`]: several renet packets in one datagram or frame (public so
//!   the golden vectors for other clients can be written from it).
//!
//! This crate knows sockets, never databases.
//!
//! Build with `--cfg poly1305_force_soft` on x86 (this workspace's
//! `.cargo/config.toml` does): netcode seals every datagram under a key of
//! its own, and the poly1305 crate's AVX2 backend, made for long messages,
//! makes that seal four times dearer for a datagram of a hundred bytes.

pub mod bundle;
pub mod client;
pub mod gateway;
pub mod protocol;
pub mod snapshot;
pub mod tickets;
