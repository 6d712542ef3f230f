/**
 * Reading and writing the three integer encodings the protocol uses
 * (docs/PROTOCOL.md section 1): LEB128 (bundles, snapshots), QUIC varints
 * (renet packet headers) and bincode 2 varints (control messages).
 *
 * Every read checks what is left: bad input is a {@link DecodeError}, never
 * an exception of another kind, and never an allocation the input asked for
 * without the bytes to back it.
 *
 * Wire `u64`s that count ticks are JavaScript numbers: exact up to 2^53
 * (nine million years of ticks at 30 Hz), and a larger one is refused as
 * malformed rather than silently rounded. `u64`s that are identifiers
 * (session ids, content versions) are `bigint`s.
 *
 * @module
 */

/** Why bytes could not be read. */
export type DecodeErrorKind =
  | "truncated"
  | "malformed"
  | "too-large"
  | "base-mismatch"
  | "checksum";

/** Bytes that do not decode, with the reason's kind for programs and a message for people. */
export class DecodeError extends Error {
  constructor(
    readonly kind: DecodeErrorKind,
    message: string,
  ) {
    super(message);
    this.name = "DecodeError";
  }
}

const TWO_32 = 2 ** 32;
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

function truncated(): DecodeError {
  return new DecodeError("truncated", "input ends inside a value");
}

/** A cursor over untrusted bytes. */
export class ByteReader {
  private at = 0;

  constructor(private readonly bytes: Uint8Array) {}

  /** Bytes not read yet. */
  get remaining(): number {
    return this.bytes.length - this.at;
  }

  /** A reader at the same place whose reads do not move this one. */
  clone(): ByteReader {
    const copy = new ByteReader(this.bytes);
    copy.at = this.at;
    return copy;
  }

  byte(): number {
    const value = this.bytes[this.at];
    if (value === undefined) throw truncated();
    this.at += 1;
    return value;
  }

  /** The next `length` bytes, as a view (not a copy). */
  take(length: number): Uint8Array {
    if (length > this.remaining) throw truncated();
    const slice = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return slice;
  }

  u16be(): number {
    const [high, low] = this.take(2) as unknown as [number, number];
    return (high << 8) | low;
  }

  u16le(): number {
    const [low, high] = this.take(2) as unknown as [number, number];
    return (high << 8) | low;
  }

  u32le(): number {
    const b = this.take(4);
    return ((b[0]! | (b[1]! << 8) | (b[2]! << 16)) >>> 0) + b[3]! * 2 ** 24;
  }

  u64le(): bigint {
    const low = BigInt(this.u32le());
    const high = BigInt(this.u32le());
    return (high << 32n) | low;
  }

  /**
   * Unsigned LEB128 as a number: at most ten bytes and 64 bits as Rust's
   * reader demands, and within 2^53 as this reader demands.
   */
  leb128(): number {
    let value = 0;
    let scale = 1;
    for (let index = 0; index < 10; index++) {
      const byte = this.byte();
      const bits = byte & 0x7f;
      if (index === 9 && bits > 1) {
        throw new DecodeError("malformed", "varint overflows 64 bits");
      }
      value += bits * scale;
      if ((byte & 0x80) === 0) {
        if (value > Number.MAX_SAFE_INTEGER) {
          throw new DecodeError("malformed", "varint beyond 2^53");
        }
        return value;
      }
      scale *= 128;
    }
    throw new DecodeError("malformed", "varint longer than 10 bytes");
  }

  /** A zigzag LEB128 varint. */
  signedLeb128(): number {
    const raw = this.leb128();
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
  }

  /** A QUIC varint (RFC 9000 section 16) as renet writes its packet headers. */
  quicVarint(): number {
    const first = this.byte();
    const length = 1 << (first >> 6);
    let value = first & 0x3f;
    for (let index = 1; index < length; index++) {
      value = value * 256 + this.byte();
    }
    if (value > Number.MAX_SAFE_INTEGER) {
      throw new DecodeError("malformed", "varint beyond 2^53");
    }
    return value;
  }

  /**
   * A bincode 2 varint for an unsigned field of `bits` bits: a byte up to
   * 250, else a marker (251 u16, 252 u32, 253 u64) and the value little
   * endian; a marker wider than the field is an error.
   */
  bincodeUnsigned(bits: 16 | 32 | 64): bigint {
    const first = this.byte();
    if (first < 251) return BigInt(first);
    if (first === 251) return BigInt(this.u16le());
    if (first === 252 && bits >= 32) return BigInt(this.u32le());
    if (first === 253 && bits >= 64) return this.u64le();
    throw new DecodeError("malformed", `invalid varint marker ${first} for a u${bits}`);
  }

  /** A bincode `u16` or `u32` as a number. */
  bincodeSmall(bits: 16 | 32): number {
    return Number(this.bincodeUnsigned(bits));
  }

  /** A bincode `u64` as a number within 2^53 (ticks). */
  bincodeTick(): number {
    const value = this.bincodeUnsigned(64);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new DecodeError("malformed", "tick beyond 2^53");
    }
    return Number(value);
  }

  bincodeBool(): boolean {
    const value = this.byte();
    if (value > 1) throw new DecodeError("malformed", `invalid bool ${value}`);
    return value === 1;
  }

  /** A bincode `String`: a `u64` length, then UTF-8. */
  bincodeString(): string {
    const length = this.bincodeUnsigned(64);
    if (length > BigInt(this.remaining)) throw truncated();
    try {
      return utf8Decoder.decode(this.take(Number(length)));
    } catch {
      throw new DecodeError("malformed", "string is not UTF-8");
    }
  }

  /** A bincode enum's variant index, checked against the variants known. */
  bincodeVariant(known: number, what: string): number {
    const index = this.bincodeSmall(32);
    if (index >= known) throw new DecodeError("malformed", `unknown ${what} variant ${index}`);
    return index;
  }
}

/** A growing byte buffer. */
export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(capacity = 64) {
    this.buffer = new Uint8Array(capacity);
  }

  /** The bytes written, as a copy the writer no longer touches. */
  finish(): Uint8Array {
    return this.buffer.slice(0, this.length);
  }

  get size(): number {
    return this.length;
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.length + extra));
    grown.set(this.buffer.subarray(0, this.length));
    this.buffer = grown;
  }

  byte(value: number): void {
    this.reserve(1);
    this.buffer[this.length++] = value & 0xff;
  }

  bytes(values: Uint8Array): void {
    this.reserve(values.length);
    this.buffer.set(values, this.length);
    this.length += values.length;
  }

  u16be(value: number): void {
    this.byte(value >> 8);
    this.byte(value);
  }

  u16le(value: number): void {
    this.byte(value);
    this.byte(value >> 8);
  }

  u32le(value: number): void {
    this.byte(value);
    this.byte(value >>> 8);
    this.byte(value >>> 16);
    this.byte(value >>> 24);
  }

  u64le(value: bigint): void {
    this.u32le(Number(value & 0xffffffffn));
    this.u32le(Number((value >> 32n) & 0xffffffffn));
  }

  /** Unsigned LEB128 of a non-negative integer up to 2^53. */
  leb128(value: number): void {
    while (value >= 0x80) {
      this.byte((value % 128) | 0x80);
      value = Math.floor(value / 128);
    }
    this.byte(value);
  }

  /** Zigzag LEB128 of an integer within ±2^52. */
  signedLeb128(value: number): void {
    this.leb128(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  /** The shortest QUIC varint, as renet writes. */
  quicVarint(value: number): void {
    if (value < 64) {
      this.byte(value);
    } else if (value < 16384) {
      this.u16be(0x4000 | value);
    } else if (value < 2 ** 30) {
      this.byte(0x80 | (value >>> 24));
      this.byte(value >>> 16);
      this.byte(value >>> 8);
      this.byte(value);
    } else {
      const high = Math.floor(value / TWO_32);
      this.byte(0xc0 | (high >>> 24));
      this.byte(high >>> 16);
      this.byte(high >>> 8);
      this.byte(high);
      this.byte(value >>> 24);
      this.byte(value >>> 16);
      this.byte(value >>> 8);
      this.byte(value);
    }
  }

  /** A bincode 2 varint in its shortest form. */
  bincodeUnsigned(value: bigint | number): void {
    const big = BigInt(value);
    if (big < 251n) {
      this.byte(Number(big));
    } else if (big < 0x10000n) {
      this.byte(251);
      this.u16le(Number(big));
    } else if (big < 0x100000000n) {
      this.byte(252);
      this.u32le(Number(big));
    } else {
      this.byte(253);
      this.u64le(big);
    }
  }

  bincodeBool(value: boolean): void {
    this.byte(value ? 1 : 0);
  }

  bincodeString(value: string): void {
    const encoded = utf8Encoder.encode(value);
    this.bincodeUnsigned(encoded.length);
    this.bytes(encoded);
  }
}

/** Bytes as lower-case hex, for messages and fixtures. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0");
  return out;
}

/** Hex (any case, no separators) as bytes. */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || /[^0-9a-fA-F]/.test(hex)) {
    throw new DecodeError("malformed", "not an even run of hex digits");
  }
  const out = new Uint8Array(hex.length / 2);
  for (let index = 0; index < out.length; index++) {
    out[index] = parseInt(hex.slice(index * 2, index * 2 + 2), 16);
  }
  return out;
}
