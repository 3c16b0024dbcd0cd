// A request through each of the four service presets reaches its mock API with a valid token for
// that API's audience, and the caller's own credentials never reach Microsoft.
import assert from "node:assert/strict";
import { test } from "node:test";
import { startStack } from "../helpers/stack.ts";

interface Echo {
  service: string;
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  bodyBytes: number;
  token: { aud: string; tid: string; appid: string; oid: string };
}

test("each preset forwards with a token for its own audience and strips caller credentials", async (t) => {
  const stack = await startStack(t);
  const cases = [
    {
      path: "/powerplatform/environmentmanagement/environments?api-version=2022-03-01-preview",
      aud: "https://api.powerplatform.com",
      service: "powerplatform",
      upstreamPath: "/environmentmanagement/environments",
      method: "GET",
    },
    {
      path: "/powerapps/providers/Microsoft.PowerApps/apps?api-version=2016-11-01",
      aud: "https://service.powerapps.com/",
      service: "powerapps",
      upstreamPath: "/providers/Microsoft.PowerApps/apps",
      method: "GET",
    },
    {
      path: "/lcs/databasemovement/v1/jobs?x=1",
      aud: "https://lcsapi.lcs.dynamics.com/",
      service: "lcs",
      upstreamPath: "/databasemovement/v1/jobs",
      method: "GET",
    },
    {
      path: "/flows/order-created",
      aud: "https://service.flow.microsoft.com/",
      service: "flow",
      upstreamPath: "/triggers/manual/paths/invoke",
      method: "POST",
    },
  ];
  for (const c of cases) {
    const res = await stack.call(c.path, {
      method: c.method,
      headers: {
        authorization: "Bearer caller-token-must-not-leak",
        cookie: "session=caller-cookie",
        "proxy-authorization": "Basic cHJveHk6c2VjcmV0",
        "x-custom": "kept",
      },
      ...(c.method === "POST" ? { body: JSON.stringify({ orderId: 42 }) } : {}),
    });
    assert.equal(res.status, 200, `${c.path}: ${await res.clone().text()}`);
    assert.match(res.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    const echo = (await res.json()) as Echo;
    assert.equal(echo.service, c.service);
    assert.equal(echo.method, c.method);
    assert.equal(echo.token.aud, c.aud);
    assert.ok(echo.path.endsWith(c.upstreamPath), `${echo.path} ends with ${c.upstreamPath}`);
    if (c.service !== "flow") assert.equal(echo.query, c.path.slice(c.path.indexOf("?") + 1));
    assert.equal(echo.headers["x-custom"], "kept");
    assert.equal(
      echo.headers.authorization,
      "<redacted>",
      "the mock saw the proxy's bearer, not the caller's",
    );
    for (const name of ["cookie", "x-api-key", "proxy-authorization"]) {
      assert.equal(echo.headers[name], undefined, `${name} must not reach the upstream`);
    }
    assert.equal(echo.headers["x-forwarded-for"], "127.0.0.1");
    assert.equal(echo.headers["x-forwarded-proto"], "http");
    assert.notEqual(echo.headers.host, new URL(stack.proxy.proxyUrl).host, "Host is the upstream's");
  }
  // The mock recorded the caller's bearer nowhere.
  for (const mock of Object.values(stack.world.mocks)) {
    for (const r of mock.requests) assert.ok(!JSON.stringify(r).includes("caller-token-must-not-leak"));
  }
});

test("the LCS token is a delegated user token; the Power Platform token is an app token", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/lcs/x")).text();
  await (await stack.call("/powerplatform/x")).text();
  const lcs = stack.world.mocks.lcs.requests.at(-1)?.claims as Record<string, unknown> | undefined;
  const pp = stack.world.mocks.powerplatform.requests.at(-1)?.claims as Record<string, unknown> | undefined;
  assert.equal(lcs?.idtyp, "user");
  assert.equal(lcs?.scp, "user_impersonation");
  assert.equal(pp?.idtyp, "app");
});

test("W3C trace context (traceparent, tracestate) reaches the upstream unchanged", async (t) => {
  const stack = await startStack(t);
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const res = await stack.call("/powerplatform/x", {
    headers: { traceparent, tracestate: "congo=t61rcWkgMzE" },
  });
  const echo = (await res.json()) as Echo;
  assert.equal(echo.headers.traceparent, traceparent);
  assert.equal(echo.headers.tracestate, "congo=t61rcWkgMzE");
});
