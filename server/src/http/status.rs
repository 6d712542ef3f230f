//! `GET /v1/status`: the server's own figures in a few JSON fields, for
//! the web page's spectate view and for people (Prometheus scrapes
//! `/metrics`; this is the glance). Counters are totals since startup:
//! a reader wanting rates takes two readings and divides by the time
//! between them.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::AppState;

#[derive(Serialize)]
pub(super) struct StatusView {
    /// Simulation rate.
    tick_hz: u32,
    /// The 99th percentile of the last 128 ticks, milliseconds.
    tick_p99_ms: f64,
    /// Whether ticks keep to the overrun budget (readiness says the same).
    ticks_on_time: bool,
    /// Whether snapshots wait at most a snapshot period for the network
    /// thread (readiness says the same).
    snapshots_on_time: bool,
    /// Sessions waiting for players.
    lobby: usize,
    /// Sessions ticking.
    running: usize,
    /// Seats held by connected people and bots.
    players: usize,
    /// Game clients connected (players and spectators), every transport.
    clients: usize,
    /// Spectators connected.
    spectators: usize,
    /// Wire bytes sent to game clients since startup, headers included.
    bytes_out: u64,
    /// Wire bytes received from game clients since startup.
    bytes_in: u64,
}

pub(super) async fn status(State(state): State<AppState>) -> Json<StatusView> {
    let host = state.host.status();
    let net = state.join.as_ref().map(|join| join.net.stats());
    let count = |read: fn(&rampart_net::gateway::NetStats) -> usize| net.map_or(0, read);
    Json(StatusView {
        tick_hz: state.host.tick_hz(),
        tick_p99_ms: host.tick_p99_us as f64 / 1000.0,
        ticks_on_time: host.ticks_on_time,
        snapshots_on_time: host.snapshots_on_time,
        lobby: host.lobby,
        running: host.running,
        players: host.players_connected,
        clients: count(|net| {
            net.udp_clients.load(Ordering::Relaxed) + net.ws_clients.load(Ordering::Relaxed)
        }),
        spectators: count(|net| net.spectators.load(Ordering::Relaxed)),
        bytes_out: net.map_or(0, |net| net.bytes_out.load(Ordering::Relaxed)),
        bytes_in: net.map_or(0, |net| net.bytes_in.load(Ordering::Relaxed)),
    })
}
