/**
 * Whole games against a real `rampart` process over WebSocket: players
 * join over HTTP, build, ready and play to the end, every snapshot checked
 * against the server's checksum, on a clean link and on one that drops a
 * tenth of the frames both ways; a spectator watches the same worlds and
 * has its commands refused.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  type Client,
  Client as RampartClient,
  type CloseInfo,
  type CommandResult,
  JoinError,
  type Transport,
  type WireEvent,
  checksum,
  join,
  openWebSocket,
  spectate,
} from "../src/index.js";
import { Server, quickAssets } from "./support/server.js";

/** Drops frames both ways with probability `loss`, from a fixed pseudo-random stream. */
function lossy(inner: Transport, loss: number, seed: number): Transport & { dropped: number } {
  let state = seed >>> 0 || 1;
  const lose = () => {
    // xorshift32: the same drops on every run.
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state / 2 ** 32 < loss;
  };
  const transport = {
    dropped: 0,
    send(frame: Uint8Array) {
      if (lose()) transport.dropped += 1;
      else inner.send(frame);
    },
    close: () => inner.close(),
    attach(handlers: Parameters<Transport["attach"]>[0]) {
      inner.attach({
        frame(frame) {
          if (lose()) transport.dropped += 1;
          else handlers.frame(frame);
        },
        close: handlers.close,
      });
    },
  };
  return transport;
}

/** One player's view of the game, recorded as it goes. */
interface Seat {
  client: Client;
  /** The checksum of every world applied, by tick. */
  sums: Map<number, number>;
  events: WireEvent[];
  closed: Promise<CloseInfo>;
}

function watch(client: Client): Seat {
  const sums = new Map<number, number>();
  const events: WireEvent[] = [];
  client.on("snapshot", (world) => sums.set(world.tick, checksum(world)));
  client.on("event", ({ event }) => events.push(event));
  const closed = new Promise<CloseInfo>((resolve) => client.on("close", resolve));
  return { client, sums, events, closed };
}

const ARROW = 0;

async function playSprint(server: Server, loss: number): Promise<{ seats: Seat[]; spectator: Seat; refused: CommandResult; dropped: number }> {
  const request = { name: "ts", map: "sprint", maxPlayers: 2 };
  const joins = [await join(server.url, request), await join(server.url, request)];
  assert.equal(joins[0]!.sessionId, joins[1]!.sessionId, "matchmaking seats both in one session");
  const transports = await Promise.all(
    joins.map(async (answer, index) => {
      const socket = await openWebSocket(answer.wsUrl);
      return index === 1 && loss > 0 ? lossy(socket, loss, 0x5eed) : socket;
    }),
  );
  const clients = await Promise.all(joins.map((answer, index) => RampartClient.open(answer, { transport: transports[index]! })));
  const seats = clients.map(watch);
  // A public session: anyone may watch, no invite needed.
  const spectator = watch(await RampartClient.open(await spectate(server.url, joins[0]!.sessionId)));
  await Promise.all([...clients, spectator.client].map((client) => client.ready));
  assert.equal(spectator.client.welcome?.player, null, "a spectator has no seat");
  assert.ok(spectator.client.spectating);
  const refused = await spectator.client.command({ type: "placeTower", kind: ARROW, x: 5, y: 5 });
  for (const seat of seats) {
    assert.equal(seat.client.welcome?.map, "sprint");
    assert.equal(seat.client.welcome?.players, 2);
  }
  const results: CommandResult[][] = await Promise.all(
    seats.map(async (seat) => {
      const me = seat.client.welcome!.player!;
      const placed = await Promise.all([
        seat.client.command({ type: "placeTower", kind: ARROW, x: 1 + 2 * me, y: 1 }),
        seat.client.command({ type: "placeTower", kind: ARROW, x: 2 + 2 * me, y: 3 }),
      ]);
      return [...placed, await seat.client.command({ type: "ready" })];
    }),
  );
  for (const [index, answers] of results.entries()) {
    assert.deepEqual(answers, [{ ok: true }, { ok: true }, { ok: true }], `player ${index}: placements and ready`);
  }
  // The same place again is refused, with the reason, as a value.
  const again = await seats[0]!.client.command({ type: "placeTower", kind: ARROW, x: 1, y: 1 });
  assert.equal(again.ok, false);
  const closes = await Promise.all(seats.map((seat) => seat.closed));
  for (const [index, info] of closes.entries()) {
    // The goodbye travels once, in the last frame before the close: a link
    // that drops frames may lose it (docs/PROTOCOL.md section 5.4).
    if (info.bye !== undefined || index === 0 || loss === 0) {
      assert.equal(info.bye?.type, "sessionEnded", `player ${index}: ${info.reason}`);
    }
  }
  const dropped = transports.reduce((sum, transport) => sum + ("dropped" in transport ? (transport as { dropped: number }).dropped : 0), 0);
  await spectator.closed;
  return { seats, spectator, refused, dropped };
}

/**
 * Both players saw the same world at every tick they share, and every snapshot passed its checksum; each applied
 * every snapshot but the player on a `lossy` link, who rejects the delta after a lost one.
 */
function assertSameWorlds(seats: Seat[], lossy?: number): void {
  for (const [index, seat] of seats.entries()) {
    const stats = seat.client.stats;
    assert.equal(stats.desyncs, 0, `player ${index} desynced`);
    if (index !== lossy) assert.equal(stats.rejectedSnapshots, 0, `player ${index} rejected snapshots`);
    assert.ok(stats.snapshots > 100, `player ${index} applied ${stats.snapshots} snapshots`);
    assert.equal(seat.sums.size, stats.snapshots, `player ${index}: one world per snapshot`);
  }
  let shared = 0;
  for (const [tick, sum] of seats[0]!.sums) {
    const other = seats[1]!.sums.get(tick);
    if (other === undefined) continue;
    shared += 1;
    assert.equal(other, sum, `tick ${tick}: the players' worlds differ`);
  }
  assert.ok(shared > 50, `players shared only ${shared} ticks`);
}

/**
 * Every player saw the whole game; one whose goodbye was lost may have missed the very end, and the player on a
 * `lossy` link may miss the last world: the server deltas it against the one written before, which the link may
 * have dropped, and no later snapshot comes to mend the chain (a real WebSocket loses nothing).
 */
function assertPlayedToTheEnd(seats: Seat[], lossy?: number): void {
  for (const [index, seat] of seats.entries()) {
    const world = seat.client.world;
    const gameOver = seat.events.find((event) => event.type === "gameOver");
    if (seat.client.closeInfo?.bye !== undefined) {
      assert.ok(gameOver !== undefined, `player ${index} heard the game end`);
      if (index !== lossy) assert.equal(world.outcome, gameOver.victory ? 1 : 2, `player ${index}: the last world shows the outcome`);
    }
    assert.equal(world.towers.length, 4, `player ${index} sees every tower`);
    assert.ok(
      seat.events.some((event) => event.type === "waveStarted"),
      `player ${index} heard a wave start`,
    );
    assert.equal(seat.events.filter((event) => event.type === "towerPlaced").length, 4);
  }
}

describe("whole games against a real server", () => {
  let server: Server;

  before(async () => {
    const assets = quickAssets();
    server = await Server.start(["--assets", assets]);
    server.own(assets);
  });

  after(async () => {
    await server?.stop();
  });

  test("two players over WebSocket play the sprint map to the end, watched by a spectator", { timeout: 120_000 }, async () => {
    const { seats, spectator, refused } = await playSprint(server, 0);
    assertSameWorlds(seats);
    assertSameWorlds([seats[0]!, spectator]);
    assertPlayedToTheEnd(seats);
    assertPlayedToTheEnd([spectator]);
    assert.deepEqual(refused, { ok: false, rejection: { type: "spectating" } }, "a spectator's command is refused");
    for (const seat of seats) {
      const stats = seat.client.stats;
      assert.ok(stats.bytesIn > 0 && stats.bytesOut > 0);
      // The WebSocket delivers in order: the server deltas against what it wrote, so the client acknowledges only
      // sliced worlds and keeps the connection alive, and no delta misses its base.
      assert.ok(stats.acksSent * 10 <= stats.snapshots, `acknowledged ${stats.acksSent} of ${stats.snapshots} snapshots`);
      assert.equal(stats.rejectedSnapshots, 0);
      assert.ok(stats.fullSnapshots <= 2, `${stats.fullSnapshots} full snapshots`);
    }
  });

  test("a player on a link that drops a tenth of the frames stays in step", { timeout: 120_000 }, async () => {
    const { seats, dropped } = await playSprint(server, 0.1);
    assert.ok(dropped >= 20, `the link dropped only ${dropped} frames`);
    // The server deltas against the snapshots it wrote, lost ones too: the delta after a lost one is rejected and
    // answered with the world the client holds, which the server then builds on.
    const lossy = seats[1]!.client.stats;
    assert.ok(lossy.rejectedSnapshots > 0 && lossy.acksSent >= lossy.rejectedSnapshots / 2, `${lossy.rejectedSnapshots} rejected, ${lossy.acksSent} acknowledgements`);
    assertSameWorlds(seats, 1);
    assertPlayedToTheEnd(seats, 1);
  });

  test("a client whose world went wrong drops its worlds, asks for a full one and is back in step", { timeout: 60_000 }, async () => {
    const client = await RampartClient.open(await join(server.url, { name: "ts", map: "sprint", maxPlayers: 1 }));
    await client.ready;
    assert.deepEqual(await client.command({ type: "placeTower", kind: ARROW, x: 1, y: 1 }), { ok: true });
    // The game starts: the world moves, and a snapshot follows each move.
    assert.deepEqual(await client.command({ type: "ready" }), { ok: true });
    const desynced = new Promise<{ tick: number }>((resolve) => client.on("desync", resolve));
    let trueLevel: number | undefined;
    let corruptedAt: number | undefined;
    client.on("snapshot", (world) => {
      const tower = world.towers[0];
      if (tower === undefined || corruptedAt !== undefined) return;
      // The world a handler is given is the one the client holds and deltas are applied to: a bug that changed
      // it is what the checksum is there to catch. Nothing changes a tower's level here, so every later delta
      // carries the wrong one along until a checked world shows it.
      trueLevel = tower.level;
      corruptedAt = world.tick;
      (tower as { level: number }).level += 1;
    });
    const { tick } = await desynced;
    assert.ok(tick > corruptedAt!, `the desync at tick ${tick} comes after the change at ${corruptedAt}`);
    // Worlds since the last checked one are suspect: none is kept, so the next acknowledgement asks for a full one.
    const fullBefore = client.stats.fullSnapshots;
    const mended = await new Promise<number>((resolve, reject) => {
      // A client that kept its worlds would build on the wrong one and fail again.
      client.on("desync", (again) => reject(new Error(`desynced again at tick ${again.tick} before a full world came`)));
      client.on("snapshot", (world) => {
        if (client.stats.fullSnapshots > fullBefore) resolve(world.tick);
      });
    });
    assert.ok(mended > tick);
    assert.equal(client.world.towers[0]?.level, trueLevel, "the full world has the server's level");
    const applied = client.stats.snapshots;
    // Deltas on the mended world apply and pass their checksums again.
    await new Promise<void>((resolve) => {
      client.on("snapshot", () => {
        if (client.stats.snapshots >= applied + 8) resolve();
      });
    });
    const stats = client.stats;
    assert.equal(stats.desyncs, 1);
    assert.equal(stats.fullSnapshots, fullBefore + 1, "one full world mends it");
    assert.ok(stats.acksSent >= 1, "the client asked for it");
    client.close();
  });

  test("a join the server refuses is a JoinError with its status", async () => {
    await assert.rejects(join(server.url, { map: "no-such-map" }), (error: unknown) => error instanceof JoinError && error.status === 400);
    await assert.rejects(
      join(server.url, { sessionId: "00000000000000ff" }),
      (error: unknown) => error instanceof JoinError && error.status === 404,
    );
  });
});
