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
  entra_proxy_requests_total: { type: "COUNTER", labels: ["consumer", "method", "route", "status"] },
  entra_proxy_request_duration_seconds: { type: "HISTOGRAM", labels: ["route"] },
  entra_proxy_upstream_errors_total: { type: "COUNTER", labels: ["code", "route"] },
  entra_proxy_access_denied_total: { type: "COUNTER", labels: ["reason", "route"] },
  entra_proxy_build_info: { type: "GAUGE", labels: ["node", "version"] },
  entra_proxy_config_last_reload_success_timestamp_seconds: { type: "GAUGE", labels: [] },
  entra_proxy_in_flight_requests: { type: "GAUGE", labels: ["route"] },
  entra_proxy_rate_limited_total: { type: "COUNTER", labels: ["consumer", "limit", "route"] },
  entra_proxy_upstream_throttled_total: { type: "COUNTER", labels: ["route"] },
  entra_proxy_limit_wait_seconds: { type: "HISTOGRAM", labels: ["identity"] },
  entra_proxy_api_key_expiry_seconds: { type: "GAUGE", labels: ["consumer", "key"] },
};
/** Families that the demo stack (no limits, no key with an expiry) leaves without samples. */
const MAY_BE_EMPTY = new Set([
  "entra_proxy_upstream_errors_total",
  "entra_proxy_rate_limited_total",
  "entra_proxy_upstream_throttled_total",
  "entra_proxy_limit_wait_seconds",
  "entra_proxy_api_key_expiry_seconds",
]);

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
    if (!MAY_BE_EMPTY.has(name)) assert.ok(sets.length > 0, `${name} has samples`);
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

test("the in-flight count per route is in /metrics and /status.json while requests run, and back to 0 after", async (t) => {
  const stack = await startStack(t);
  const slow = [0, 1, 2].map(() => stack.call("/powerplatform/slow/700").then((r) => r.arrayBuffer()));
  const upstream = stack.world.mocks.powerplatform;
  while (upstream.received < 3) await new Promise((r) => setTimeout(r, 10));
  const during = parseMetrics(await stack.metrics());
  const sample = (p: typeof during) =>
    p.samples.find((s) => s.name === "entra_proxy_in_flight_requests" && s.labels.route === "/powerplatform");
  assert.equal(sample(during)?.value, 3);
  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as {
    routes: Array<{ prefix: string; inFlight: number }>;
  };
  assert.equal(status.routes.find((r) => r.prefix === "/powerplatform")?.inFlight, 3);
  await Promise.all(slow);
  // The counts drop when each response closes, which the caller may see a moment before.
  let after = sample(parseMetrics(await stack.metrics()))?.value;
  for (let i = 0; i < 50 && after !== 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    after = sample(parseMetrics(await stack.metrics()))?.value;
  }
  assert.equal(after, 0);
});

test("a key with an expiry date has entra_proxy_api_key_expiry_seconds, labelled by consumer and key name", async (t) => {
  const { DEMO_ROUTES_YAML } = await import("../../src/demo/stack.ts");
  const yaml = DEMO_ROUTES_YAML.replace(
    '  - prefix: /powerplatform\n    service: powerplatform\n    upstream: ${POWERPLATFORM_UPSTREAM}\n    identity: platform-app\n    access: { apiKeys: [{ name: demo, sha256: "${DEMO_API_KEY_SHA256}" }] }',
    '  - prefix: /powerplatform\n    service: powerplatform\n    upstream: ${POWERPLATFORM_UPSTREAM}\n    identity: platform-app\n    access: { apiKeys: [{ name: demo, sha256: "${DEMO_API_KEY_SHA256}", expires: 2099-12-31 }] }',
  );
  assert.notEqual(yaml, DEMO_ROUTES_YAML, "the demo route was given an expiry");
  const stack = await startStack(t, { yaml });
  const parsed = parseMetrics(await stack.metrics());
  const samples = parsed.samples.filter((s) => s.name === "entra_proxy_api_key_expiry_seconds");
  assert.deepEqual(
    samples.map((s) => s.labels),
    [{ consumer: "demo", key: "demo" }],
  );
  assert.ok(samples[0]!.value > 60 * 60 * 24 * 365, "seconds until the end of 2099-12-31");
});
