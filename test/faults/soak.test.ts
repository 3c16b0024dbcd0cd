// Steady load across many token expiries with the IdP failing 20% of token requests: no 5xx made by
// the proxy while a token was obtainable, no expired token sent, memory flat.
// `npm test` runs it for SOAK_SECONDS=8; `npm run test:faults` for 120 s.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 8);
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;
const LIFETIME_SEC = 6; // refreshed when 3 s remain: many refreshes in any soak

test(`soak: ${SECONDS} s of load, ${LIFETIME_SEC} s tokens, IdP failing 20% of token requests`, {
  timeout: (SECONDS + 60) * 1000,
}, async (t) => {
  const stack = await startStack(t, {
    yaml: DEMO_ROUTES_YAML,
    tokenLifetimeSec: LIFETIME_SEC,
    backoff: { initialMs: 100, maxMs: 500 },
  });
  const { emulator } = stack.world;
  // Warm first (so "a valid token was obtainable" holds from the start), then turn the faults on.
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  emulator.inject({ status: 503, probability: 0.2, match: { grantType: "client_credentials" } });
  const settle = async () => {
    // The test's own records (log lines, the mocks' request logs) are not the proxy's memory.
    stack.logs.length = 0;
    for (const mock of Object.values(stack.world.mocks)) mock.requests.length = 0;
    gc();
    await new Promise((r) => setTimeout(r, 100));
    gc();
    return process.memoryUsage();
  };
  const start = await settle();
  const statuses = new Map<number, number>();
  const deadline = Date.now() + SECONDS * 1000;
  let sent = 0;
  const worker = async () => {
    while (Date.now() < deadline) {
      const res = await stack.call(`/powerplatform/items/${sent++ % 50}`);
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const end = await settle();
  const faults = emulator.tokenRequests.filter((r) => r.outcome === "fault").length;
  const successes = emulator.tokenRequests.filter(
    (r) => r.outcome === "success" && r.grantType === "client_credentials",
  ).length;
  const metrics = await stack.metrics();
  const mb = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  t.diagnostic(
    `${sent} requests in ${SECONDS} s: ${JSON.stringify(Object.fromEntries(statuses))}; token requests ok ${successes}, failed ${faults}; heap after GC ${mb(start.heapUsed)} → ${mb(end.heapUsed)}, RSS ${mb(start.rss)} → ${mb(end.rss)}`,
  );
  assert.deepEqual([...statuses.keys()], [200], "every request succeeded: no proxy 5xx, no upstream 401");
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/powerplatform" }),
    undefined,
    "no expired token was sent",
  );
  assert.ok(successes >= Math.floor(SECONDS / (LIFETIME_SEC / 2)), `tokens were refreshed (${successes})`);
  // Live memory stays flat (RSS of one process that also runs the client, the emulator and the mocks
  // mostly shows allocator high-water marks, so the bound is on the heap that survives a GC).
  assert.ok(end.heapUsed - start.heapUsed < 16 * 1048576, `heap grew ${mb(end.heapUsed - start.heapUsed)}`);
});
