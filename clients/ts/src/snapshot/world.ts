/**
 * The world as the wire carries it (docs/PROTOCOL.md section 6;
 * `net/src/snapshot/world.rs`): integers only, so every client rebuilds the
 * server's copy bit for bit and proves it with the world hash, and movers as
 * trajectories the client extrapolates between snapshots.
 *
 * @module
 */

/** Position units per cell. */
export const POSITION_SCALE = 256;
/** Velocity units per cell per tick. */
export const VELOCITY_SCALE = 4096;
/** `NetEnemy.flags` bit: the enemy flies. */
export const FLYING = 1;
/** `NetEnemy.flags` bit: the enemy is slowed. */
export const SLOWED = 2;
/** `NetEnemy.flags` bit: the enemy burns. */
export const BURNING = 4;
/** `NetWorld.outcome` codes. */
export const UNDECIDED = 0;
export const VICTORY = 1;
export const DEFEAT = 2;

const I32_MIN = -(2 ** 31);
const I32_MAX = 2 ** 31 - 1;

/**
 * A straight, constant-speed motion: at `since` the mover stood at
 * `(x, y)` (1/256 cell) and moves `(vx, vy)` (1/4096 cell) per tick.
 */
export interface Trajectory {
  readonly x: number;
  readonly y: number;
  readonly vx: number;
  readonly vy: number;
  readonly since: number;
}

/** `start + floor(velocity * elapsed / 16)`, exact, clamped to the i32 range. */
function advance(start: number, velocity: number, elapsed: number): number {
  let position: number;
  // |velocity| < 2^31: below 2^21 ticks the product is exact in a double.
  if (Math.abs(elapsed) < 2 ** 21) {
    position = start + Math.floor((velocity * elapsed) / 16);
  } else {
    const moved = BigInt(velocity) * BigInt(elapsed);
    // BigInt division truncates; floor needs one less for a negative remainder.
    const floored = moved / 16n - (moved % 16n < 0n ? 1n : 0n);
    const big = BigInt(start) + floored;
    position = big < BigInt(I32_MIN) ? I32_MIN : big > BigInt(I32_MAX) ? I32_MAX : Number(big);
  }
  return Math.min(I32_MAX, Math.max(I32_MIN, position));
}

/**
 * The quantised position at a whole `tick`, in 1/256 cell: exactly the
 * server's `Trajectory::at`, which the delta codec predicts with.
 */
export function positionAt(path: Trajectory, tick: number): [number, number] {
  const elapsed = tick - path.since;
  return [advance(path.x, path.vx, elapsed), advance(path.y, path.vy, elapsed)];
}

/**
 * The position in cells at a fractional tick, for rendering: exactly
 * {@link positionAt} on whole ticks and linear between them, so drawing
 * between snapshots never disagrees with the authoritative position.
 */
export function positionInCells(path: Trajectory, tick: number): { x: number; y: number } {
  const clamped = Math.max(0, tick);
  const whole = Math.floor(clamped);
  const fraction = clamped - whole;
  const [x0, y0] = positionAt(path, whole);
  const [x1, y1] = positionAt(path, whole + 1);
  return {
    x: (x0 + (x1 - x0) * fraction) / POSITION_SCALE,
    y: (y0 + (y1 - y0) * fraction) / POSITION_SCALE,
  };
}

/** One seat, by index. */
export interface NetPlayer {
  readonly gold: number;
  readonly ready: boolean;
  readonly kills: number;
}

/** One enemy. `kind` indexes the content's sorted enemy keys. */
export interface NetEnemy {
  readonly id: number;
  readonly kind: number;
  /** Hit points left, rounded up: a living enemy never shows 0. */
  readonly hp: number;
  readonly maxHp: number;
  /** {@link FLYING}, {@link SLOWED}, {@link BURNING}. */
  readonly flags: number;
  readonly path: Trajectory;
}

/** One tower. */
export interface NetTower {
  readonly id: number;
  readonly owner: number;
  readonly kind: number;
  /** 0 as built. */
  readonly level: number;
  readonly x: number;
  readonly y: number;
  /** 0 first, 1 last, 2 strongest, 3 closest. */
  readonly targeting: number;
}

/** One projectile in flight. */
export interface NetProjectile {
  readonly id: number;
  /** Kind of the tower that fired it. */
  readonly towerKind: number;
  readonly path: Trajectory;
}

/** Everything a client sees at one snapshot tick; lists sorted by id. */
export interface NetWorld {
  readonly tick: number;
  readonly wave: number;
  readonly lives: number;
  /** {@link UNDECIDED}, {@link VICTORY} or {@link DEFEAT}. */
  readonly outcome: number;
  readonly players: readonly NetPlayer[];
  readonly enemies: readonly NetEnemy[];
  readonly towers: readonly NetTower[];
  readonly projectiles: readonly NetProjectile[];
}

/** The empty world: what a full snapshot is a delta against. */
export const EMPTY_WORLD: NetWorld = Object.freeze({
  tick: 0,
  wave: 0,
  lives: 0,
  outcome: UNDECIDED,
  players: Object.freeze([]),
  enemies: Object.freeze([]),
  towers: Object.freeze([]),
  projectiles: Object.freeze([]),
});

/**
 * 64-bit FNV-1a over the world's fields, little-endian (docs/PROTOCOL.md
 * section 7, "World hash"), as two 32-bit halves: no BigInt per byte.
 */
class Fnv64 {
  private high = 0xcbf29ce4;
  private low = 0x84222325;

  byte(value: number): void {
    // h ^= byte; h *= 0x100000001b3 (= 2^40 + 0x1b3), modulo 2^64.
    const low = (this.low ^ (value & 0xff)) >>> 0;
    const product = low * 0x1b3;
    const carry = Math.floor(product / 2 ** 32);
    this.low = product >>> 0;
    this.high = (Math.imul(this.high, 0x1b3) + carry + (low << 8)) >>> 0;
  }

  u8(value: number): void {
    this.byte(value);
  }

  u16(value: number): void {
    this.byte(value);
    this.byte(value >>> 8);
  }

  u32(value: number): void {
    this.byte(value);
    this.byte(value >>> 8);
    this.byte(value >>> 16);
    this.byte(value >>> 24);
  }

  u64(value: number): void {
    this.u32(value >>> 0);
    this.u32(Math.floor(value / 2 ** 32) >>> 0);
  }

  trajectory(path: Trajectory): void {
    this.u32(path.x);
    this.u32(path.y);
    this.u32(path.vx);
    this.u32(path.vy);
    this.u64(path.since);
  }

  /** The low 32 bits, which snapshots carry. */
  get low32(): number {
    return this.low;
  }

  get value(): bigint {
    return (BigInt(this.high) << 32n) | BigInt(this.low);
  }
}

function hashWorld(world: NetWorld): Fnv64 {
  const hash = new Fnv64();
  hash.u64(world.tick);
  hash.u32(world.wave);
  hash.u32(world.lives);
  hash.u8(world.outcome);
  hash.u32(world.players.length);
  for (const player of world.players) {
    hash.u32(player.gold);
    hash.u8(player.ready ? 1 : 0);
    hash.u32(player.kills);
  }
  hash.u32(world.enemies.length);
  for (const enemy of world.enemies) {
    hash.u32(enemy.id);
    hash.u16(enemy.kind);
    hash.u32(enemy.hp);
    hash.u32(enemy.maxHp);
    hash.u8(enemy.flags);
    hash.trajectory(enemy.path);
  }
  hash.u32(world.towers.length);
  for (const tower of world.towers) {
    hash.u32(tower.id);
    hash.u8(tower.owner);
    hash.u16(tower.kind);
    hash.u8(tower.level);
    hash.u16(tower.x);
    hash.u16(tower.y);
    hash.u8(tower.targeting);
  }
  hash.u32(world.projectiles.length);
  for (const projectile of world.projectiles) {
    hash.u32(projectile.id);
    hash.u16(projectile.towerKind);
    hash.trajectory(projectile.path);
  }
  return hash;
}

/** The server's `NetWorld::state_hash`: a 64-bit hash both ends compute alike. */
export function stateHash(world: NetWorld): bigint {
  return hashWorld(world).value;
}

/** The low 32 bits of {@link stateHash}: the checksum every snapshot carries. */
export function checksum(world: NetWorld): number {
  return hashWorld(world).low32;
}
