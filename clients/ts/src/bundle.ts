/**
 * Bundles: several renet packets in one WebSocket frame, each prefixed by
 * its LEB128 length (docs/PROTOCOL.md section 3.1, `net/src/bundle.rs`).
 * renet emits a separate ack packet on every flush; bundling sends it in the
 * same frame as the rest, and the server expects every frame bundled.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";

/** Bytes of bundled packets per frame; a single larger packet goes alone. */
export const BUNDLE_LIMIT = 1280;

function prefixLength(length: number): number {
  return length < 0x80 ? 1 : length < 0x4000 ? 2 : 3;
}

/** Packs `packets` in order into as few bundles as keep each within {@link BUNDLE_LIMIT}. */
export function bundle(packets: readonly Uint8Array[]): Uint8Array[] {
  const bundles: Uint8Array[] = [];
  let current: ByteWriter | undefined;
  for (const packet of packets) {
    const needed = prefixLength(packet.length) + packet.length;
    if (current === undefined || current.size + needed > BUNDLE_LIMIT) {
      if (current !== undefined) bundles.push(current.finish());
      current = new ByteWriter(Math.max(needed, 128));
    }
    current.leb128(packet.length);
    current.bytes(packet);
  }
  if (current !== undefined) bundles.push(current.finish());
  return bundles;
}

/**
 * The packets of a bundle, in order. A malformed tail (a zero length, a
 * length past the end, a prefix over 3 bytes) ends the list: the packets
 * before it count, as on the server.
 */
export function unbundle(bytes: Uint8Array): { packets: Uint8Array[]; malformed: boolean } {
  const reader = new ByteReader(bytes);
  const packets: Uint8Array[] = [];
  while (reader.remaining > 0) {
    try {
      const length = readPrefix(reader);
      if (length === 0 || length > reader.remaining) return { packets, malformed: true };
      packets.push(reader.take(length));
    } catch (error) {
      if (error instanceof DecodeError) return { packets, malformed: true };
      throw error;
    }
  }
  return { packets, malformed: false };
}

function readPrefix(reader: ByteReader): number {
  let value = 0;
  for (let index = 0; index < 3; index++) {
    const byte = reader.byte();
    value += (byte & 0x7f) * 128 ** index;
    if ((byte & 0x80) === 0) return value;
  }
  throw new DecodeError("malformed", "bundle length prefix over 3 bytes");
}
