//! The network's view of one session: its world tracker, the ring of
//! recent worlds, its clients (players and spectators alike), and sending
//! each of them a delta of the newest world.

use super::*;

/// Sends a session's newest world, if it has not gone out yet, to each of
/// its clients: a delta against the world the client acknowledged, or was
/// written over its WebSocket (a full one when that is unknown or out of
/// the ring), encoded once per distinct
/// baseline into a buffer an earlier world's clients have finished with. A
/// snapshot that fits one bundle slot travels beside renet
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
    for (_, encoding) in net.encoded.drain(..) {
        // Every client it was for has flushed it (the usual case): reuse.
        if Arc::strong_count(&encoding) == 1 {
            net.spare.push(encoding);
        }
    }
    for &client_id in &net.clients {
        let Some(connection) = connections.get_mut(&client_id) else {
            continue;
        };
        if !connection.welcomed || connection.closing || connection.baseline == Some(latest.tick) {
            continue;
        }
        let base: Option<&Arc<NetWorld>> = connection
            .baseline
            .and_then(|tick| net.ring.get(tick))
            .filter(|base| base.tick < latest.tick);
        let key = base.map(|base| base.tick);
        let encoding = match net.encoded.iter().find(|(baseline, _)| *baseline == key) {
            Some((_, encoding)) => encoding.clone(),
            None => {
                let mut encoding = net.spare.pop().unwrap_or_default();
                // Unshared, so this never copies.
                let out = Arc::make_mut(&mut encoding);
                out.clear();
                snapshot::encode(base.map(|base| &**base), &latest, out);
                net.encoded.push((key, encoding.clone()));
                encoding
            }
        };
        if encoding.len() <= MAX_SNAPSHOT_SLOT {
            // Replaces one the net loop had no pass to send: newer is better.
            connection.snapshot = Some(Outgoing {
                tick: latest.tick,
                encoding,
            });
        } else {
            // Too large for one slot (a full world at a join): renet's
            // unreliable channel slices it.
            renet.send_message(
                client_id,
                CHANNEL_SNAPSHOT,
                Bytes::copy_from_slice(&encoding),
            );
            connection.renet_due = true;
        }
        // A snapshot goes out at once, with whatever else is queued.
        connection.hurry(client_id, attention);
    }
}

/// A world's encoding for one baseline, shared by the clients that get it
/// until their flushes; then its buffer serves a later world.
pub(super) type Encoding = Arc<Vec<u8>>;

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
    pub(super) encoded: Vec<(Option<u64>, Encoding)>,
    /// Buffers of earlier rounds' encodings, for the next ones.
    pub(super) spare: Vec<Encoding>,
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
            spare: Vec::new(),
        }
    }
}
