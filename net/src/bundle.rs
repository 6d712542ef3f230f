//! Several renet packets in one datagram or frame.
//!
//! renet hands the transport one packet per channel plus a separate ack
//! packet on every flush, and netcode would put each in its own datagram:
//! at 20 snapshots a second the second datagram (about 55 bytes with its
//! headers) costs a client a quarter of its bandwidth. Both ends of both
//! transports are ours, so a flush's packets travel together: each one
//! prefixed by its length as a LEB128 varint, as many as fit in
//! [`BUNDLE_LIMIT`] bytes per datagram or frame.

use rampart_sim::leb128;

/// Bytes of bundled packets per datagram or frame (netcode carries at most
/// 1,300 bytes of payload). A single packet larger than this still goes,
/// alone.
pub const BUNDLE_LIMIT: usize = 1_280;

/// Packs `packets` in order into as few bundles as fit the limit, each
/// built in `buffer` and handed to `emit`; stops after the first bundle
/// `emit` refuses (returns false for). The caller keeps `buffer` between
/// flushes, so bundling allocates nothing once it has grown.
pub fn each_bundle<P: AsRef<[u8]>>(
    packets: &[P],
    buffer: &mut Vec<u8>,
    mut emit: impl FnMut(&[u8]) -> bool,
) {
    buffer.clear();
    for packet in packets {
        let packet = packet.as_ref();
        let needed = leb128::len(packet.len() as u64) + packet.len();
        if !buffer.is_empty() && buffer.len() + needed > BUNDLE_LIMIT {
            let go_on = emit(buffer);
            buffer.clear();
            if !go_on {
                return;
            }
        }
        push(buffer, packet);
    }
    if !buffer.is_empty() {
        emit(buffer);
        buffer.clear();
    }
}

/// Packs `packets` into as few bundles as fit the limit, in order, each in
/// its own allocation (for clients, which send a few a second).
pub fn bundle<P: AsRef<[u8]>>(packets: &[P]) -> Vec<Vec<u8>> {
    let mut bundles = Vec::new();
    each_bundle(packets, &mut Vec::new(), |bundle| {
        bundles.push(bundle.to_vec());
        true
    });
    bundles
}

fn push(bundle: &mut Vec<u8>, packet: &[u8]) {
    leb128::write(bundle, packet.len() as u64);
    bundle.extend_from_slice(packet);
}

/// The packets of a bundle, in order; `None` once the bundle turns out
/// malformed (a zero length, a length past the end, or a bad varint),
/// after yielding the well-formed packets before it.
pub fn unbundle(mut bytes: &[u8]) -> impl Iterator<Item = Option<&[u8]>> {
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || bytes.is_empty() {
            return None;
        }
        let packet = leb128::read(bytes).ok().and_then(|(len, rest)| {
            let len = usize::try_from(len).ok().filter(|&len| len > 0)?;
            let (packet, rest) = rest.split_at_checked(len)?;
            bytes = rest;
            Some(packet)
        });
        failed = packet.is_none();
        Some(packet)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_travel_together_and_come_apart_in_order() {
        let packets = vec![vec![1; 100], vec![2; 5], vec![3; 300]];
        let bundles = bundle(&packets);
        assert_eq!(bundles.len(), 1);
        let back: Vec<Vec<u8>> = unbundle(&bundles[0])
            .map(|packet| packet.expect("well formed").to_vec())
            .collect();
        assert_eq!(back, packets);
    }

    #[test]
    fn bundles_respect_the_limit() {
        let packets = vec![vec![7; 1000], vec![8; 1000], vec![9; 1300]];
        let bundles = bundle(&packets);
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
        each_bundle(&packets, &mut buffer, |bundle| {
            seen.push(bundle[2]);
            false
        });
        assert_eq!(seen, [1]);
        assert!(buffer.is_empty());
        let grown = buffer.capacity();
        each_bundle(&packets, &mut buffer, |bundle| {
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
        assert_eq!(good_then_bad, [Some(&[9u8][..]), None]);
        assert_eq!(unbundle(&[]).count(), 0);
    }
}
