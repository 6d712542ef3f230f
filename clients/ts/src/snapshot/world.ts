/**
 * The world as the wire carries it (docs/PROTOCOL.md section 6;
 * `net/src/snapshot/world.rs`): integers only, so every client rebuilds the
 * server's copy bit for bit and proves it with the world checksum, and
 * movers as trajectories the client extrapolates between snapshots.
 *
 * @module
 */

import { xxh32 } from "./xxh32.js";

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
 * Lays the checksum's fields out little-endian (docs/PROTOCOL.md section 7,
 * "World checksum") in one buffer kept between calls, for {@link xxh32}.
 */
class ChecksumLayout {
  private bytes = new Uint8Array(4096);
  private view = new DataView(this.bytes.buffer);
  length = 0;

  /** Starts a world of at most `capacity` bytes. */
  begin(capacity: number): void {
    if (capacity > this.bytes.length) {
      this.bytes = new Uint8Array(capacity * 2);
      this.view = new DataView(this.bytes.buffer);
    }
    this.length = 0;
  }

  u8(value: number): void {
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  u16(value: number): void {
    this.view.setUint16(this.length, value, true);
    this.length += 2;
  }

  u32(value: number): void {
    this.view.setUint32(this.length, value >>> 0, true);
    this.length += 4;
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

  sum(): number {
    return xxh32(this.bytes, this.length);
  }
}

const layout = new ChecksumLayout();

/** Bytes each entry takes in the layout. */
const PLAYER_BYTES = 9;
const ENEMY_BYTES = 39;
const TOWER_BYTES = 13;
const PROJECTILE_BYTES = 30;

/**
 * The server's `NetWorld::checksum`, which every snapshot carries:
 * xxHash32 (seed 0) over the world's fields, little-endian.
 */
export function checksum(world: NetWorld): number {
  layout.begin(
    33 +
      PLAYER_BYTES * world.players.length +
      ENEMY_BYTES * world.enemies.length +
      TOWER_BYTES * world.towers.length +
      PROJECTILE_BYTES * world.projectiles.length,
  );
  layout.u64(world.tick);
  layout.u32(world.wave);
  layout.u32(world.lives);
  layout.u8(world.outcome);
  layout.u32(world.players.length);
  for (const player of world.players) {
    layout.u32(player.gold);
    layout.u8(player.ready ? 1 : 0);
    layout.u32(player.kills);
  }
  layout.u32(world.enemies.length);
  for (const enemy of world.enemies) {
    layout.u32(enemy.id);
    layout.u16(enemy.kind);
    layout.u32(enemy.hp);
    layout.u32(enemy.maxHp);
    layout.u8(enemy.flags);
    layout.trajectory(enemy.path);
  }
  layout.u32(world.towers.length);
  for (const tower of world.towers) {
    layout.u32(tower.id);
    layout.u8(tower.owner);
    layout.u16(tower.kind);
    layout.u8(tower.level);
    layout.u16(tower.x);
    layout.u16(tower.y);
    layout.u8(tower.targeting);
  }
  layout.u32(world.projectiles.length);
  for (const projectile of world.projectiles) {
    layout.u32(projectile.id);
    layout.u16(projectile.towerKind);
    layout.trajectory(projectile.path);
  }
  return layout.sum();
}
