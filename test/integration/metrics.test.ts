// /metrics as Prometheus sees it: exact names, types and label sets, and a series count that does
// not grow with the number of distinct paths callers use.
import assert from "node:assert/strict";
import { test } from "node:test";
import { labelSets, parseMetrics } from "../helpers/prometheus.ts";
import { startStack } from "../helpers/stack.ts";

const DESIGN: Record<string, { type: string; labels: string[] }> = {
  entra_proxy_token_refreshes_total: {
    type: "COUNTER",
    labels: ["error", "identity", "result", "scope", "trigger"],
  },
  entra_proxy_token_refresh_duration_seconds: { type: "HISTOGRAM", labels: ["identity", "scope"] },
  entra_proxy_token_expiry_seconds: { type: "GAUGE", labels: ["identity", "scope"] },
  entra_proxy_upstream_401_total: { type: "COUNTER", labels: ["route"] },
  entra_proxy_requests_total: { type: "COUNTER", labels: ["method", "route", "status"] },
  entra_proxy_request_duration_seconds: { type: "HISTOGRAM", labels: ["route"] },
  entra_proxy_upstream_errors_total: { type: "COUNTER", labels: ["code", "route"] },
  entra_proxy_access_denied_total: { type: "COUNTER", labels: ["reason", "route"] },
};

test("every metric of the design exists with its exact type and label set; default process metrics too", async (t) => {
  const stack = await startStack(t);
  // Produce a sample of every family: success, denial, upstream 401, proxy error.
  for (const [path, key] of [
    ["/powerplatform/x", undefined],
    ["/powerplatform/x", "wrong"],
    ["/powerplatform/always401", undefined],
    ["/powerapps/slow/10", undefined],
  ] as const) {
    const res = await stack.call(path, key ? { key } : {});
    await res.arrayBuffer();
  }
  const deadRoute = await stack.call("/lcs/status/502");
  await deadRoute.arrayBuffer();
  const parsed = parseMetrics(await stack.metrics());
  for (const [name, spec] of Object.entries(DESIGN)) {
    const family = parsed.families.get(name);
    assert.ok(family, `${name} is exported`);
    assert.equal(family.type, spec.type, `${name} type`);
    const sets = labelSets(parsed, name);
    if (name !== "entra_proxy_upstream_errors_total") assert.ok(sets.length > 0, `${name} has samples`);
    for (const labels of sets) assert.deepEqual(labels, spec.labels, `${name} labels`);
  }
  for (const name of [
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "nodejs_eventloop_lag_seconds",
  ]) {
    assert.ok(parsed.families.has(name), `default metric ${name}`);
  }
});

test("10,000 requests to distinct paths do not grow the number of series", async (t) => {
  const stack = await startStack(t);
  const paths = (i: number) => [
    `/powerplatform/items/${i}?filter=${i}`,
    `/unrouted/${i}`,
    `/powerapps/apps/${i}`,
  ];
  // Warm-up: one request of each kind creates every series it will ever need.
  for (const p of paths(-1)) {
    await (await stack.call(p)).arrayBuffer();
    await (await stack.call(p, { key: "wrong" })).arrayBuffer();
  }
  const initial = parseMetrics(await stack.metrics()).samples;
  const before = {
    all: initial.length,
    ours: initial.filter((x) => x.name.startsWith("entra_proxy_")).length,
  };
  let sent = 0;
  const total = 10_000;
  const workers = Array.from({ length: 20 }, async () => {
    while (sent < total) {
      const i = sent++;
      const path = paths(i)[i % 3]!;
      const res = await stack.call(path, i % 7 === 0 ? { key: `wrong-${i}` } : {});
      await res.arrayBuffer();
    }
  });
  await Promise.all(workers);
  const { samples } = parseMetrics(await stack.metrics());
  const ours = samples.filter((x) => x.name.startsWith("entra_proxy_"));
  t.diagnostic(
    `series before: ${before.all} (entra_proxy_*: ${before.ours}); after 10,000 requests to distinct paths: ${samples.length} (entra_proxy_*: ${ours.length})`,
  );
  const key = (x: { name: string; labels: Record<string, string> }) => `${x.name}${JSON.stringify(x.labels)}`;
  const known = new Set(initial.map(key));
  assert.deepEqual(
    ours.filter((x) => !known.has(key(x))).map(key),
    [],
    "the proxy's own series did not grow",
  );
  // Default process metrics may add bounded series (a new GC kind's histogram, a handle type) —
  // never one per path or caller.
  const added = samples.filter((x) => !known.has(key(x)));
  const addedFamilies = [...new Set(added.map((x) => x.name.replace(/_(bucket|sum|count)$/, "")))];
  t.diagnostic(`new series came only from: ${addedFamilies.join(", ") || "nothing"}`);
  assert.ok(
    addedFamilies.every((n) => n.startsWith("nodejs_") || n.startsWith("process_")),
    addedFamilies.join(", "),
  );
  const text = JSON.stringify(ours);
  assert.ok(!/items\/\d|unrouted\/\d|wrong-\d/.test(text), "no path or credential in any label");
});
