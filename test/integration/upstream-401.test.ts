// Upstream 401: the token is renewed (single-flight) and a replayable request retried once.
import assert from "node:assert/strict";
import { test } from "node:test";
import { metricValue, startStack } from "../helpers/stack.ts";

const PP = { identity: "platform-app", scope: "https://api.powerplatform.com/.default" };
const renewals = (metrics: string) =>
  metricValue(metrics, "entra_proxy_token_refreshes_total", {
    ...PP,
    result: "success",
    trigger: "upstream_401",
    error: "",
  }) ?? 0;

test("a GET refused with 401 (revoked token) is retried once with a new token and the caller sees 200", async (t) => {
  const stack = await startStack(t);
  const warm = await stack.call("/powerplatform/x");
  await warm.arrayBuffer();
  stack.world.mocks.powerplatform.revokeSeenTokens();
  const res = await stack.call("/powerplatform/after-revocation");
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const requests = stack.world.mocks.powerplatform.requests.filter((r) =>
    r.path.endsWith("/after-revocation"),
  );
  assert.deepEqual(
    requests.map((r) => r.status),
    [401, 200],
  );
  const metrics = await stack.metrics();
  assert.equal(metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/powerplatform" }), 1);
  assert.equal(renewals(metrics), 1);
  assert.ok(
    stack.logs.some((l) => l.includes('"retried":true')),
    "the request log line says it was retried",
  );
});

test("a small POST body (≤ 64 KiB) is replayed byte for byte", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  stack.world.mocks.powerplatform.revokeSeenTokens();
  const body = JSON.stringify({ rows: Array.from({ length: 1000 }, (_, i) => ({ i, name: `row-${i}` })) });
  assert.ok(body.length > 16_000 && body.length <= 64 * 1024);
  const res = await stack.call("/powerplatform/import", {
    method: "POST",
    body,
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200);
  const echo = (await res.json()) as { bodyBytes: number; bodySha256: string };
  const { createHash } = await import("node:crypto");
  assert.equal(echo.bodyBytes, Buffer.byteLength(body));
  assert.equal(echo.bodySha256, createHash("sha256").update(body).digest("hex"));
});

test("a 2 MiB POST refused with 401 is not retried: the caller gets the 401", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  stack.world.mocks.powerplatform.revokeSeenTokens();
  const res = await stack.call("/powerplatform/big", {
    method: "POST",
    body: Buffer.alloc(2 * 1024 * 1024, 1),
    headers: { "content-type": "application/octet-stream" },
  });
  assert.equal(res.status, 401);
  assert.match(res.headers.get("www-authenticate") ?? "", /invalid_token/);
  await res.arrayBuffer();
  assert.equal(stack.world.mocks.powerplatform.requests.filter((r) => r.path.endsWith("/big")).length, 1);
  // The token is still renewed, so the next request works.
  await new Promise((r) => setTimeout(r, 100));
  const next = await stack.call("/powerplatform/next");
  assert.equal(next.status, 200);
  await next.arrayBuffer();
});

test("a second 401 is not retried again, and 100 concurrent 401s cause one token request", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  const before = stack.world.emulator.tokenRequests.filter(
    (r) => r.grantType === "client_credentials",
  ).length;
  const statuses = await Promise.all(
    Array.from({ length: 100 }, async () => {
      const r = await stack.call("/powerplatform/always401");
      await r.arrayBuffer();
      return r.status;
    }),
  );
  assert.deepEqual(new Set(statuses), new Set([401]));
  const after = stack.world.emulator.tokenRequests.filter((r) => r.grantType === "client_credentials").length;
  assert.equal(after - before, 1, "one renewal for the whole burst");
  const upstreamCalls = stack.world.mocks.powerplatform.requests.filter((r) =>
    r.path.endsWith("/always401"),
  ).length;
  assert.ok(
    upstreamCalls >= 100 && upstreamCalls <= 200,
    `each request tried at most twice (${upstreamCalls})`,
  );
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/powerplatform" }),
    upstreamCalls,
  );
  assert.equal(renewals(metrics), 1);
});

test("alternating an always-401 path with a healthy one renews the token at most once per 30 s", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  const tokenRequests = () =>
    stack.world.emulator.tokenRequests.filter((r) => r.grantType === "client_credentials").length;
  const before = tokenRequests();
  const started = Date.now();
  for (let i = 0; i < 25; i++) {
    const refused = await stack.call("/powerplatform/always401");
    assert.equal(refused.status, 401);
    await refused.arrayBuffer();
    const healthy = await stack.call("/powerplatform/healthy");
    assert.equal(healthy.status, 200);
    await healthy.arrayBuffer();
  }
  const elapsedMs = Date.now() - started;
  assert.ok(elapsedMs < 30_000, `the 50 calls fit in one 30 s window (${elapsedMs} ms)`);
  const metrics = await stack.metrics();
  const byRejection = ["success", "failure"].reduce(
    (sum, result) =>
      sum +
      (metricValue(metrics, "entra_proxy_token_refreshes_total", {
        ...PP,
        result,
        trigger: "upstream_401",
      }) ?? 0),
    0,
  );
  assert.equal(byRejection, 1, "one renewal caused by 401s in 30 s");
  assert.equal(tokenRequests() - before, 1, "one token request reached the IdP");
});
