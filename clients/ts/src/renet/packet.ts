/**
 * renet 2's five packet types, byte for byte as `renet-2.0.1/src/packet.rs`
 * writes and reads them (docs/PROTOCOL.md section 4.2): a type byte, QUIC
 * varints for sequences, ids and lengths, a big-endian `u16` message count.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "../bytes.js";

/** Messages longer than this travel in slices of exactly this many bytes (the last: the rest). */
export const SLICE_SIZE = 1200;

/** One slice of a message too long for one packet. */
export interface Slice {
  messageId: number;
  sliceIndex: number;
  numSlices: number;
  payload: Uint8Array;
}

/** A half-open range of packet sequences, `[start, end)`. */
export interface AckRange {
  start: number;
  end: number;
}

/** A renet packet, decoded. */
export type Packet =
  | { type: "small-reliable"; sequence: number; channel: number; messages: { id: number; payload: Uint8Array }[] }
  | { type: "small-unreliable"; sequence: number; channel: number; messages: Uint8Array[] }
  | { type: "reliable-slice"; sequence: number; channel: number; slice: Slice }
  | { type: "unreliable-slice"; sequence: number; channel: number; slice: Slice }
  | { type: "ack"; sequence: number; ranges: AckRange[] };

/** Writes a packet. Ack ranges must be sorted, disjoint and non-empty. */
export function encodePacket(packet: Packet): Uint8Array {
  const out = new ByteWriter(64);
  switch (packet.type) {
    case "small-reliable":
      out.byte(0);
      out.quicVarint(packet.sequence);
      out.byte(packet.channel);
      out.u16be(packet.messages.length);
      for (const message of packet.messages) {
        out.quicVarint(message.id);
        out.quicVarint(message.payload.length);
        out.bytes(message.payload);
      }
      break;
    case "small-unreliable":
      out.byte(1);
      out.quicVarint(packet.sequence);
      out.byte(packet.channel);
      out.u16be(packet.messages.length);
      for (const message of packet.messages) {
        out.quicVarint(message.length);
        out.bytes(message);
      }
      break;
    case "reliable-slice":
    case "unreliable-slice":
      out.byte(packet.type === "reliable-slice" ? 2 : 3);
      out.quicVarint(packet.sequence);
      out.byte(packet.channel);
      out.quicVarint(packet.slice.messageId);
      out.quicVarint(packet.slice.sliceIndex);
      out.quicVarint(packet.slice.numSlices);
      out.quicVarint(packet.slice.payload.length);
      out.bytes(packet.slice.payload);
      break;
    case "ack": {
      out.byte(4);
      out.quicVarint(packet.sequence);
      // Highest range first; each further one as the gap below the previous.
      const ranges = [...packet.ranges].reverse();
      const [last, ...rest] = ranges;
      if (last === undefined) throw new RangeError("an ack packet needs a range");
      out.quicVarint(last.end - 1);
      out.quicVarint(last.end - 1 - last.start);
      out.quicVarint(rest.length);
      let previousStart = last.start;
      for (const range of rest) {
        out.quicVarint(previousStart - range.end - 1);
        out.quicVarint(range.end - 1 - range.start);
        previousStart = range.start;
      }
      break;
    }
  }
  return out.finish();
}

/**
 * Reads a packet, refusing what renet refuses (an unknown type, a slice
 * count of 0 or above 1,000,000, an empty or oversized reliable slice, ack
 * ranges below zero). Bytes after the packet's last field are ignored, as
 * renet ignores them.
 */
export function decodePacket(bytes: Uint8Array): Packet {
  const reader = new ByteReader(bytes);
  const type = reader.byte();
  switch (type) {
    case 0: {
      const sequence = reader.quicVarint();
      const channel = reader.byte();
      const count = reader.u16be();
      const messages = [];
      for (let index = 0; index < count; index++) {
        const id = reader.quicVarint();
        messages.push({ id, payload: reader.take(reader.quicVarint()) });
      }
      return { type: "small-reliable", sequence, channel, messages };
    }
    case 1: {
      const sequence = reader.quicVarint();
      const channel = reader.byte();
      const count = reader.u16be();
      const messages = [];
      for (let index = 0; index < count; index++) {
        messages.push(reader.take(reader.quicVarint()));
      }
      return { type: "small-unreliable", sequence, channel, messages };
    }
    case 2:
    case 3: {
      const sequence = reader.quicVarint();
      const channel = reader.byte();
      const messageId = reader.quicVarint();
      const sliceIndex = reader.quicVarint();
      const numSlices = reader.quicVarint();
      if (numSlices === 0 || numSlices > 1_000_000) {
        throw new DecodeError("malformed", "invalid number of slices");
      }
      const payload = reader.take(reader.quicVarint());
      const slice = { messageId, sliceIndex, numSlices, payload };
      if (type === 3) return { type: "unreliable-slice", sequence, channel, slice };
      if (payload.length === 0) throw new DecodeError("malformed", "empty slice");
      if (payload.length > SLICE_SIZE) throw new DecodeError("malformed", "slice above the slice size");
      return { type: "reliable-slice", sequence, channel, slice };
    }
    case 4: {
      const sequence = reader.quicVarint();
      const firstEnd = reader.quicVarint();
      const firstSize = reader.quicVarint();
      const further = reader.quicVarint();
      if (firstEnd < firstSize) throw new DecodeError("malformed", "invalid ack range");
      const ranges: AckRange[] = [{ start: firstEnd - firstSize, end: firstEnd + 1 }];
      let previousStart = firstEnd - firstSize;
      for (let index = 0; index < further; index++) {
        const gap = reader.quicVarint();
        if (previousStart < 2 + gap) throw new DecodeError("malformed", "invalid ack range");
        const end = previousStart - gap - 2;
        const size = reader.quicVarint();
        if (end < size) throw new DecodeError("malformed", "invalid ack range");
        ranges.push({ start: end - size, end: end + 1 });
        previousStart = end - size;
      }
      ranges.reverse();
      return { type: "ack", sequence, ranges };
    }
    default:
      throw new DecodeError("malformed", `unknown packet type ${type}`);
  }
}
