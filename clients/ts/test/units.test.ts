/**
 * The pieces the golden vectors do not reach: the documented examples of
 * docs/PROTOCOL.md, trajectory arithmetic at its edges, the ring, hostile
 * renet input, and joining through redirects and refusals (against a real
 * HTTP server on 127.0.0.1 that answers as a fleet would).
 */

import assert from "node:assert/strict";
import { type IncomingMessage, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";

import {
  EMPTY_WORLD,
  JoinError,
  RenetConnection,
  SnapshotRing,
  applyDelta,
  clientConnectionConfig,
  decodePacket,
  encodeDelta,
  encodePacket,
  fromHex,
  join,
  positionAt,
  positionInCells,
  toHex,
} from "../src/index.js";
import { xxh32 } from "../src/snapshot/xxh32.js";

describe("docs/PROTOCOL.md examples", () => {
  test("the ack packet of section 4.2", () => {
    const packet = { type: "ack" as const, sequence: 20, ranges: [{ start: 0, end: 10 }, { start: 12, end: 15 }] };
    assert.equal(toHex(encodePacket(packet)), "04140e02010109");
    assert.deepEqual(decodePacket(fromHex("04140e02010109")), packet);
  });

  test("the empty world's full snapshot at tick 0 (section 7)", () => {
    assert.equal(toHex(encodeDelta(undefined, EMPTY_WORLD)), "00017fbd646d00");
    assert.deepEqual(applyDelta(undefined, fromHex("00017fbd646d00")), EMPTY_WORLD);
  });
});

describe("xxHash32", () => {
  test("matches the specification's vectors", () => {
    const text = (value: string) => new TextEncoder().encode(value);
    assert.equal(xxh32(text("")), 0x02cc5d05);
    assert.equal(xxh32(text("abc")), 0x32d153ff);
    // Only the first `length` bytes count: the checksum reuses one buffer.
    assert.equal(xxh32(text("abcdef"), 3), 0x32d153ff);
  });
});

describe("trajectories", () => {
  const path = { x: 100, y: -100, vx: 17, vy: -17, since: 10 };

  test("floor toward negative infinity, also before `since`", () => {
    assert.deepEqual(positionAt(path, 10), [100, -100]);
    assert.deepEqual(positionAt(path, 11), [101, -102]);
    assert.deepEqual(positionAt(path, 26), [117, -117]);
    assert.deepEqual(positionAt(path, 9), [98, -99]);
  });

  test("clamp to the i32 range far away, exactly", () => {
    const fast = { x: 2 ** 31 - 2, y: -(2 ** 31) + 1, vx: 2 ** 31 - 1, vy: -(2 ** 31), since: 0 };
    assert.deepEqual(positionAt(fast, 2 ** 52), [2 ** 31 - 1, -(2 ** 31)]);
    // Past 2^21 ticks the exact path: 3 * (2^22 + 1) / 16 floors to 786432.
    assert.deepEqual(positionAt({ x: 0, y: 0, vx: 3, vy: -3, since: 0 }, 2 ** 22 + 1), [786432, -786433]);
  });

  test("interpolate between ticks for drawing", () => {
    const walker = { x: 256, y: 512, vx: 4096, vy: -2048, since: 4 };
    assert.deepEqual(positionInCells(walker, 4), { x: 1, y: 2 });
    assert.deepEqual(positionInCells(walker, 5), { x: 2, y: 1.5 });
    assert.deepEqual(positionInCells(walker, 4.5), { x: 1.5, y: 1.75 });
  });
});

describe("snapshot ring", () => {
  test("keeps the newest 32 worlds and restarts on an older tick", () => {
    const ring = new SnapshotRing();
    for (let tick = 0; tick < 100; tick++) ring.push({ ...EMPTY_WORLD, tick: tick * 2 });
    assert.equal(ring.size, 32);
    assert.equal(ring.get(150)?.tick, 150);
    assert.equal(ring.get(151), undefined);
    assert.equal(ring.get(2), undefined);
    ring.push({ ...EMPTY_WORLD, tick: 190 });
    assert.equal(ring.latest()?.tick, 190);
    assert.equal(ring.get(192), undefined);
    ring.clear();
    assert.equal(ring.size, 0);
    assert.equal(ring.latest(), undefined);
    assert.equal(ring.get(150), undefined);
  });
});

describe("renet input", () => {
  test("an undecodable packet or an unknown channel loses the connection, never throws", () => {
    for (const bad of ["", "09", "00", "0000010001", "0300000000000000", "04000502"]) {
      const connection = new RenetConnection(clientConnectionConfig());
      connection.processPacket(fromHex(bad));
      assert.ok(connection.error !== undefined, bad);
    }
    const slicePastCount = new RenetConnection(clientConnectionConfig());
    slicePastCount.processPacket(encodePacket({
      type: "unreliable-slice",
      sequence: 0,
      channel: 1,
      slice: { messageId: 0, sliceIndex: 3, numSlices: 2, payload: new Uint8Array(10) },
    }));
    assert.match(slicePastCount.error?.message ?? "", /slice/);
  });
});

/** A real HTTP server on 127.0.0.1 answering each request with the next of `answers`. */
async function scripted(answers: ((request: IncomingMessage, response: ServerResponse, base: string) => void)[]) {
  const seen: { url: string; body: string; authorization: string | undefined }[] = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk: Buffer) => (body += chunk.toString()));
    request.on("end", () => {
      seen.push({ url: request.url ?? "", body, authorization: request.headers.authorization });
      const answer = answers.shift();
      if (answer === undefined) response.writeHead(500).end();
      else answer(request, response, base);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, seen, close: () => new Promise((resolve) => server.close(resolve)) };
}

const SEAT = {
  session_id: "03f78e9cbf813815",
  player_id: 1,
  connect_token: "token",
  udp_addresses: ["127.0.0.1:5000"],
  ws_url: "ws://127.0.0.1:5080/ws?ticket=t",
  reconnect_token: "again",
  spectate_invite: "watch",
};

describe("joining", () => {
  test("follows a 307 with the same request and waits out a 503's Retry-After", async () => {
    const started = Date.now();
    const fleet = await scripted([
      (_request, response, base) => response.writeHead(307, { location: `${base}/elsewhere/v1/join` }).end(),
      (_request, response) => response.writeHead(503, { "retry-after": "1" }).end('{"error":"moving"}'),
      (_request, response) => response.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(SEAT)),
    ]);
    try {
      const seat = await join(fleet.base, { reconnectToken: "abc" }, { token: "jwt" });
      assert.equal(seat.sessionId, SEAT.session_id);
      assert.equal(seat.wsUrl, SEAT.ws_url);
      assert.deepEqual(fleet.seen.map((request) => request.url), ["/v1/join", "/elsewhere/v1/join", "/elsewhere/v1/join"]);
      for (const request of fleet.seen) {
        assert.deepEqual(JSON.parse(request.body), { reconnect_token: "abc" });
        assert.equal(request.authorization, "Bearer jwt");
      }
      assert.ok(Date.now() - started >= 1000, "waited the second Retry-After asked for");
    } finally {
      await fleet.close();
    }
  });

  test("an invite goes to the session's own join path; a refusal is a JoinError with the server's message", async () => {
    const server = await scripted([
      (_request, response) => response.writeHead(409, { "content-type": "application/json" }).end('{"error":"session is full"}'),
    ]);
    try {
      await assert.rejects(
        join(server.base, { sessionId: "03f78e9cbf813815", name: "p" }),
        (error: unknown) => error instanceof JoinError && error.status === 409 && /session is full/.test(error.message),
      );
      assert.equal(server.seen[0]?.url, "/v1/sessions/03f78e9cbf813815/join");
    } finally {
      await server.close();
    }
  });

  test("gives up on 503s past its patience", async () => {
    const busy = await scripted([(_request, response) => response.writeHead(503, { "retry-after": "5" }).end()]);
    try {
      await assert.rejects(join(busy.base, {}, { patienceMs: 1000 }), (error: unknown) => error instanceof JoinError && error.status === 503 && error.retryAfterMs === 5000);
    } finally {
      await busy.close();
    }
  });
});
