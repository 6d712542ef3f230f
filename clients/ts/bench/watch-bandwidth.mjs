// A TypeScript client's wire bytes per second on a live session, as a
// spectator over WebSocket, counted as the Rust client counts (frames plus
// 44 bytes of WebSocket, TCP and IP headers). `net_bandwidth` runs it next
// to a Rust spectator on the reference session to compare the two.
//
//   npm run build && node --experimental-websocket bench/watch-bandwidth.mjs \
//     http://127.0.0.1:8080 SESSION_ID SECONDS [ADMIN_TOKEN]
//
// Prints one JSON object: {"down": B/s, "up": B/s, "snapshots": per s,
// "desyncs": n, "seconds": s}.

import { watch } from "../dist/index.js";

const [server, session, seconds = "60", token] = process.argv.slice(2);
if (server === undefined || session === undefined) {
  console.error("usage: watch-bandwidth.mjs SERVER SESSION [SECONDS] [ADMIN_TOKEN]");
  process.exit(2);
}
const client = await watch(server, session, undefined, token === undefined ? {} : { token });
// The first snapshots (a full one) are not the steady state.
await new Promise((resolve) => setTimeout(resolve, 2000));
const before = { ...client.stats };
const started = performance.now();
await new Promise((resolve) => setTimeout(resolve, Number(seconds) * 1000));
const elapsed = (performance.now() - started) / 1000;
const after = client.stats;
console.log(
  JSON.stringify({
    down: (after.bytesIn - before.bytesIn) / elapsed,
    up: (after.bytesOut - before.bytesOut) / elapsed,
    snapshots: (after.snapshots - before.snapshots) / elapsed,
    desyncs: after.desyncs,
    seconds: elapsed,
  }),
);
client.close();
process.exit(0);
