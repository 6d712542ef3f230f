//! The network's view of one session: its world tracker, the ring of
//! recent worlds, its clients (players and spectators alike), and sending
//! each of them a delta of the newest world.

use super::*;

/// Sends a session's newest world, if it has not gone out yet, to each of
/// its clients: a delta against the world the client acknowledged (a full
/// one when that is unknown or out of the ring), encoded once per distinct
/// baseline. A snapshot that fits one bundle slot travels beside renet
/// ([`Slot::Snapshot`]); a larger one is sliced by renet's unreliable
/// channel.
pub(super) fn send_world(
    net: &mut SessionNet,
    connections: &mut HashMap<u64, Connection>,
    renet: &mut RenetServer,
    attention: &mut Attention,
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
        if bytes.len() <= MAX_SNAPSHOT_SLOT {
            // Replaces one the net loop had no pass to send: newer is better.
            connection.snapshot = Some(bytes);
        } else {
            // Too large for one slot: renet's unreliable channel slices it.
            renet.send_message(client_id, CHANNEL_SNAPSHOT, bytes);
            connection.renet_due = true;
        }
        // A snapshot goes out at once, with whatever else is queued.
        connection.hurry(client_id, attention);
    }
}

/// The network's view of one session.
pub(super) struct SessionNet {
    pub(super) tracker: WorldTracker,
    pub(super) ring: SnapshotRing,
    pub(super) clients: Vec<u64>,
    /// How many of `clients` are spectators.
    pub(super) spectators: u16,
    /// A new world arrived since the last send.
    pub(super) fresh: bool,
    /// Encodings of the newest world by baseline tick, this round.
    pub(super) encoded: Vec<(Option<u64>, Bytes)>,
}

impl SessionNet {
    pub(super) fn new() -> Self {
        Self {
            tracker: WorldTracker::new(),
            ring: SnapshotRing::new(),
            clients: Vec::new(),
            spectators: 0,
            fresh: false,
            encoded: Vec::new(),
        }
    }
}
