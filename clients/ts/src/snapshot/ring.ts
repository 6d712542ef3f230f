/**
 * The last worlds the client rebuilt, by tick (`net/src/snapshot/ring.rs`):
 * the server deltas against the newest one the client acknowledged, which
 * may be up to {@link RING_SIZE} snapshots old.
 *
 * @module
 */

import type { NetWorld } from "./world.js";

/** Worlds kept: the server keeps as many. */
export const RING_SIZE = 32;

/** The newest {@link RING_SIZE} worlds, oldest first. */
export class SnapshotRing {
  private readonly worlds: NetWorld[] = [];

  /** Adds the newest world; one not newer than those held first drops those at or after its tick. */
  push(world: NetWorld): void {
    while (this.worlds.length > 0 && this.worlds[this.worlds.length - 1]!.tick >= world.tick) {
      this.worlds.pop();
    }
    if (this.worlds.length === RING_SIZE) this.worlds.shift();
    this.worlds.push(world);
  }

  /** Drops every world: after a failed checksum, those since the last checked one are suspect too. */
  clear(): void {
    this.worlds.length = 0;
  }

  /** The world of `tick`, if still held. */
  get(tick: number): NetWorld | undefined {
    let low = 0;
    let high = this.worlds.length - 1;
    while (low <= high) {
      const middle = (low + high) >> 1;
      const world = this.worlds[middle]!;
      if (world.tick === tick) return world;
      if (world.tick < tick) low = middle + 1;
      else high = middle - 1;
    }
    return undefined;
  }

  /** The newest world. */
  latest(): NetWorld | undefined {
    return this.worlds[this.worlds.length - 1];
  }

  get size(): number {
    return this.worlds.length;
  }
}
