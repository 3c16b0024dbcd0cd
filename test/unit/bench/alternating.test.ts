// The alternating load generator of `npm run bench` (scripts/bench-alternating.ts): turns that never
// overlap, in the order A B B A …, every response counted on its own side, warm-up turns left out.
import assert from "node:assert/strict";
import { once } from "node:events";
import http from "node:http";
import { test } from "node:test";
import { alternatingLoad } from "../../../scripts/bench-alternating.ts";

/** A server that answers `status` after `delayMs` and logs which server got each request. */
async function server(name: string, log: string[], delayMs: number, status = 200) {
  const s = http.createServer((_req, res) => {
    log.push(name);
    setTimeout(() => {
      res.statusCode = status;
      res.end("ok");
    }, delayMs);
  });
  s.listen(0, "127.0.0.1");
  await once(s, "listening");
  const { port } = s.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/x`, close: () => s.close() };
}

test("alternating load: exclusive turns A B B A …, per-side counts, warm-up turns not measured", async () => {
  const log: string[] = [];
  const [a, b] = [await server("a", log, 2), await server("b", log, 5)];
  const slices: string[] = [];
  try {
    const [ra, rb] = await alternatingLoad({
      targets: [
        { url: a.url, headers: {}, onSlice: (p) => slices.push(`a-${p}`) },
        { url: b.url, headers: {}, onSlice: (p) => slices.push(`b-${p}`) },
      ],
      connections: 3,
      sliceMs: 60,
      slices: 4,
      warmupSlices: 1,
    });
    // 2 warm-up turns (A B) and 8 measured (B A A B B A A B): A B | B A A B B A A B → runs A B A B A B.
    const runs = log.filter((name, i) => i === 0 || log[i - 1] !== name);
    assert.deepEqual(runs, ["a", "b", "a", "b", "a", "b"], "turns never overlap");
    // onSlice is called for measured turns only, start and end in pairs, in turn order.
    assert.deepEqual(
      slices,
      ["b", "a", "a", "b", "b", "a", "a", "b"].flatMap((n) => [`${n}-start`, `${n}-end`]),
    );
    for (const [side, name, delay] of [
      [ra, "a", 2],
      [rb, "b", 5],
    ] as const) {
      assert.equal(side.failures, 0, name);
      assert.equal(side.latencies.length, side.requests, name);
      assert.equal(side.sliceRps.length, 4, name);
      assert.equal(side.sliceP99.length, 4, name);
      for (const p99 of side.sliceP99) {
        assert.ok(p99 >= side.latencies[0]! && p99 <= side.latencies.at(-1)!, `${name}: turn p99 ${p99} ms`);
      }
      // Node timers run at millisecond granularity: a 2 ms delay can end 1.x ms after it was set.
      assert.ok(side.latencies[0]! >= delay - 1, `${name}: latency ${side.latencies[0]} ms, delay ${delay}`);
      // Measured requests are fewer than all the server got: the warm-up turn is left out.
      const served = log.filter((n) => n === name).length;
      assert.ok(side.requests > 0 && side.requests < served, `${name}: ${side.requests} of ${served}`);
      // About 4 turns of 60 ms with 3 connections at 1 request per `delay` ms each, closed loop.
      assert.ok(side.seconds >= 0.24 && side.seconds < 1, `${name}: ${side.seconds} s measured`);
    }
    assert.ok(ra.requests > rb.requests, "the faster server answers more requests in the same turns");
  } finally {
    a.close();
    b.close();
  }
});

test("alternating load: non-200 answers count as failed, on their own side", async () => {
  const log: string[] = [];
  const [a, b] = [await server("a", log, 1), await server("b", log, 1, 503)];
  try {
    const [ra, rb] = await alternatingLoad({
      targets: [
        { url: a.url, headers: {} },
        { url: b.url, headers: {} },
      ],
      connections: 2,
      sliceMs: 30,
      slices: 2,
      warmupSlices: 0,
    });
    assert.equal(ra.failures, 0);
    assert.ok(rb.requests > 0);
    assert.equal(rb.failures, rb.requests);
  } finally {
    a.close();
    b.close();
  }
});
