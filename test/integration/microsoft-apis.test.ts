// Each service behaves through the proxy the way its real API does: flows at stable URLs with pinned
// queries and polling, async operation headers, nextLink rewriting, LCS regional audiences.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_APP, DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { MockUpstream } from "../../src/demo/upstreams.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

interface Echo {
  path: string;
  query: string;
  method: string;
  token: { aud: string };
}

test("flow: stable URL → trigger, the trigger's query wins, extra caller params pass, relative path appended", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/flows/order-created/orders/42?api-version=2099-01-01&batch=7", {
    method: "POST",
    body: JSON.stringify({ orderId: 42 }),
    headers: { "content-type": "application/json" },
  });
  assert.equal(res.status, 200);
  const echo = (await res.json()) as Echo;
  assert.match(
    echo.path,
    /\/powerautomate\/automations\/direct\/workflows\/\w+\/triggers\/manual\/paths\/invoke\/orders\/42$/,
  );
  assert.deepEqual(
    [...new URLSearchParams(echo.query)],
    [
      ["batch", "7"],
      ["api-version", "1"],
    ],
  );
  assert.equal(echo.token.aud, "https://service.flow.microsoft.com/");
  const get = await stack.call("/flows/order-created", { method: "PUT" });
  assert.equal(get.status, 405);
  await get.arrayBuffer();
});

test("flow: 202 Accepted + Location is rewritten so the client polls through the proxy, with a token", async (t) => {
  const stack = await startStack(t);
  const accepted = await stack.call("/flows/order-created/async", { method: "POST", body: "{}" });
  assert.equal(accepted.status, 202);
  assert.equal(accepted.headers.get("retry-after"), "1");
  const location = accepted.headers.get("location") ?? "";
  await accepted.arrayBuffer();
  assert.ok(
    location.startsWith(`${stack.proxy.proxyUrl}/flows/order-created/_workflow/runs/`),
    `Location points at the proxy: ${location}`,
  );
  const poll = await fetch(location, { headers: { "x-api-key": stack.world.secrets.apiKey } });
  assert.equal(poll.status, 200);
  assert.deepEqual(await poll.json(), { id: "123", status: "Succeeded" });
  const seen = stack.world.mocks.flow.requests.at(-1)!;
  assert.match(seen.path, /\/workflows\/\w+\/runs\/\d+\/operations\/123$/);
  assert.equal(seen.claims?.aud, "https://service.flow.microsoft.com/", "the poll carried the flow token");
});

test('flow: "specific users" — the object-id allowlist is honoured', async (t) => {
  const stack = await startStack(t);
  stack.world.mocks.flow.allowedObjectIds = ["00000000-0000-0000-0000-00000000beef"];
  const denied = await stack.call("/flows/order-created", { method: "POST", body: "{}" });
  assert.equal(denied.status, 403);
  assert.match(await denied.text(), /MisMatchingOAuthClaims/);
  stack.world.mocks.flow.allowedObjectIds = [DEMO_APP.objectId];
  const allowed = await stack.call("/flows/order-created", { method: "POST", body: "{}" });
  assert.equal(allowed.status, 200);
  await allowed.arrayBuffer();
});

test("Power Platform: Location, Operation-Location and Azure-AsyncOperation are rewritten to the proxy", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call(
    "/powerplatform/environmentmanagement/environments/e1/async?api-version=2022-03-01-preview",
    {
      method: "POST",
      body: "{}",
    },
  );
  assert.equal(res.status, 202);
  await res.arrayBuffer();
  const expected = `${stack.proxy.proxyUrl}/powerplatform/environmentmanagement/environments/e1/operations/123`;
  for (const name of ["location", "operation-location", "azure-asyncoperation"]) {
    assert.equal(res.headers.get(name), expected, name);
  }
  const poll = await fetch(expected, { headers: { "x-api-key": stack.world.secrets.apiKey } });
  assert.equal(poll.status, 200);
  await poll.arrayBuffer();
});

test("publicUrl wins for rewritten URLs; api-version is passed as sent", async (t) => {
  const yaml = DEMO_ROUTES_YAML.replace(
    "  adminPort: 9090\n",
    "  adminPort: 9090\n  publicUrl: https://proxy.contoso.example\n",
  );
  const stack = await startStack(t, { yaml });
  const res = await stack.call("/powerplatform/x/async?api-version=2022-03-01-preview");
  assert.equal(res.headers.get("location"), "https://proxy.contoso.example/powerplatform/x/operations/123");
  const echo = (await res.json()) as Echo;
  assert.equal(echo.query, "api-version=2022-03-01-preview");
});

test("rewriteLinks: @odata.nextLink / nextLink follow through the proxy when on, untouched when off", async (t) => {
  const yaml = DEMO_ROUTES_YAML.replace(
    "    upstream: ${POWERAPPS_UPSTREAM}\n",
    "    upstream: ${POWERAPPS_UPSTREAM}\n    rewriteLinks: true\n",
  );
  const stack = await startStack(t, { yaml });
  let url: string | undefined = `${stack.proxy.proxyUrl}/powerapps/apps/paged`;
  const ids: string[] = [];
  while (url) {
    const res = await fetch(url, { headers: { "x-api-key": stack.world.secrets.apiKey } });
    assert.equal(res.status, 200);
    const page = (await res.json()) as {
      value: Array<{ id: string }>;
      "@odata.nextLink"?: string;
      nextLink?: string;
    };
    ids.push(...page.value.map((v) => v.id));
    if (page["@odata.nextLink"]) {
      assert.ok(
        page["@odata.nextLink"].startsWith(`${stack.proxy.proxyUrl}/powerapps/`),
        page["@odata.nextLink"],
      );
      assert.equal(page.nextLink, page["@odata.nextLink"]);
    }
    url = page["@odata.nextLink"];
  }
  assert.deepEqual(ids, ["powerapps-1", "powerapps-2", "powerapps-3"]);
  const off = (await (await stack.call("/powerplatform/apps/paged")).json()) as { "@odata.nextLink": string };
  assert.ok(off["@odata.nextLink"].startsWith(stack.world.mocks.powerplatform.url), "not rewritten when off");
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_link_rewrites_total", { route: "/powerapps", result: "rewritten" }),
    2,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_link_rewrites_total", { route: "/powerapps", result: "unchanged" }),
    1,
  );
});

test("LCS regional route: the token's audience matches the regional host; a global token is refused there", async (t) => {
  const yaml = `${DEMO_ROUTES_YAML}  - prefix: /lcs-eu
    service: lcs
    region: eu
    upstream: \${LCS_EU_UPSTREAM}
    identity: lcs-user
    access: { anonymous: true }
  - prefix: /lcs-eu-wrong-scope
    service: lcs
    upstream: \${LCS_EU_UPSTREAM}
    identity: lcs-user
    access: { anonymous: true }
`;
  const stack = await startStack(t, {
    yaml,
    async prepare(world) {
      const eu = await MockUpstream.start({
        name: "lcs-eu",
        audience: "https://lcsapi.eu.lcs.dynamics.com/",
        jwks: world.emulator.publicJwks(),
      });
      t.after(() => eu.close());
      return { LCS_EU_UPSTREAM: eu.url };
    },
  });
  const ok = await stack.call("/lcs-eu/databasemovement/v1/jobs", { key: false });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as Echo).token.aud, "https://lcsapi.eu.lcs.dynamics.com/");
  const wrong = await stack.call("/lcs-eu-wrong-scope/databasemovement/v1/jobs", { key: false });
  assert.equal(wrong.status, 401, "the EU instance refuses a token for the global LCS audience");
  await wrong.arrayBuffer();
});
