//! The network's view of one session: its world tracker, the ring of
//! recent worlds, its clients (players and spectators alike), and sending
//! each of them a delta of the newest world.

use super::*;

/// Turns the session's pending snapshot, if any, into its newest world and
/// sends that world to each of its clients who lacks it: a delta against
/// the world the client acknowledged, or was written over its WebSocket (a
/// full one when that is unknown or out of the ring), encoded once per
/// distinct baseline into a buffer an earlier world's clients have finished
/// with. Deriving, checksumming and encoding one world back to back finds
/// it in cache; done a feed apart, hundreds of other sessions' worlds had
/// evicted it. A snapshot that fits one bundle slot travels beside renet
/// ([`Slot::Snapshot`]); a larger one is sliced by renet's unreliable
/// channel.
pub(super) fn send_world(
    net: &mut SessionNet,
    connections: &mut HashMap<u64, Connection>,
    renet: &mut RenetServer,
    attention: &mut Attention,
) {
    net.due = false;
    if let Some(snapshot) = net.pending.take() {
        net.derived += 1;
        let world = net.tracker.observe(&snapshot).clone();
        if let Some(dropped) = net.ring.push(world) {
            net.tracker.recycle(dropped);
        }
        for (_, encoding) in net.encoded.drain(..) {
            // Every client it was for has flushed it (the usual case): reuse.
            if Arc::strong_count(&encoding) == 1 {
                net.spare.push(encoding);
            }
        }
    }
    let Some(latest) = net.ring.latest().cloned() else {
        return;
    };
    let checked = net.derived % CHECKSUM_EVERY == 1;
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
                match base {
                    Some(base) if !checked => snapshot::encode_unchecked(Some(base), &latest, out),
                    // A full snapshot is always checked: a client's first
                    // world, or its way back from a failed checksum.
                    base => snapshot::encode(base.map(|base| &**base), &latest, out),
                }
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

/// One world in this many carries its checksum (the first of a session
/// and every full snapshot do too): a client still proves its rebuilt
/// world five times a second, and drops its worlds and asks for a full
/// one when it fails (`docs/PROTOCOL.md`, section 7). Hashing every world
/// took about 3% of a full core.
pub(super) const CHECKSUM_EVERY: u64 = 4;

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
    /// The newest snapshot the game published, not yet a world: a later one
    /// replaces it, so a loop that fell behind skips worlds instead of
    /// deriving and encoding each.
    pub(super) pending: Option<Arc<Snapshot>>,
    /// Listed in [`Attention::worlds`]: its newest world goes out this pass.
    pub(super) due: bool,
    /// Worlds derived so far: which of them carry a checksum.
    pub(super) derived: u64,
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
            pending: None,
            due: false,
            derived: 0,
            encoded: Vec::new(),
            spare: Vec::new(),
        }
    }

    /// Has [`send_world`] run for this session in the pass's step 4.
    pub(super) fn send_this_pass(&mut self, session: u64, attention: &mut Attention) {
        if !self.due {
            self.due = true;
            attention.worlds.push(session);
        }
    }
}
