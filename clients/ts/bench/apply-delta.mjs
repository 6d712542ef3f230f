// Time to apply one reference-session delta in Node, the TypeScript twin
// of `cargo bench -p rampart-benches --bench snapshot` ("apply"): the
// golden vectors' five seconds of the reference session's steady state
// (test/golden/codec.json, written by net/tests/golden.rs: 100 deltas at
// 20 Hz, about 99 enemies and 50 towers) applied in order, over and over,
// each world checked against its checksum as a client does.
//
//   npm run build && node bench/apply-delta.mjs
//
// Prints the median of 30 samples (each about 0.2 s) in microseconds per
// delta, after a 2 s warm-up for the JIT.

import { readFileSync } from "node:fs";

import { applyDelta, fromHex } from "../dist/index.js";

const codec = JSON.parse(readFileSync(new URL("../test/golden/codec.json", import.meta.url), "utf8"));
let world = applyDelta(undefined, fromHex(codec.recorded[0].full));
const steps = [];
for (const entry of codec.recorded.slice(1)) {
  const bytes = fromHex(entry.delta);
  steps.push({ base: world, bytes });
  world = applyDelta(world, bytes);
}
const bytes = steps.reduce((sum, step) => sum + step.bytes.length, 0) / steps.length;

let sink = 0;
function pass() {
  for (const step of steps) sink += applyDelta(step.base, step.bytes).enemies.length;
}

const warmUntil = performance.now() + 2000;
while (performance.now() < warmUntil) pass();
let passes = 1;
for (let started = performance.now(); performance.now() - started < 200; passes += 1) pass();
const samples = [];
for (let sample = 0; sample < 30; sample += 1) {
  const started = performance.now();
  for (let index = 0; index < passes; index += 1) pass();
  samples.push(((performance.now() - started) * 1000) / (passes * steps.length));
}
samples.sort((a, b) => a - b);
const median = samples[Math.floor(samples.length / 2)];
console.log(
  `apply a delta (Node ${process.versions.node}): median ${median.toFixed(2)} µs ` +
    `(min ${samples[0].toFixed(2)}, max ${samples.at(-1).toFixed(2)}; ${steps.length} deltas of ${bytes.toFixed(1)} B on average, ` +
    `${world.enemies.length} enemies, ${world.towers.length} towers; ${sink} enemies rebuilt in all)`,
);
