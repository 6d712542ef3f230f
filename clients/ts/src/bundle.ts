/**
 * Bundles: several slots in one WebSocket frame, each prefixed by its
 * LEB128 length (docs/PROTOCOL.md section 3.1, `net/src/bundle.rs`). A slot
 * holds a renet packet, a snapshot, or a snapshot acknowledgement: the last
 * two travel beside renet, sent once, as renet's unreliable channel would
 * have sent them but without its per-message work on either side.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "./bytes.js";

/** Bytes of bundled slots per frame; a single larger slot goes alone. */
export const BUNDLE_LIMIT = 1280;
/** The first byte of a snapshot slot (renet's packet types are 0 to 4). */
export const SNAPSHOT_SLOT = 0x10;
/** The first byte of a snapshot acknowledgement slot: the tick follows as LEB128. */
export const SNAPSHOT_ACK_SLOT = 0x11;

/** What one slot of a bundle holds. */
export type Slot =
  | { kind: "renet"; packet: Uint8Array }
  | { kind: "snapshot"; snapshot: Uint8Array }
  | { kind: "snapshotAck"; tick: number };

function prefixLength(length: number): number {
  return length < 0x80 ? 1 : length < 0x4000 ? 2 : 3;
}

function leb128Length(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length += 1;
  }
  return length;
}

function slotLength(slot: Slot): number {
  switch (slot.kind) {
    case "renet":
      return slot.packet.length;
    case "snapshot":
      return 1 + slot.snapshot.length;
    case "snapshotAck":
      return 1 + leb128Length(slot.tick);
  }
}

function writeSlot(out: ByteWriter, slot: Slot, length: number): void {
  out.leb128(length);
  switch (slot.kind) {
    case "renet":
      out.bytes(slot.packet);
      return;
    case "snapshot":
      out.byte(SNAPSHOT_SLOT);
      out.bytes(slot.snapshot);
      return;
    case "snapshotAck":
      out.byte(SNAPSHOT_ACK_SLOT);
      out.leb128(slot.tick);
      return;
  }
}

/** renet's packets as slots. */
export function renetSlots(packets: readonly Uint8Array[]): Slot[] {
  return packets.map((packet) => ({ kind: "renet", packet }));
}

/** Packs `slots` in order into as few bundles as keep each within {@link BUNDLE_LIMIT}. */
export function bundle(slots: readonly Slot[]): Uint8Array[] {
  const bundles: Uint8Array[] = [];
  let current: ByteWriter | undefined;
  for (const slot of slots) {
    const length = slotLength(slot);
    const needed = prefixLength(length) + length;
    if (current === undefined || current.size + needed > BUNDLE_LIMIT) {
      if (current !== undefined) bundles.push(current.finish());
      current = new ByteWriter(Math.max(needed, 128));
    }
    writeSlot(current, slot, length);
  }
  if (current !== undefined) bundles.push(current.finish());
  return bundles;
}

/**
 * The slots of a bundle, in order. A malformed tail (a zero length, a
 * length past the end, a prefix over 3 bytes, an acknowledgement without a
 * well-formed tick) ends the list: the slots before it count, as on the
 * server.
 */
export function unbundle(bytes: Uint8Array): { slots: Slot[]; malformed: boolean } {
  const reader = new ByteReader(bytes);
  const slots: Slot[] = [];
  while (reader.remaining > 0) {
    try {
      const length = readPrefix(reader);
      if (length === 0 || length > reader.remaining) return { slots, malformed: true };
      slots.push(readSlot(reader.take(length)));
    } catch (error) {
      if (error instanceof DecodeError) return { slots, malformed: true };
      throw error;
    }
  }
  return { slots, malformed: false };
}

function readSlot(bytes: Uint8Array): Slot {
  switch (bytes[0]) {
    case SNAPSHOT_SLOT:
      return { kind: "snapshot", snapshot: bytes.subarray(1) };
    case SNAPSHOT_ACK_SLOT: {
      const reader = new ByteReader(bytes.subarray(1));
      const tick = reader.leb128();
      if (reader.remaining > 0) throw new DecodeError("malformed", "bytes after a snapshot acknowledgement");
      return { kind: "snapshotAck", tick };
    }
    default:
      return { kind: "renet", packet: bytes };
  }
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
