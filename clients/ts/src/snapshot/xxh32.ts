/**
 * xxHash32 (https://github.com/Cyan4973/xxHash, `doc/xxhash_spec.md`), the
 * snapshot checksum's hash: four independent 32-bit lanes, so it runs on
 * `Math.imul` with no BigInt and no per-byte dependency chain.
 *
 * @module
 */

const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotl(value: number, bits: number): number {
  return (value << bits) | (value >>> (32 - bits));
}

function round(lane: number, input: number): number {
  return Math.imul(rotl((lane + Math.imul(input, PRIME2)) | 0, 13), PRIME1);
}

function word(bytes: Uint8Array, at: number): number {
  return bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16) | (bytes[at + 3]! << 24);
}

/** xxHash32 of `bytes[0..length)` with `seed`, as an unsigned 32-bit number. */
export function xxh32(bytes: Uint8Array, length: number = bytes.length, seed = 0): number {
  let at = 0;
  let hash: number;
  if (length >= 16) {
    let lane1 = (seed + PRIME1 + PRIME2) | 0;
    let lane2 = (seed + PRIME2) | 0;
    let lane3 = seed | 0;
    let lane4 = (seed - PRIME1) | 0;
    for (; at + 16 <= length; at += 16) {
      lane1 = round(lane1, word(bytes, at));
      lane2 = round(lane2, word(bytes, at + 4));
      lane3 = round(lane3, word(bytes, at + 8));
      lane4 = round(lane4, word(bytes, at + 12));
    }
    hash = (rotl(lane1, 1) + rotl(lane2, 7) + rotl(lane3, 12) + rotl(lane4, 18)) | 0;
  } else {
    hash = (seed + PRIME5) | 0;
  }
  hash = (hash + length) | 0;
  for (; at + 4 <= length; at += 4) {
    hash = Math.imul(rotl((hash + Math.imul(word(bytes, at), PRIME3)) | 0, 17), PRIME4);
  }
  for (; at < length; at += 1) {
    hash = Math.imul(rotl((hash + Math.imul(bytes[at]!, PRIME5)) | 0, 11), PRIME1);
  }
  hash = Math.imul(hash ^ (hash >>> 15), PRIME2);
  hash = Math.imul(hash ^ (hash >>> 13), PRIME3);
  return (hash ^ (hash >>> 16)) >>> 0;
}
