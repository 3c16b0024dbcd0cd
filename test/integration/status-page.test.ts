// /status.json and /status: per-route request and 5xx counts, API keys by name with their expiry
// (never their hashes), and long upstream URLs that wrap instead of widening the page.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

interface Status {
  routes: Array<{ prefix: string; requests: number; serverErrors: number }>;
  apiKeys: Array<{ route: string; name: string; expiresAt?: string; expiresInDays?: number }>;
}

test("status: requests and 5xx per route; API key names with their expiry, never a hash", async (t) => {
  // Valid through the day ten days from today (UTC), so it stops working at the midnight after:
  // expiresInDays is 11 at any time of today.
  const today = Date.parse(new Date().toISOString().slice(0, 10));
  const day = new Date(today + 10 * 86_400_000).toISOString().slice(0, 10);
  const expires = new Date(today + 11 * 86_400_000);
  const yaml = DEMO_ROUTES_YAML.replace(
    'access: { apiKeys: [{ name: demo, sha256: "${DEMO_API_KEY_SHA256}" }] }',
    `access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}", expires: ${day} }] }`,
  );
  assert.notEqual(yaml, DEMO_ROUTES_YAML);
  const stack = await startStack(t, { yaml });
  for (const path of ["/powerplatform/environments", "/powerplatform/environments", "/lcs/status/502"]) {
    await (await stack.call(path)).arrayBuffer();
  }
  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as Status;
  const route = (prefix: string) => status.routes.find((r) => r.prefix === prefix);
  assert.deepEqual([route("/powerplatform")?.requests, route("/powerplatform")?.serverErrors], [2, 0]);
  assert.deepEqual([route("/lcs")?.requests, route("/lcs")?.serverErrors], [1, 1]);
  assert.deepEqual([route("/powerapps")?.requests, route("/powerapps")?.serverErrors], [0, 0]);
  assert.deepEqual(status.apiKeys[0], {
    route: "/powerplatform",
    name: "demo",
    expiresAt: expires.toISOString(),
    expiresInDays: 11,
  });
  assert.deepEqual(
    status.apiKeys.map((k) => k.route),
    ["/powerplatform", "/powerapps", "/flows/order-created", "/lcs"],
  );

  const html = await (await fetch(`${stack.proxy.adminUrl}/status`)).text();
  assert.match(html, /<th>Requests<\/th><th>5xx<\/th>/);
  assert.ok(
    html.includes(
      `<td>demo</td><td><span class="warn">${expires.toISOString().slice(0, 10)} 00:00 UTC (in 11 days)</span></td>`,
    ),
    "key name and expiry",
  );
  assert.match(html, /\.url\{overflow-wrap:anywhere\}/);
  assert.match(html, /<span class="url">http:\/\/127\.0\.0\.1:\d+<\/span>/, "upstreams may wrap anywhere");
  const hash = stack.world.env.DEMO_API_KEY_SHA256?.replace(/^sha256:/, "") ?? "";
  assert.ok(hash.length === 64 && !html.includes(hash), "no key hash on the page");
  assert.ok(!JSON.stringify(status).includes(hash), "no key hash in status.json");
});
