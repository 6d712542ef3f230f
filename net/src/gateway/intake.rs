//! What a client's bytes go through before renet sees them: the bundle is
//! split into slots, the snapshot acknowledgement is taken out (it travels
//! beside renet), and each renet packet is checked for what renet 2.0 does
//! not check itself. A slice packet whose slice index is not below its
//! slice count makes renet index out of bounds and panic (its
//! `SliceConstructor` trusts the index), which would take down the net
//! thread and every connection with it.
//!
//! Only the slice header is read, in renet's layout: packet type (2 for a
//! reliable slice, 3 for an unreliable one), then QUIC-style varints for the
//! sequence, a channel byte, and varints for the message id, the slice index
//! and the slice count. Anything else, or a header too short to read, is
//! left to renet, which rejects malformed packets with an error.

use renet::RenetServer;

use crate::bundle::Slot;

/// renet's packet type of a bare ack, which needs no answer of its own.
const RENET_ACK: u8 = 4;

/// What one bundle from a client held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Slots refused: a malformed bundle, a slice renet would panic on, or
    /// a snapshot (only the server sends those).
    pub refused: u64,
    /// A renet packet that may carry messages, or that renet's next flush
    /// should acknowledge, reached renet.
    pub renet_messages: bool,
    /// The newest snapshot tick the bundle acknowledged.
    pub acked: Option<u64>,
}

/// Hands each renet packet of `bundle` from `client_id` to renet, and
/// says what else the bundle held.
pub(crate) fn deliver(renet: &mut RenetServer, client_id: u64, bundle: &[u8]) -> Delivered {
    let mut delivered = Delivered::default();
    for slot in crate::bundle::unbundle(bundle) {
        match slot {
            Some(Slot::Renet(packet)) if slice_in_range(packet) => {
                delivered.renet_messages |= packet.first() != Some(&RENET_ACK);
                // A packet for a client renet already dropped: nothing to do.
                let _ = renet.process_packet_from(packet, client_id);
            }
            Some(Slot::SnapshotAck(tick)) => {
                delivered.acked = delivered.acked.max(Some(tick));
            }
            _ => delivered.refused += 1,
        }
    }
    delivered
}

/// False for a slice packet renet would panic on.
fn slice_in_range(packet: &[u8]) -> bool {
    let Some((&kind, rest)) = packet.split_first() else {
        return true;
    };
    if kind != 2 && kind != 3 {
        return true;
    }
    let header = (|| {
        let (_sequence, rest) = quic_varint(rest)?;
        let (_channel, rest) = rest.split_first()?;
        let (_message, rest) = quic_varint(rest)?;
        let (index, rest) = quic_varint(rest)?;
        let (count, _) = quic_varint(rest)?;
        Some((index, count))
    })();
    match header {
        Some((index, count)) => index < count,
        None => true,
    }
}

/// A QUIC variable-length integer (RFC 9000, 16): the top two bits of the
/// first byte give its length, 1, 2, 4 or 8 bytes, big-endian.
fn quic_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let first = *bytes.first()?;
    let len = 1usize << (first >> 6);
    let (head, rest) = bytes.split_at_checked(len)?;
    let value = head[1..]
        .iter()
        .fold(u64::from(first & 0x3f), |value, &byte| {
            value << 8 | u64::from(byte)
        });
    Some((value, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_varints_of_each_length() {
        assert_eq!(quic_varint(&[0x25]), Some((37, &[][..])));
        assert_eq!(quic_varint(&[0x7b, 0xbd]), Some((15_293, &[][..])));
        assert_eq!(
            quic_varint(&[0x9d, 0x7f, 0x3e, 0x7d, 0xff]),
            Some((494_878_333, &[0xff][..]))
        );
        assert_eq!(quic_varint(&[0x40]), None);
    }

    #[test]
    fn acknowledgements_are_taken_out_and_snapshots_refused() {
        let mut renet = RenetServer::new(crate::protocol::connection_config());
        renet.add_connection(7);
        // A bare renet ack (type 4: sequence 0, largest 0, size 0, no
        // further range) between two acknowledgements, the older last.
        let bare_ack = [4, 0, 0, 0, 0];
        let bundle = crate::bundle::bundle([
            Slot::SnapshotAck(90),
            Slot::Renet(&bare_ack),
            Slot::SnapshotAck(88),
        ]);
        assert_eq!(
            deliver(&mut renet, 7, &bundle[0]),
            Delivered {
                refused: 0,
                renet_messages: false,
                acked: Some(90),
            }
        );
        // A snapshot from a client is refused; a small unreliable packet
        // (type 1: sequence 1, channel 1, no message) may need an answer.
        let unreliable = [1, 1, 1, 0, 0];
        let bundle = crate::bundle::bundle([Slot::Snapshot(&[1, 2]), Slot::Renet(&unreliable)]);
        assert_eq!(
            deliver(&mut renet, 7, &bundle[0]),
            Delivered {
                refused: 1,
                renet_messages: true,
                acked: None,
            }
        );
    }

    #[test]
    fn only_slices_past_their_count_are_refused() {
        // type, sequence, channel, message id, index, count, payload length, payload
        assert!(slice_in_range(&[2, 5, 0, 9, 0, 2, 1, 0xaa]));
        assert!(slice_in_range(&[3, 5, 1, 9, 1, 2, 1, 0xaa]));
        assert!(!slice_in_range(&[2, 5, 0, 9, 2, 2, 1, 0xaa]));
        assert!(!slice_in_range(&[3, 5, 1, 9, 0x40, 0x10, 1, 1, 0xaa]));
        assert!(slice_in_range(&[0, 1, 0, 0, 0]), "not a slice");
        assert!(
            slice_in_range(&[2, 5]),
            "too short to judge: renet refuses it"
        );
    }
}
