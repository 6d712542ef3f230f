//! Several packets in one datagram or frame, and the two kinds of packet
//! that travel beside renet's.
//!
//! renet hands the transport one packet per channel plus a separate ack
//! packet on every flush, and netcode would put each in its own datagram:
//! at 20 snapshots a second the second datagram (about 55 bytes with its
//! headers) costs a client a quarter of its bandwidth. Both ends of both
//! transports are ours, so a flush's packets travel together: each one
//! prefixed by its length as a LEB128 varint, as many as fit in
//! [`BUNDLE_LIMIT`] bytes per datagram or frame.
//!
//! A snapshot that fits one slot, and a client's acknowledgement of one,
//! skip renet altogether ([`Slot::Snapshot`], [`Slot::SnapshotAck`]): they
//! are sent once, never resent nor ordered, which is all renet's unreliable
//! channel did for them, and going through it cost each of them a message
//! allocation, a packet with its own sequence, a sent-packet record, and an
//! ack packet each way that then had to be acknowledged in turn. That
//! per-message work was a sixth of the server's CPU under the peer's
//! workload (`docs/BENCHMARKS.md`). Only a snapshot too large for one slot
//! (a full world of a busy session) still takes renet's unreliable channel,
//! which slices it.

use rampart_sim::leb128;

/// Bytes of bundled packets per datagram or frame (netcode carries at most
/// 1,300 bytes of payload). A single packet larger than this still goes,
/// alone.
pub const BUNDLE_LIMIT: usize = 1_280;

/// The first byte of a slot holding a snapshot (section 7's bytes follow).
/// renet's packet types are 0 to 4, so no renet packet starts with it.
pub const SNAPSHOT_SLOT: u8 = 0x10;
/// The first byte of a slot acknowledging a snapshot: its tick follows, as
/// LEB128, and nothing after it.
pub const SNAPSHOT_ACK_SLOT: u8 = 0x11;
/// The largest snapshot that travels in a slot of its own: with its kind
/// byte and a 2-byte length it fills a bundle. Larger ones take renet's
/// unreliable channel.
pub const MAX_SNAPSHOT_SLOT: usize = BUNDLE_LIMIT - 3;

/// What one slot of a bundle holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot<'a> {
    /// A renet packet, for renet to read.
    Renet(&'a [u8]),
    /// A snapshot, server to client.
    Snapshot(&'a [u8]),
    /// The newest tick a client holds, client to server.
    SnapshotAck(u64),
}

impl<'a> Slot<'a> {
    /// What a slot's bytes hold; `None` for an acknowledgement without a
    /// well-formed tick.
    pub fn read(bytes: &'a [u8]) -> Option<Self> {
        match bytes.split_first() {
            Some((&SNAPSHOT_SLOT, snapshot)) => Some(Slot::Snapshot(snapshot)),
            Some((&SNAPSHOT_ACK_SLOT, tick)) => match leb128::read(tick) {
                Ok((tick, [])) => Some(Slot::SnapshotAck(tick)),
                _ => None,
            },
            _ => Some(Slot::Renet(bytes)),
        }
    }

    /// Bytes in the slot, without its length prefix.
    fn len(&self) -> usize {
        match self {
            Slot::Renet(packet) => packet.len(),
            Slot::Snapshot(snapshot) => 1 + snapshot.len(),
            Slot::SnapshotAck(tick) => 1 + leb128::len(*tick),
        }
    }

    /// Appends the slot with its length prefix.
    fn write(&self, bundle: &mut Vec<u8>) {
        leb128::write(bundle, self.len() as u64);
        match self {
            Slot::Renet(packet) => bundle.extend_from_slice(packet),
            Slot::Snapshot(snapshot) => {
                bundle.push(SNAPSHOT_SLOT);
                bundle.extend_from_slice(snapshot);
            }
            Slot::SnapshotAck(tick) => {
                bundle.push(SNAPSHOT_ACK_SLOT);
                leb128::write(bundle, *tick);
            }
        }
    }
}

/// renet's packets as slots.
pub fn renet_slots<P: AsRef<[u8]>>(packets: &[P]) -> impl Iterator<Item = Slot<'_>> {
    packets.iter().map(|packet| Slot::Renet(packet.as_ref()))
}

/// Packs `slots` in order into as few bundles as fit the limit, each
/// built in `buffer` and handed to `emit`; stops after the first bundle
/// `emit` refuses (returns false for). The caller keeps `buffer` between
/// flushes, so bundling allocates nothing once it has grown.
pub fn each_bundle<'a>(
    slots: impl IntoIterator<Item = Slot<'a>>,
    buffer: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]) -> bool,
) {
    buffer.clear();
    for slot in slots {
        let len = slot.len();
        let needed = leb128::len(len as u64) + len;
        if !buffer.is_empty() && buffer.len() + needed > BUNDLE_LIMIT {
            let go_on = emit(buffer);
            buffer.clear();
            if !go_on {
                return;
            }
        }
        slot.write(buffer);
    }
    if !buffer.is_empty() {
        emit(buffer);
        buffer.clear();
    }
}

/// Packs `slots` into as few bundles as fit the limit, in order, each in
/// its own allocation (for clients, which send a few a second).
pub fn bundle<'a>(slots: impl IntoIterator<Item = Slot<'a>>) -> Vec<Vec<u8>> {
    let mut bundles = Vec::new();
    each_bundle(slots, &mut Vec::new(), |bundle| {
        bundles.push(bundle.to_vec());
        true
    });
    bundles
}

/// The slots of a bundle, in order; `None` once the bundle turns out
/// malformed (a zero length, a length past the end, a bad varint, or an
/// acknowledgement without a tick), after yielding the well-formed slots
/// before it.
pub fn unbundle(mut bytes: &[u8]) -> impl Iterator<Item = Option<Slot<'_>>> {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || bytes.is_empty() {
            return None;
        }
        let slot = leb128::read(bytes).ok().and_then(|(len, rest)| {
            let len = usize::try_from(len).ok().filter(|&len| len > 0)?;
            let (slot, rest) = rest.split_at_checked(len)?;
            bytes = rest;
            Slot::read(slot)
        });
        failed = slot.is_none();
        Some(slot)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots_of(bundle: &[u8]) -> Vec<Slot<'_>> {
        unbundle(bundle)
            .map(|slot| slot.expect("well formed"))
            .collect()
    }

    #[test]
    fn packets_travel_together_and_come_apart_in_order() {
        let packets = vec![vec![1; 100], vec![2; 5], vec![3; 300]];
        let bundles = bundle(renet_slots(&packets));
        assert_eq!(bundles.len(), 1);
        let back: Vec<Slot<'_>> = renet_slots(&packets).collect();
        assert_eq!(slots_of(&bundles[0]), back);
    }

    #[test]
    fn snapshots_and_acks_travel_beside_renet_packets() {
        let renet = [vec![4, 7, 0, 0]];
        let snapshot = [9u8; 300];
        let slots = [
            Slot::Renet(&renet[0]),
            Slot::Snapshot(&snapshot),
            Slot::SnapshotAck(1_000_000),
        ];
        let bundles = bundle(slots);
        assert_eq!(bundles.len(), 1);
        assert_eq!(slots_of(&bundles[0]), slots);
        // Kind byte, then the tick as LEB128, after a one-byte length.
        assert_eq!(
            bundle([Slot::SnapshotAck(300)]),
            [vec![3, SNAPSHOT_ACK_SLOT, 0xac, 0x02]]
        );
        // The largest snapshot a slot takes fills a bundle exactly.
        let largest = vec![1; MAX_SNAPSHOT_SLOT];
        assert_eq!(bundle([Slot::Snapshot(&largest)])[0].len(), BUNDLE_LIMIT);
    }

    #[test]
    fn no_renet_packet_reads_as_a_slot_of_ours() {
        for kind in 0..=4 {
            let packet = [kind, 1, 2, 3];
            assert_eq!(Slot::read(&packet), Some(Slot::Renet(&packet)));
        }
    }

    #[test]
    fn bundles_respect_the_limit() {
        let packets = vec![vec![7; 1000], vec![8; 1000], vec![9; 1300]];
        let bundles = bundle(renet_slots(&packets));
        assert_eq!(bundles.len(), 3);
        assert!(
            bundles[..2]
                .iter()
                .all(|bundle| bundle.len() <= BUNDLE_LIMIT)
        );
    }

    #[test]
    fn a_refused_bundle_stops_the_rest_and_the_buffer_is_reused() {
        let packets = vec![vec![1; 1000], vec![2; 1000], vec![3; 1000]];
        let mut buffer = Vec::new();
        let mut seen = Vec::new();
        each_bundle(renet_slots(&packets), &mut buffer, |bundle| {
            seen.push(bundle[2]);
            false
        });
        assert_eq!(seen, [1]);
        assert!(buffer.is_empty());
        let grown = buffer.capacity();
        each_bundle(renet_slots(&packets), &mut buffer, |bundle| {
            seen.push(bundle[2]);
            true
        });
        assert_eq!(seen, [1, 1, 2, 3]);
        assert_eq!(buffer.capacity(), grown);
    }

    #[test]
    fn malformed_bundles_end_in_none() {
        assert_eq!(unbundle(&[5, 1, 2]).collect::<Vec<_>>(), [None]);
        assert_eq!(unbundle(&[0]).collect::<Vec<_>>(), [None]);
        assert_eq!(
            unbundle(&[0xff, 0xff, 0xff, 0x01]).collect::<Vec<_>>(),
            [None]
        );
        let good_then_bad: Vec<_> = unbundle(&[1, 9, 3, 1]).collect();
        assert_eq!(good_then_bad, [Some(Slot::Renet(&[9u8][..])), None]);
        assert_eq!(unbundle(&[]).count(), 0);
        // An acknowledgement without a tick, or with bytes after it.
        assert_eq!(
            unbundle(&[1, SNAPSHOT_ACK_SLOT, 1, 9]).collect::<Vec<_>>(),
            [None]
        );
        assert_eq!(
            unbundle(&[3, SNAPSHOT_ACK_SLOT, 5, 0, 1, 9]).collect::<Vec<_>>(),
            [None]
        );
    }
}
