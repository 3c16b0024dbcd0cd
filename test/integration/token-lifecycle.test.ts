import assert from "node:assert/strict";
import { test } from "node:test";
import { metricValue, startStack } from "../helpers/stack.ts";

const COLD = (yaml: string) => yaml.replace("warmup: true", "warmup: false");
const clientCredentialRequests = (log: Array<{ grantType: string }>) =>
  log.filter((r) => r.grantType === "client_credentials").length;

test("200 concurrent requests on a cold cache cause exactly 1 token request", async (t) => {
  const { DEMO_ROUTES_YAML } = await import("../../src/demo/stack.ts");
  const stack = await startStack(t, { yaml: COLD(DEMO_ROUTES_YAML) });
  assert.equal(clientCredentialRequests(stack.world.emulator.tokenRequests), 0);
  const responses = await Promise.all(
    Array.from({ length: 200 }, (_, i) =>
      stack.call(`/powerplatform/items/${i}`).then(async (r) => {
        await r.arrayBuffer();
        return r.status;
      }),
    ),
  );
  assert.deepEqual(new Set(responses), new Set([200]));
  assert.equal(clientCredentialRequests(stack.world.emulator.tokenRequests), 1);
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_token_refreshes_total", {
      identity: "platform-app",
      scope: "https://api.powerplatform.com/.default",
      result: "success",
      trigger: "initial",
      error: "",
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_requests_total", {
      route: "/powerplatform",
      method: "GET",
      status: "200",
    }),
    200,
  );
});

test("a token near expiry is refreshed once, and an expired token is never sent", async (t) => {
  // 4 s tokens: refreshed when 2 s remain. The mock upstream rejects expired tokens with 401.
  const { DEMO_ROUTES_YAML } = await import("../../src/demo/stack.ts");
  const stack = await startStack(t, { yaml: COLD(DEMO_ROUTES_YAML), tokenLifetimeSec: 4 });
  const statuses: number[] = [];
  const deadline = Date.now() + 3_000;
  while (Date.now() < deadline) {
    const r = await stack.call("/powerplatform/x");
    await r.arrayBuffer();
    statuses.push(r.status);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.ok(statuses.length > 20);
  assert.deepEqual(
    new Set(statuses),
    new Set([200]),
    "no request reached the upstream with an expired token",
  );
  assert.equal(
    clientCredentialRequests(stack.world.emulator.tokenRequests),
    2,
    "initial + one proactive refresh",
  );
  const metrics = await stack.metrics();
  const proactive = metricValue(metrics, "entra_proxy_token_refreshes_total", {
    identity: "platform-app",
    scope: "https://api.powerplatform.com/.default",
    result: "success",
    trigger: "proactive",
    error: "",
  });
  assert.equal(proactive, 1);
  const expiry = metricValue(metrics, "entra_proxy_token_expiry_seconds", {
    identity: "platform-app",
    scope: "https://api.powerplatform.com/.default",
  });
  assert.ok(expiry !== undefined && expiry > 0 && expiry <= 4, `expiry gauge ${expiry}`);
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/powerplatform" }),
    undefined,
  );
});

test("a wrong client secret gives 503 token_unavailable naming AADSTS7000215, and the secret is never logged", async (t) => {
  const wrongSecret = "wrong~S3cretValueThatMustNotAppear";
  const stack = await startStack(t, { env: { CLIENT_SECRET: wrongSecret } });
  const res = await stack.call("/powerplatform/x");
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  assert.match(res.headers.get("retry-after") ?? "", /^\d+$/);
  const body = (await res.json()) as Record<string, string>;
  assert.equal(body.code, "token_unavailable");
  assert.equal(body.type, "urn:entra-auth-proxy:token_unavailable");
  assert.equal(body.aadsts, "AADSTS7000215");
  assert.match(body.hint ?? "", /secret/i);
  assert.match(body.detail ?? "", /AADSTS7000215/);
  assert.equal(body.requestId, res.headers.get("x-request-id"));
  const all = stack.logs.join("\n") + JSON.stringify(body) + (await stack.metrics());
  assert.ok(!all.includes(wrongSecret), "secret must not appear in logs, body or metrics");
  assert.ok(!all.includes(stack.world.secrets.apiKey), "API key must not appear either");
  assert.ok(
    stack.logs.some((l) => l.includes('"aadsts":"AADSTS7000215"')),
    "the token log line names the code",
  );
  // A broken identity does not fail readiness (design.md "Admin port"); the verbose form names it.
  const ready = await fetch(`${stack.proxy.adminUrl}/readyz?verbose`);
  assert.equal(ready.status, 200);
  assert.match(await ready.text(), /AADSTS7000215/);
});
