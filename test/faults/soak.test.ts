// Steady load across many token expiries with the IdP failing 20% of token requests: no 5xx made by
// the proxy while a token was obtainable, no expired token sent, memory flat. The proxy runs in a
// process of its own so that its memory is measured alone.
// `npm test` runs it for SOAK_SECONDS=8 (RSS reported only); `npm run test:faults` for 120 s.
import assert from "node:assert/strict";
import { test } from "node:test";
import { residentBytes, startIsolatedStack } from "../helpers/proxy-process.ts";
import { metricValue } from "../helpers/stack.ts";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 8);
const LIFETIME_SEC = 6; // refreshed when 3 s remain: many refreshes in any soak
const MiB = 1048576;
/** Long soaks check RSS after the warm-up; short ones (npm test) only report it. */
const CHECK_RSS = SECONDS >= 60;
const WARM_UP_SECONDS = CHECK_RSS ? 20 : 3;

test(`soak: ${SECONDS} s of load, ${LIFETIME_SEC} s tokens, IdP failing 20% of token requests`, {
  timeout: (SECONDS + 60) * 1000,
}, async (t) => {
  // Emulator, mocks and load generator here; the proxy in a process of its own, so its memory is
  // measured alone.
  const { world, proxy } = await startIsolatedStack(t, {
    tokenLifetimeSec: LIFETIME_SEC,
    backoff: { initialMs: 100, maxMs: 500 },
  });
  const call = (path: string) =>
    fetch(`${proxy.proxyUrl}${path}`, { headers: { "x-api-key": world.secrets.apiKey } });
  const { emulator } = world;
  // Warm first (so "a valid token was obtainable" holds from the start), then turn the faults on.
  await (await call("/powerplatform/x")).arrayBuffer();
  const load = async (seconds: number, statuses: Map<number, number>) => {
    const deadline = Date.now() + seconds * 1000;
    let sent = 0;
    const worker = async () => {
      while (Date.now() < deadline) {
        const res = await call(`/powerplatform/items/${sent++ % 50}`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    return sent;
  };
  // V8 sizes its young generation to the allocation rate, so RSS climbs for ~15 s under load and
  // then stays level; the RSS comparison starts after that (a forced GC restarts the climb).
  const start = await proxy.memory();
  emulator.inject({ status: 503, probability: 0.2, match: { grantType: "client_credentials" } });
  await load(WARM_UP_SECONDS, new Map());
  const tokenRequestsBefore = emulator.tokenRequests.length;
  const rssStart = residentBytes(proxy.pid);
  let rssPeak = rssStart;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, residentBytes(proxy.pid));
  }, 1000);
  const statuses = new Map<number, number>();
  const sent = await load(SECONDS, statuses);
  clearInterval(sampler);
  const rssEnd = residentBytes(proxy.pid);
  rssPeak = Math.max(rssPeak, rssEnd);
  const end = await proxy.memory();
  const during = emulator.tokenRequests.slice(tokenRequestsBefore);
  const faults = during.filter((r) => r.outcome === "fault").length;
  const successes = during.filter(
    (r) => r.outcome === "success" && r.grantType === "client_credentials",
  ).length;
  const metrics = await (await fetch(`${proxy.adminUrl}/metrics`)).text();
  const mb = (n: number) => `${(n / MiB).toFixed(1)} MiB`;
  t.diagnostic(
    `${sent} requests in ${SECONDS} s: ${JSON.stringify(Object.fromEntries(statuses))}; token requests ok ${successes}, failed ${faults}; proxy process: RSS under load ${mb(rssStart)} → ${mb(rssEnd)} (peak ${mb(rssPeak)}), heap after GC ${mb(start.heapUsed)} → ${mb(end.heapUsed)}, external ${mb(start.external)} → ${mb(end.external)}`,
  );
  assert.deepEqual([...statuses.keys()], [200], "every request succeeded: no proxy 5xx, no upstream 401");
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/powerplatform" }),
    undefined,
    "no expired token was sent",
  );
  assert.ok(successes >= Math.floor(SECONDS / (LIFETIME_SEC / 2)), `tokens were refreshed (${successes})`);
  assert.ok(end.heapUsed - start.heapUsed < 16 * MiB, `heap grew ${mb(end.heapUsed - start.heapUsed)}`);
  if (CHECK_RSS) assert.ok(rssEnd - rssStart < 32 * MiB, `RSS grew ${mb(rssEnd - rssStart)}`);
});
