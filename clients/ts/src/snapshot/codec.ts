/**
 * The snapshot delta codec (docs/PROTOCOL.md section 7;
 * `net/src/snapshot/codec.rs`): a world as the changes from a base world the
 * client holds, or from the empty world for a full snapshot, with the low 32
 * bits of the world hash to prove the rebuild exact.
 *
 * The encoder exists for the conformance tests and for tools (it writes
 * exactly what the server writes); a game only applies.
 *
 * @module
 */

import { ByteReader, ByteWriter, DecodeError } from "../bytes.js";
import {
  EMPTY_WORLD,
  type NetEnemy,
  type NetPlayer,
  type NetProjectile,
  type NetTower,
  type NetWorld,
  type Trajectory,
  checksum,
  positionAt,
} from "./world.js";

/** Most entries one list may hold on the wire. */
export const MAX_ENTITIES = 65_536;

/** What a delta says about itself, readable without its base. */
export interface DeltaHeader {
  tick: number;
  /** The base world's tick; undefined for a full snapshot. */
  baseTick: number | undefined;
  /** The encoded world's checksum, when the server sent one (one world in four, and every full one). */
  checksum: number | undefined;
}

// Globals mask bits.
const WAVE = 1;
const LIVES = 2;
const OUTCOME = 4;
const PLAYERS = 8;
const ENEMIES = 16;
const TOWERS = 32;
const PROJECTILES = 64;
// Player mask bits.
const GOLD = 1;
const KILLS = 2;
const READY = 4;
// Enemy field bits.
const ENEMY_KIND = 1;
const ENEMY_HP = 2;
const ENEMY_MAX_HP = 4;
const ENEMY_FLAGS = 8;
const ENEMY_PATH = 16;
// Tower field bits, in field order.
const TOWER_FIELDS = ["owner", "kind", "level", "x", "y", "targeting"] as const;
// Projectile field bits.
const PROJECTILE_KIND = 1;
const PROJECTILE_PATH = 2;

const U8 = 0xff;
const U16 = 0xffff;
const U32 = 0xffff_ffff;
const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

function malformed(message: string): DecodeError {
  return new DecodeError("malformed", message);
}

/** Reads the header of a delta. */
export function decodeHeader(bytes: Uint8Array): DeltaHeader {
  return readHeader(new ByteReader(bytes));
}

function readHeader(reader: ByteReader): DeltaHeader {
  const tick = reader.leb128();
  // The base gap times two, plus one when a checksum follows.
  const base = reader.leb128();
  const gap = Math.floor(base / 2);
  const sum = base % 2 === 1 ? reader.u32le() : undefined;
  if (gap > tick) throw malformed("base before tick 0");
  return { tick, baseTick: gap === 0 ? undefined : tick - gap, checksum: sum };
}

/** A reader with the codec's field rules: values must fit their fields. */
class FieldReader {
  constructor(readonly bytes: ByteReader) {}

  varint(): number {
    return this.bytes.leb128();
  }

  unsigned(max: number, what: string): number {
    const value = this.bytes.leb128();
    if (value > max) throw malformed(`value exceeds ${what}`);
    return value;
  }

  u8(): number {
    return this.unsigned(U8, "u8");
  }

  u16(): number {
    return this.unsigned(U16, "u16");
  }

  u32(): number {
    return this.unsigned(U32, "u32");
  }

  /** An unsigned field sent as its signed change from `old`. */
  change(old: number): number {
    const value = old + this.bytes.signedLeb128();
    if (value < 0 || value > U32) throw malformed("value exceeds u32");
    return value;
  }

  i32From(origin: number): number {
    const value = origin + this.bytes.signedLeb128();
    if (value < I32_MIN || value > I32_MAX) throw malformed("value exceeds i32");
    return value;
  }

  /** A list length: capped, and never more than the bytes left could hold. */
  count(): number {
    const count = this.bytes.leb128();
    if (count > MAX_ENTITIES) throw new DecodeError("too-large", `a list of more than ${MAX_ENTITIES} entries`);
    if (count > this.bytes.remaining) throw new DecodeError("truncated", "input ends inside a list");
    return count;
  }

  since(tick: number): number {
    const gap = this.varint();
    if (gap > tick) throw malformed("trajectory starts after the snapshot (wraps below tick 0)");
    return tick - gap;
  }

  path(tick: number): Trajectory {
    const since = this.since(tick);
    return { since, x: this.i32From(0), y: this.i32From(0), vx: this.i32From(0), vy: this.i32From(0) };
  }

  pathChange(tick: number, base: Trajectory): Trajectory {
    const since = this.since(tick);
    const [x, y] = positionAt(base, since);
    return {
      since,
      x: this.i32From(x),
      y: this.i32From(y),
      vx: this.i32From(base.vx),
      vy: this.i32From(base.vy),
    };
  }
}

/** How the list codec reads and writes one entity type. */
interface EntryCodec<T extends { id: number }> {
  fields: number;
  readSpawn(id: number, tick: number, reader: FieldReader): T;
  readChange(base: T, mask: number, tick: number, reader: FieldReader): T;
  writeSpawn(entry: T, tick: number, out: ByteWriter): void;
  /** Writes the mask and the fields that differ. */
  writeChange(base: T, entry: T, tick: number, out: ByteWriter): void;
  equal(a: T, b: T): boolean;
}

/**
 * Rebuilds the world `bytes` encode from `base` (ignored by a full
 * snapshot) and checks it against the checksum, when the delta carries one.
 *
 * @throws DecodeError of kind `base-mismatch` when the delta names another
 *   base, `checksum` when the rebuilt world differs from the server's, or
 *   `truncated`, `malformed`, `too-large` for bytes that break the format.
 */
export function applyDelta(base: NetWorld | undefined, bytes: Uint8Array): NetWorld {
  const reader = new FieldReader(new ByteReader(bytes));
  const header = readHeader(reader.bytes);
  let from = EMPTY_WORLD;
  if (header.baseTick !== undefined) {
    if (base === undefined || base.tick !== header.baseTick) {
      throw new DecodeError(
        "base-mismatch",
        `delta is against tick ${header.baseTick}, base given is ${base === undefined ? "none" : base.tick}`,
      );
    }
    from = base;
  }
  const tick = header.tick;
  const mask = reader.bytes.byte();
  if (mask & 0x80) throw malformed("unknown globals bit");
  const world: NetWorld = {
    tick,
    wave: mask & WAVE ? reader.u32() : from.wave,
    lives: mask & LIVES ? reader.u32() : from.lives,
    outcome: mask & OUTCOME ? reader.u8() : from.outcome,
    players: mask & PLAYERS ? readPlayers(reader, from.players) : from.players,
    enemies: mask & ENEMIES ? readList(reader, from.enemies, tick, ENEMY) : from.enemies,
    towers: mask & TOWERS ? readList(reader, from.towers, tick, TOWER) : from.towers,
    projectiles: mask & PROJECTILES ? readList(reader, from.projectiles, tick, PROJECTILE) : from.projectiles,
  };
  if (reader.bytes.remaining > 0) throw malformed("trailing bytes");
  if (header.checksum !== undefined && checksum(world) !== header.checksum) {
    throw new DecodeError("checksum", "rebuilt world fails its checksum");
  }
  return world;
}

function readPlayers(reader: FieldReader, base: readonly NetPlayer[]): NetPlayer[] {
  const count = reader.count();
  const players: NetPlayer[] = [];
  for (let seat = 0; seat < count; seat++) {
    const old = base[seat] ?? { gold: 0, ready: false, kills: 0 };
    const mask = reader.bytes.byte();
    if (mask & ~(GOLD | KILLS | READY)) throw malformed("unknown player bit");
    const gold = mask & GOLD ? reader.change(old.gold) : old.gold;
    const kills = mask & KILLS ? reader.change(old.kills) : old.kills;
    players.push({ gold, ready: (mask & READY) !== 0, kills });
  }
  return players;
}

function readList<T extends { id: number }>(
  reader: FieldReader,
  base: readonly T[],
  tick: number,
  codec: EntryCodec<T>,
): T[] {
  const removedCount = reader.count();
  if (removedCount > base.length) throw malformed("more removals than base entries");
  const removed = new Set<number>();
  let nextIndex = 0;
  for (let index = 0; index < removedCount; index++) {
    const at = nextIndex + reader.varint();
    if (at >= base.length) throw malformed("removal past the base list");
    removed.add(at);
    nextIndex = at + 1;
  }
  const entries = reader.count();
  const out: T[] = [];
  let cursor = 0;
  let expected = 0;
  for (let index = 0; index < entries; index++) {
    const id = expected + reader.varint();
    if (id > U32) throw malformed("id out of range");
    expected = id + 1;
    while (cursor < base.length && base[cursor]!.id < id) {
      if (!removed.has(cursor)) out.push(base[cursor]!);
      cursor += 1;
    }
    let survivor: T | undefined;
    if (cursor < base.length && base[cursor]!.id === id) {
      if (!removed.has(cursor)) survivor = base[cursor];
      cursor += 1;
    }
    if (survivor !== undefined) {
      const mask = reader.bytes.byte();
      if (mask & ~codec.fields) throw malformed("unknown field bit");
      out.push(codec.readChange(survivor, mask, tick, reader));
    } else {
      out.push(codec.readSpawn(id, tick, reader));
    }
  }
  while (cursor < base.length) {
    if (!removed.has(cursor)) out.push(base[cursor]!);
    cursor += 1;
  }
  return out;
}

function samePath(a: Trajectory, b: Trajectory): boolean {
  return a.x === b.x && a.y === b.y && a.vx === b.vx && a.vy === b.vy && a.since === b.since;
}

function writePath(out: ByteWriter, tick: number, path: Trajectory): void {
  out.leb128(tick - path.since);
  out.signedLeb128(path.x);
  out.signedLeb128(path.y);
  out.signedLeb128(path.vx);
  out.signedLeb128(path.vy);
}

function writePathChange(out: ByteWriter, tick: number, base: Trajectory, path: Trajectory): void {
  out.leb128(tick - path.since);
  const [x, y] = positionAt(base, path.since);
  out.signedLeb128(path.x - x);
  out.signedLeb128(path.y - y);
  out.signedLeb128(path.vx - base.vx);
  out.signedLeb128(path.vy - base.vy);
}

const ENEMY: EntryCodec<NetEnemy> = {
  fields: ENEMY_KIND | ENEMY_HP | ENEMY_MAX_HP | ENEMY_FLAGS | ENEMY_PATH,
  readSpawn(id, tick, reader) {
    const kind = reader.u16();
    const maxHp = reader.u32();
    const hp = reader.change(maxHp);
    const flags = reader.u8();
    return { id, kind, hp, maxHp, flags, path: reader.path(tick) };
  },
  readChange(base, mask, tick, reader) {
    return {
      id: base.id,
      kind: mask & ENEMY_KIND ? reader.u16() : base.kind,
      hp: mask & ENEMY_HP ? reader.change(base.hp) : base.hp,
      maxHp: mask & ENEMY_MAX_HP ? reader.change(base.maxHp) : base.maxHp,
      flags: mask & ENEMY_FLAGS ? reader.u8() : base.flags,
      path: mask & ENEMY_PATH ? reader.pathChange(tick, base.path) : base.path,
    };
  },
  writeSpawn(entry, tick, out) {
    out.leb128(entry.kind);
    out.leb128(entry.maxHp);
    out.signedLeb128(entry.hp - entry.maxHp);
    out.leb128(entry.flags);
    writePath(out, tick, entry.path);
  },
  writeChange(base, entry, tick, out) {
    const mask =
      (entry.kind !== base.kind ? ENEMY_KIND : 0) |
      (entry.hp !== base.hp ? ENEMY_HP : 0) |
      (entry.maxHp !== base.maxHp ? ENEMY_MAX_HP : 0) |
      (entry.flags !== base.flags ? ENEMY_FLAGS : 0) |
      (samePath(entry.path, base.path) ? 0 : ENEMY_PATH);
    out.byte(mask);
    if (mask & ENEMY_KIND) out.leb128(entry.kind);
    if (mask & ENEMY_HP) out.signedLeb128(entry.hp - base.hp);
    if (mask & ENEMY_MAX_HP) out.signedLeb128(entry.maxHp - base.maxHp);
    if (mask & ENEMY_FLAGS) out.leb128(entry.flags);
    if (mask & ENEMY_PATH) writePathChange(out, tick, base.path, entry.path);
  },
  equal(a, b) {
    return (
      a.id === b.id &&
      a.kind === b.kind &&
      a.hp === b.hp &&
      a.maxHp === b.maxHp &&
      a.flags === b.flags &&
      samePath(a.path, b.path)
    );
  },
};

const TOWER: EntryCodec<NetTower> = {
  fields: 0b11_1111,
  readSpawn(id, _tick, reader) {
    return {
      id,
      owner: reader.u8(),
      kind: reader.u16(),
      level: reader.u8(),
      x: reader.u16(),
      y: reader.u16(),
      targeting: reader.u8(),
    };
  },
  readChange(base, mask, _tick, reader) {
    return {
      id: base.id,
      owner: mask & 1 ? reader.u8() : base.owner,
      kind: mask & 2 ? reader.u16() : base.kind,
      level: mask & 4 ? reader.u8() : base.level,
      x: mask & 8 ? reader.u16() : base.x,
      y: mask & 16 ? reader.u16() : base.y,
      targeting: mask & 32 ? reader.u8() : base.targeting,
    };
  },
  writeSpawn(entry, _tick, out) {
    for (const field of TOWER_FIELDS) out.leb128(entry[field]);
  },
  writeChange(base, entry, _tick, out) {
    let mask = 0;
    TOWER_FIELDS.forEach((field, bit) => {
      if (entry[field] !== base[field]) mask |= 1 << bit;
    });
    out.byte(mask);
    for (const field of TOWER_FIELDS) {
      if (entry[field] !== base[field]) out.leb128(entry[field]);
    }
  },
  equal(a, b) {
    return a.id === b.id && TOWER_FIELDS.every((field) => a[field] === b[field]);
  },
};

const PROJECTILE: EntryCodec<NetProjectile> = {
  fields: PROJECTILE_KIND | PROJECTILE_PATH,
  readSpawn(id, tick, reader) {
    return { id, towerKind: reader.u16(), path: reader.path(tick) };
  },
  readChange(base, mask, tick, reader) {
    return {
      id: base.id,
      towerKind: mask & PROJECTILE_KIND ? reader.u16() : base.towerKind,
      path: mask & PROJECTILE_PATH ? reader.pathChange(tick, base.path) : base.path,
    };
  },
  writeSpawn(entry, tick, out) {
    out.leb128(entry.towerKind);
    writePath(out, tick, entry.path);
  },
  writeChange(base, entry, tick, out) {
    const mask =
      (entry.towerKind !== base.towerKind ? PROJECTILE_KIND : 0) |
      (samePath(entry.path, base.path) ? 0 : PROJECTILE_PATH);
    out.byte(mask);
    if (mask & PROJECTILE_KIND) out.leb128(entry.towerKind);
    if (mask & PROJECTILE_PATH) writePathChange(out, tick, base.path, entry.path);
  },
  equal(a, b) {
    return a.id === b.id && a.towerKind === b.towerKind && samePath(a.path, b.path);
  },
};

function samePlayers(a: readonly NetPlayer[], b: readonly NetPlayer[]): boolean {
  return (
    a.length === b.length &&
    a.every((player, seat) => {
      const other = b[seat]!;
      return player.gold === other.gold && player.ready === other.ready && player.kills === other.kills;
    })
  );
}

function sameList<T extends { id: number }>(a: readonly T[], b: readonly T[], codec: EntryCodec<T>): boolean {
  return a.length === b.length && a.every((entry, index) => codec.equal(entry, b[index]!));
}

/**
 * Encodes `next` against `base` exactly as the server does, with `next`'s
 * checksum unless `checked` is false; no base, or one not older than
 * `next`, gives a full snapshot.
 */
export function encodeDelta(base: NetWorld | undefined, next: NetWorld, checked = true): Uint8Array {
  const from = base !== undefined && base.tick < next.tick ? base : EMPTY_WORLD;
  const gap = from === EMPTY_WORLD ? 0 : next.tick - from.tick;
  const out = new ByteWriter(128);
  out.leb128(next.tick);
  out.leb128(gap * 2 + (checked ? 1 : 0));
  if (checked) out.u32le(checksum(next));
  const mask =
    (next.wave !== from.wave ? WAVE : 0) |
    (next.lives !== from.lives ? LIVES : 0) |
    (next.outcome !== from.outcome ? OUTCOME : 0) |
    (samePlayers(next.players, from.players) ? 0 : PLAYERS) |
    (sameList(next.enemies, from.enemies, ENEMY) ? 0 : ENEMIES) |
    (sameList(next.towers, from.towers, TOWER) ? 0 : TOWERS) |
    (sameList(next.projectiles, from.projectiles, PROJECTILE) ? 0 : PROJECTILES);
  out.byte(mask);
  if (mask & WAVE) out.leb128(next.wave);
  if (mask & LIVES) out.leb128(next.lives);
  if (mask & OUTCOME) out.leb128(next.outcome);
  if (mask & PLAYERS) {
    out.leb128(next.players.length);
    next.players.forEach((player, seat) => {
      const old = from.players[seat] ?? { gold: 0, ready: false, kills: 0 };
      const bits = (player.gold !== old.gold ? GOLD : 0) | (player.kills !== old.kills ? KILLS : 0) | (player.ready ? READY : 0);
      out.byte(bits);
      if (bits & GOLD) out.signedLeb128(player.gold - old.gold);
      if (bits & KILLS) out.signedLeb128(player.kills - old.kills);
    });
  }
  if (mask & ENEMIES) writeList(out, from.enemies, next.enemies, next.tick, ENEMY);
  if (mask & TOWERS) writeList(out, from.towers, next.towers, next.tick, TOWER);
  if (mask & PROJECTILES) writeList(out, from.projectiles, next.projectiles, next.tick, PROJECTILE);
  return out.finish();
}

function writeList<T extends { id: number }>(
  out: ByteWriter,
  base: readonly T[],
  next: readonly T[],
  tick: number,
  codec: EntryCodec<T>,
): void {
  const removed: number[] = [];
  const entries: { entry: T; old: T | undefined }[] = [];
  let b = 0;
  let n = 0;
  while (b < base.length || n < next.length) {
    const old = base[b];
    const entry = next[n];
    if (old !== undefined && entry !== undefined && old.id === entry.id) {
      if (!codec.equal(old, entry)) entries.push({ entry, old });
      b += 1;
      n += 1;
    } else if (old !== undefined && (entry === undefined || old.id < entry.id)) {
      removed.push(b);
      b += 1;
    } else if (entry !== undefined) {
      entries.push({ entry, old: undefined });
      n += 1;
    }
  }
  out.leb128(removed.length);
  let after = 0;
  for (const index of removed) {
    out.leb128(index - after);
    after = index + 1;
  }
  out.leb128(entries.length);
  let expected = 0;
  for (const { entry, old } of entries) {
    out.leb128(entry.id - expected);
    expected = entry.id + 1;
    if (old !== undefined) codec.writeChange(old, entry, tick, out);
    else codec.writeSpawn(entry, tick, out);
  }
}
