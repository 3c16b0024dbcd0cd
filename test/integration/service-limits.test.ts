// Consumers and Microsoft's service limits (design.md): callers over their own budget get 429 at once,
// the identity stays under Dataverse-like limits, upstream 429s pause the identity and replayable
// requests are replayed after the pause.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { test } from "node:test";
import type { SubjectLoad } from "../../src/demo/upstreams.ts";
import { metricValue, type Stack, startStack } from "../helpers/stack.ts";

const ERP_KEY = randomBytes(18).toString("base64url");
const REPORTING_KEY = randomBytes(18).toString("base64url");
const sha = (key: string) => createHash("sha256").update(key).digest("hex");

function yaml(options: { identityLimits: string; route?: string; erpRateLimit?: string }): string {
  return `listen: { host: 127.0.0.1 }
warmup: true
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
consumers:
  erp-nightly:
    apiKeys: [{ name: k2026, sha256: "${sha(ERP_KEY)}", expires: 2099-06-30 }]
${options.erpRateLimit ? `    rateLimit: ${options.erpRateLimit}\n` : ""}  reporting:
    apiKeys: [{ name: main, sha256: "${sha(REPORTING_KEY)}" }]
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
    limits: ${options.identityLimits}
routes:
  - prefix: /dataverse
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { consumers: [erp-nightly, reporting] }
${options.route ?? ""}`;
}

/** Polls `condition` until it holds; fails the test after 10 s instead of hanging. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function onlySubject(stack: Stack): SubjectLoad {
  const loads = [...stack.world.mocks.powerplatform.load.values()];
  assert.equal(loads.length, 1, "one identity, one token subject");
  return loads[0]!;
}

async function status(stack: Stack): Promise<{
  limits: { identities: Array<{ identity: string; queued: number; inFlight: number }> };
}> {
  return (await fetch(`${stack.proxy.adminUrl}/status.json`)).json() as never;
}

test("300 requests from 50 concurrent callers under Dataverse-like limits: 200, or 429 with Retry-After for callers past their own budget", async (t) => {
  const stack = await startStack(t, {
    yaml: yaml({
      // Dataverse's shape (52 concurrent, requests per window), the window scaled down to a second.
      identityLimits: "{ concurrent: 52, requests: 200, per: 1s, maxWaitMs: 20000 }",
      erpRateLimit: "{ requests: 20, per: 1m, burst: 20 }",
      route: "    retryThrottled: { maxWaitMs: 20000, attempts: 5 }\n",
    }),
  });
  const mock = stack.world.mocks.powerplatform;
  // Microsoft's budget for the identity is smaller than the proxy believes (another client shares it),
  // so the upstream answers 429 now and then and the proxy must pause.
  mock.serviceProtection = { requests: 60, perMs: 1000, concurrent: 52 };

  const results: Array<{
    consumer: string;
    status: number;
    retryAfter: string | null;
    policy: string | null;
  }> = [];
  const caller = async (i: number) => {
    const consumer = i < 10 ? "erp-nightly" : "reporting";
    for (let n = 0; n < 6; n++) {
      const res = await stack.call(`/dataverse/slow/20?caller=${i}`, {
        key: consumer === "erp-nightly" ? ERP_KEY : REPORTING_KEY,
      });
      await res.arrayBuffer();
      results.push({
        consumer,
        status: res.status,
        retryAfter: res.headers.get("retry-after"),
        policy: res.headers.get("ratelimit-policy"),
      });
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: 50 }, (_, i) => caller(i)));
  const elapsedMs = Date.now() - started;

  assert.equal(results.length, 300);
  const reporting = results.filter((r) => r.consumer === "reporting");
  const erp = results.filter((r) => r.consumer === "erp-nightly");
  assert.deepEqual(
    reporting.filter((r) => r.status !== 200),
    [],
    "callers within their budget all get 200",
  );
  const erpOk = erp.filter((r) => r.status === 200).length;
  // A burst of 20, refilled at 20 a minute during the few seconds the test runs.
  assert.ok(erpOk >= 20 && erpOk <= 22, `erp-nightly got ${erpOk} × 200`);
  for (const r of erp.filter((r) => r.status !== 200)) {
    assert.equal(r.status, 429);
    assert.ok(Number(r.retryAfter) >= 1, "Retry-After in whole seconds, at least 1");
    assert.equal(r.policy, '"caller";q=20;w=60');
  }

  const load = onlySubject(stack);
  assert.ok(load.maxInFlight <= 52, `the upstream saw at most 52 at once (saw ${load.maxInFlight})`);
  assert.ok(load.pauses.length >= 1, "the upstream did throttle the identity");
  // The proxy learns of a pause from the 429 that opens it; requests it dispatched before it read that
  // answer still arrive (at most the 52 in flight). Proxy, upstream and callers share one event loop
  // here, so those arrivals are stamped up to a few hundred ms late; nothing arrives in the second
  // half of a pause. (That the gate admits nothing during a pause and then one probe is proven with
  // an injected clock in test/unit/limits/identity-gate.test.ts.)
  for (const pause of load.pauses) {
    assert.ok(
      pause.arrivals.length <= 52,
      `at most the in-flight requests arrive in a pause (${pause.arrivals.length})`,
    );
    const late = pause.arrivals.filter((at) => at - pause.from >= (pause.until - pause.from) / 2);
    assert.deepEqual(late, [], "nothing arrives in the second half of a pause");
  }

  // Refused callers never reached the upstream: every upstream 200 is one the callers got.
  const upstream200 = mock.requests.filter((r) => r.status === 200).length;
  assert.equal(upstream200, 240 + erpOk);
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_rate_limited_total", {
      route: "/dataverse",
      consumer: "erp-nightly",
      limit: "consumer",
    }),
    60 - erpOk,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_throttled_total", { route: "/dataverse" }),
    load.throttled,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_requests_total", {
      route: "/dataverse",
      method: "GET",
      status: "200",
      consumer: "reporting",
    }),
    240,
  );
  assert.ok(
    metricValue(metrics, "entra_proxy_api_key_expiry_seconds", { consumer: "erp-nightly", key: "k2026" })! >
      0,
  );
  assert.ok(metrics.includes('entra_proxy_limit_wait_seconds_count{identity="platform-app"}'));
  t.diagnostic(
    `${elapsedMs} ms; 200: ${240 + erpOk}, 429 for erp-nightly's own budget: ${60 - erpOk}; upstream: max in flight ${load.maxInFlight}, ${load.throttled} × 429, ${load.pauses.length} pauses, arrivals in pauses ${load.pauses.map((p) => p.arrivals.map((a) => a - p.from).join("/")).join(" ")}`,
  );
});

test("a caller that disconnects while queued leaves the queue and is never sent upstream", async (t) => {
  const stack = await startStack(t, {
    yaml: yaml({ identityLimits: "{ concurrent: 1, maxWaitMs: 20000 }" }),
  });
  const mock = stack.world.mocks.powerplatform;
  const holder = stack.call("/dataverse/slow/3000", { key: REPORTING_KEY });
  let holderAnswered = false;
  holder.then(() => {
    holderAnswered = true;
  });
  // Wait until the slot is taken before queueing behind it.
  await until(() => mock.received === 1, "the first request holds the slot");
  const abort = new AbortController();
  const queued = stack.call("/dataverse/queued", { key: REPORTING_KEY, signal: abort.signal });
  queued.catch(() => {});
  const identityState = async () =>
    (await status(stack)).limits.identities.find((i) => i.identity === "platform-app")!;
  await until(async () => (await identityState()).queued === 1, "the second request is queued");
  abort.abort();
  await until(async () => (await identityState()).queued === 0, "the queue is empty again");
  assert.equal(holderAnswered, false, "the caller left the queue while the slot was still taken");
  const res = await holder;
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  // The slot is free again and the queue empty: a new request goes straight through.
  const next = await stack.call("/dataverse/next", { key: REPORTING_KEY });
  assert.equal(next.status, 200);
  await next.arrayBuffer();
  assert.deepEqual(
    mock.requests.map((r) => r.path),
    ["/slow/3000", "/next"],
    "the request that left the queue never reached the upstream",
  );
  assert.ok(stack.logs.some((l) => l.includes('"status":499') && l.includes("/dataverse/queued")));
});

test("retryThrottled replays a small POST after the pause; a 2 MiB POST is never replayed", async (t) => {
  const stack = await startStack(t, {
    yaml: yaml({
      identityLimits: "{ concurrent: 52, maxWaitMs: 0 }",
      route: "    retryThrottled: { maxWaitMs: 5000, attempts: 3 }\n",
    }),
  });
  const mock = stack.world.mocks.powerplatform;
  mock.serviceProtection = { requests: 1, perMs: 1000, concurrent: 52 };

  const first = await stack.call("/dataverse/first", { key: REPORTING_KEY });
  assert.equal(first.status, 200);
  await first.arrayBuffer();
  const small = await stack.call("/dataverse/small", {
    key: REPORTING_KEY,
    method: "POST",
    body: JSON.stringify({ name: "row" }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(small.status, 200, "the small POST was replayed after the pause");
  const echo = (await small.json()) as { bodyBytes: number };
  assert.equal(echo.bodyBytes, Buffer.byteLength(JSON.stringify({ name: "row" })));
  assert.deepEqual(
    mock.requests.filter((r) => r.path === "/small").map((r) => r.status),
    [429, 200],
  );

  // The GET spends the next window (it is replayed after its own pause); the 2 MiB POST then gets the
  // upstream's 429, which passes through unchanged.
  const spend = await stack.call("/dataverse/spend", { key: REPORTING_KEY });
  assert.equal(spend.status, 200);
  await spend.arrayBuffer();
  const big = await stack.call("/dataverse/big", {
    key: REPORTING_KEY,
    method: "POST",
    body: Buffer.alloc(2 * 1024 * 1024, 1),
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(big.status, 429);
  assert.ok(Number(big.headers.get("retry-after")) >= 1);
  const body = (await big.json()) as { error: { code: string } };
  assert.equal(body.error.code, "0x80072322", "the upstream's own 429 body");
  assert.equal(mock.requests.filter((r) => r.path === "/big").length, 1, "the 2 MiB POST was sent once");
});

test("an upstream 429 pauses the identity: the next request is refused without reaching the upstream; /status shows the pause and budgets", async (t) => {
  const stack = await startStack(t, {
    yaml: yaml({
      identityLimits: "{ concurrent: 52, maxWaitMs: 0 }",
      erpRateLimit: "{ requests: 10, per: 1m, burst: 2 }",
    }),
  });
  const mock = stack.world.mocks.powerplatform;
  const throttled = await stack.call("/dataverse/status/429", { key: ERP_KEY });
  assert.equal(throttled.status, 429, "the upstream's 429 passes through");
  assert.equal(throttled.headers.get("retry-after"), "7");
  await throttled.arrayBuffer();

  const refused = await stack.call("/dataverse/after", { key: REPORTING_KEY });
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get("retry-after")) >= 6);
  assert.equal(((await refused.json()) as { code: string }).code, "rate_limited");
  assert.equal(mock.requests.filter((r) => r.path === "/after").length, 0, "never sent upstream");

  const json = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as {
    limits: {
      consumers: Array<{ name: string; routes: string[] }>;
      callers: Array<{ caller: string; remaining: number }>;
      identities: Array<{ identity: string; pauses: Array<{ host: string; remainingSeconds: number }> }>;
    };
  };
  assert.deepEqual(
    json.limits.consumers.map((c) => [c.name, c.routes]),
    [
      ["erp-nightly", ["/dataverse"]],
      ["reporting", ["/dataverse"]],
    ],
  );
  assert.deepEqual(
    json.limits.callers.map((c) => [c.caller, c.remaining]),
    [["erp-nightly", 1]],
  );
  const pauses = json.limits.identities.find((i) => i.identity === "platform-app")!.pauses;
  assert.equal(pauses.length, 1);
  assert.equal(pauses[0]!.host, new URL(mock.url).host);
  assert.ok(pauses[0]!.remainingSeconds >= 6 && pauses[0]!.remainingSeconds <= 7);
  const html = await (await fetch(`${stack.proxy.adminUrl}/status`)).text();
  assert.match(html, /erp-nightly/);
  assert.match(html, /1\/2 left/);
  assert.match(html, new RegExp(`${new URL(mock.url).host} until`));
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_rate_limited_total", {
      route: "/dataverse",
      consumer: "reporting",
      limit: "upstream_pause",
    }),
    1,
  );
});

test("no room under the identity's limits within maxWaitMs: 429 rate_limited with Retry-After, never sent upstream", async (t) => {
  const stack = await startStack(t, {
    yaml: yaml({ identityLimits: "{ concurrent: 1, requests: 100, per: 1m, maxWaitMs: 200 }" }),
  });
  const mock = stack.world.mocks.powerplatform;
  const holder = stack.call("/dataverse/slow/1500", { key: REPORTING_KEY });
  await until(() => mock.received === 1, "the first request holds the slot");
  const refused = await stack.call("/dataverse/too-late", { key: ERP_KEY });
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get("retry-after")) >= 1);
  assert.equal(refused.headers.get("ratelimit-policy"), '"identity";q=100;w=60');
  assert.equal(((await refused.json()) as { code: string }).code, "rate_limited");
  const held = await holder;
  assert.equal(held.status, 200);
  await held.arrayBuffer();
  assert.equal(mock.requests.filter((r) => r.path === "/too-late").length, 0);
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_rate_limited_total", {
      route: "/dataverse",
      consumer: "erp-nightly",
      limit: "identity",
    }),
    1,
  );
});
