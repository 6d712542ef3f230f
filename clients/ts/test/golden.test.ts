/**
 * The Rust side's golden vectors (written by net/tests/golden.rs) decoded
 * and encoded here: the snapshot codec on a real reference session and on
 * edge cases, every message shape, bundles, and a renet exchange replayed
 * packet for packet.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import {
  DecodeError,
  type NetWorld,
  RenetConnection,
  type Slot,
  applyDelta,
  bundle,
  checksum,
  clientConnectionConfig,
  decodeHeader,
  decodeServerMessage,
  encodeClientMessage,
  encodeDelta,
  fromHex,
  toHex,
  unbundle,
} from "../src/index.js";

function golden<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`../../test/golden/${name}`, import.meta.url), "utf8")) as T;
}

/** bigints as decimal strings, as the vectors write u64 identifiers. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_key, inner: unknown) => (typeof inner === "bigint" ? inner.toString() : inner)));
}

function sum(world: NetWorld): string {
  return checksum(world).toString(16).padStart(8, "0");
}

interface Recorded {
  tick: number;
  checksum: string;
  full?: string;
  delta?: string;
  delta_from_31_back?: string;
  world?: NetWorld;
}

interface Codec {
  recorded: Recorded[];
  edges: {
    worlds: { world: NetWorld; checksum: string }[];
    encodings: { base: number | null; next: number; bytes: string }[];
  };
  broken: { name: string; bytes: string; base: number | null; kind: string }[];
}

describe("snapshot codec", () => {
  const codec = golden<Codec>("codec.json");

  /** The recorded worlds rebuilt as a client does: the first full snapshot, then each delta. */
  function rebuild(): NetWorld[] {
    const worlds: NetWorld[] = [];
    for (const [index, entry] of codec.recorded.entries()) {
      const world =
        entry.delta !== undefined ? applyDelta(worlds[index - 1], fromHex(entry.delta)) : applyDelta(undefined, fromHex(entry.full!));
      assert.equal(sum(world), entry.checksum, `tick ${entry.tick}`);
      worlds.push(world);
    }
    return worlds;
  }

  test("rebuilds the reference session's worlds from full snapshots and deltas, checksum for checksum", () => {
    assert.ok(codec.recorded.length >= 100);
    const worlds = rebuild();
    codec.recorded.forEach((entry, index) => {
      if (entry.full !== undefined) {
        assert.deepEqual(applyDelta(undefined, fromHex(entry.full)), worlds[index], `tick ${entry.tick}: full snapshot`);
      }
      if (entry.delta_from_31_back !== undefined) {
        const far = applyDelta(worlds[index - 31], fromHex(entry.delta_from_31_back));
        assert.deepEqual(far, worlds[index], `tick ${entry.tick}: delta from 31 back`);
      }
      if (entry.world !== undefined) assert.deepEqual(worlds[index], entry.world, `tick ${entry.tick}: world`);
    });
    const busiest = Math.max(...worlds.map((world) => world.enemies.length));
    assert.ok(busiest > 50, `the recording holds a busy board (${busiest} enemies at most)`);
    assert.ok(worlds.some((world) => world.projectiles.length > 0 && world.towers.length > 20));
  });

  test("encodes the reference session's worlds byte for byte as the server", () => {
    const worlds = rebuild();
    codec.recorded.forEach((entry, index) => {
      const world = worlds[index]!;
      if (entry.full !== undefined) assert.equal(toHex(encodeDelta(undefined, world)), entry.full, `tick ${entry.tick}: full`);
      if (entry.delta !== undefined) {
        const checked = decodeHeader(fromHex(entry.delta)).checksum !== undefined;
        assert.equal(toHex(encodeDelta(worlds[index - 1], world, checked)), entry.delta, `tick ${entry.tick}: delta`);
      }
      if (entry.delta_from_31_back !== undefined) {
        assert.equal(toHex(encodeDelta(worlds[index - 31], world)), entry.delta_from_31_back);
      }
    });
  });

  test("edge worlds sum, encode and decode as in Rust", () => {
    const worlds = codec.edges.worlds.map((entry) => {
      assert.equal(sum(entry.world), entry.checksum, `tick ${entry.world.tick}`);
      return entry.world;
    });
    for (const { base, next, bytes } of codec.edges.encodings) {
      const from = base === null ? undefined : worlds[base];
      assert.equal(toHex(encodeDelta(from, worlds[next]!)), bytes, `edge ${base} -> ${next}`);
      assert.deepEqual(applyDelta(from, fromHex(bytes)), worlds[next], `edge ${base} -> ${next}`);
    }
  });

  test("refuses broken deltas for the same reasons", () => {
    const worlds = codec.edges.worlds.map((entry) => entry.world);
    for (const broken of codec.broken) {
      const base = broken.base === null ? undefined : worlds[broken.base];
      assert.throws(
        () => applyDelta(base, fromHex(broken.bytes)),
        (error: unknown) => error instanceof DecodeError && error.kind === broken.kind,
        broken.name,
      );
    }
  });
});

type GoldenSlot = { kind: "renet" | "snapshot"; bytes: string } | { kind: "snapshotAck"; tick: number };

function fromGoldenSlot(slot: GoldenSlot): Slot {
  switch (slot.kind) {
    case "renet":
      return { kind: "renet", packet: fromHex(slot.bytes) };
    case "snapshot":
      return { kind: "snapshot", snapshot: fromHex(slot.bytes) };
    case "snapshotAck":
      return { kind: "snapshotAck", tick: slot.tick };
  }
}

interface Messages {
  server: { bytes: string; message: unknown }[];
  client: { bytes: string; message: Record<string, unknown> }[];
  bundles: { slots: GoldenSlot[]; bundles: string[] }[];
}

describe("messages and bundles", () => {
  const messages = golden<Messages>("messages.json");

  test("decodes every server message shape", () => {
    for (const { bytes, message } of messages.server) {
      assert.deepEqual(plain(decodeServerMessage(fromHex(bytes))), message, bytes);
    }
  });

  test("refuses a server message with trailing bytes or an unknown variant", () => {
    assert.throws(() => decodeServerMessage(fromHex(`${messages.server[0]!.bytes}00`)), DecodeError);
    assert.throws(() => decodeServerMessage(fromHex("05")), DecodeError);
    assert.throws(() => decodeServerMessage(fromHex("0100")), DecodeError);
  });

  test("encodes every client message shape", () => {
    for (const { bytes, message } of messages.client) {
      const shaped = message.type === "hello" ? { ...message, contentVersion: BigInt(message.contentVersion as string) } : message;
      assert.equal(toHex(encodeClientMessage(shaped as Parameters<typeof encodeClientMessage>[0])), bytes);
    }
  });

  test("bundles and unbundles as the server", () => {
    for (const vector of messages.bundles) {
      const slots = vector.slots.map(fromGoldenSlot);
      assert.deepEqual(bundle(slots).map(toHex), vector.bundles);
      const back = vector.bundles.flatMap((frame) => unbundle(fromHex(frame)).slots);
      assert.deepEqual(back, slots);
    }
  });
});

type Step =
  | { op: "send"; channel: number; bytes: string }
  | { op: "flush"; expect: string[] }
  | { op: "deliver"; packets: string[] }
  | { op: "receive"; channel: number; expect: string[] }
  | { op: "update"; ms: number };

describe("renet", () => {
  test("replays renet's own exchange packet for packet", () => {
    const { steps } = golden<{ steps: Step[] }>("renet.json");
    const connection = new RenetConnection(clientConnectionConfig());
    steps.forEach((step, index) => {
      switch (step.op) {
        case "send":
          connection.send(step.channel, fromHex(step.bytes));
          break;
        case "flush":
          assert.deepEqual(connection.packetsToSend().map(toHex), step.expect, `step ${index}: flush`);
          break;
        case "deliver":
          for (const packet of step.packets) connection.processPacket(fromHex(packet));
          assert.equal(connection.error, undefined, `step ${index}`);
          break;
        case "receive": {
          const got: string[] = [];
          for (let message = connection.receive(step.channel); message !== undefined; message = connection.receive(step.channel)) {
            got.push(toHex(message));
          }
          assert.deepEqual(got, step.expect, `step ${index}: receive on channel ${step.channel}`);
          break;
        }
        case "update":
          connection.update(step.ms);
          break;
      }
    });
  });
});
