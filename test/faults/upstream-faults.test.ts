// Upstreams misbehaving: refused, reset mid-body, slow headers, a 401 storm, throttling.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

/** A hostile upstream: /reset sends half a body then drops; /hang sends nothing; /never-ends trickles. */
async function brokenUpstream(t: { after(fn: () => void): void }): Promise<string> {
  const server: Server = createServer((req, res) => {
    if (req.url?.endsWith("/reset")) {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      res.write('{"value":[');
      setTimeout(() => res.socket?.destroy(), 50);
    } else if (req.url?.endsWith("/hang")) {
      // headers never come
    } else {
      res.end("{}");
    }
  }).listen(0, "127.0.0.1");
  await new Promise((r) => server.once("listening", r));
  t.after(() => server.closeAllConnections());
  t.after(() => server.close());
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test("upstream faults: refused → 502, reset mid-body → broken response, no headers → 504", async (t) => {
  const broken = await brokenUpstream(t);
  const yaml = `${DEMO_ROUTES_YAML}  - prefix: /broken
    upstream: ${broken}
    scope: https://api.powerplatform.com/.default
    identity: platform-app
    timeoutMs: 500
    access: { anonymous: true }
  - prefix: /refused
    upstream: http://127.0.0.1:9
    scope: https://api.powerplatform.com/.default
    identity: platform-app
    access: { anonymous: true }
`;
  const stack = await startStack(t, { yaml });
  const refused = await stack.call("/refused/x");
  assert.equal(refused.status, 502);
  assert.equal(((await refused.json()) as { code: string }).code, "upstream_unreachable");

  // Headers were already sent when the upstream died: the caller must see a truncated, failed
  // response — never a short body that looks complete.
  const reset = await stack.call("/broken/reset");
  assert.equal(reset.status, 200);
  await assert.rejects(reset.text(), "the body read fails");

  const started = Date.now();
  const hang = await stack.call("/broken/hang");
  assert.equal(hang.status, 504);
  assert.equal(((await hang.json()) as { code: string }).code, "upstream_timeout");
  assert.ok(Date.now() - started < 2_000);

  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_errors_total", {
      route: "/refused",
      code: "upstream_unreachable",
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_errors_total", { route: "/broken", code: "upstream_timeout" }),
    1,
  );
  // The proxy still serves normally afterwards.
  const ok = await stack.call("/powerplatform/x");
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
});

test("a 401 storm (an upstream refusing every token) does not become a token-request storm", async (t) => {
  const stack = await startStack(t);
  // Let the warm-up (one token per identity and scope) finish first.
  for (let i = 0; i < 50 && (await fetch(`${stack.proxy.adminUrl}/readyz`)).status !== 200; i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const before = stack.world.emulator.tokenRequests.length;
  for (let round = 0; round < 5; round++) {
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const r = await stack.call("/powerplatform/always401");
        assert.equal(r.status, 401);
        await r.arrayBuffer();
      }),
    );
  }
  const tokenRequests = stack.world.emulator.tokenRequests.length - before;
  t.diagnostic(`200 requests answered 401 by the upstream → ${tokenRequests} token request(s)`);
  assert.ok(tokenRequests <= 1, `${tokenRequests} token requests`);
});

test("upstream 429 and 503 with Retry-After pass through unchanged", async (t) => {
  // One proxy each: the first answer pauses the identity for that host (design.md, service limits).
  for (const status of [429, 503]) {
    const stack = await startStack(t);
    const res = await stack.call(`/powerapps/status/${status}`);
    assert.equal(res.status, status);
    assert.equal(res.headers.get("retry-after"), "7");
    assert.match(await res.text(), new RegExp(`Http${status}`));
  }
});
