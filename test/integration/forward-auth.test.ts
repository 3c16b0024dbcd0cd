// The forward-auth listener asked directly over HTTP in each gateway's header style (nginx, Traefik,
// Envoy ext_authz): allowed requests get the route's token, refused ones the proxy's own problem, an
// untrusted peer gets 403 and no token, and no token ever reaches the log.
import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { createLocalJWKSet, jwtVerify } from "jose";
import { MICROSOFT_API_AUDIENCES } from "../../src/demo/upstreams.ts";
import { PLATFORM_APP_YAML, type Stack, startStack } from "../helpers/stack.ts";

const yaml = (trustedPeers: string) => `listen: { host: 127.0.0.1 }
forwardAuth:
  port: 0
  trustedPeers: ${trustedPeers}
  pathPrefix: /check
warmup: true
${PLATFORM_APP_YAML}  - prefix: /pp
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    methods: [GET, POST]
    paths: ["/environments/**"]
    forwardAuth: true
    access: { apiKeys: [{ name: current, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /cidr
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    forwardAuth: true
    access: { cidrs: [10.0.0.0/8] }
  - prefix: /limited
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    forwardAuth: true
    rateLimit: { requests: 2, per: 1m }
    access: { apiKeys: [{ name: current, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /plain
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { apiKeys: [{ name: current, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request to the forward-auth listener, from `localAddress` when given. */
function ask(
  stack: Stack,
  path: string,
  headers: Record<string, string | string[]>,
  options: { method?: string; localAddress?: string } = {},
): Promise<Answer> {
  const url = new URL(path, stack.proxy.forwardAuthUrl);
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: options.method ?? "GET", headers, agent: false, localAddress: options.localAddress },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          body += chunk;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const nginx = (uri: string, method = "GET") => ({ "x-original-uri": uri, "x-original-method": method });
const traefik = (uri: string, method = "GET") => ({ "x-forwarded-uri": uri, "x-forwarded-method": method });

async function assertAllowed(stack: Stack, answer: Answer, route: string): Promise<string> {
  assert.equal(answer.status, 200, answer.body);
  assert.equal(answer.body, "");
  assert.equal(answer.headers["x-entra-proxy-route"], route);
  assert.equal(answer.headers["cache-control"], "no-store");
  const token = /^Bearer (\S+)$/.exec(answer.headers.authorization ?? "")?.[1];
  assert.ok(token, "an allowed answer carries a bearer token");
  const { payload } = await jwtVerify(token, createLocalJWKSet(stack.world.emulator.publicJwks()), {
    audience: MICROSOFT_API_AUDIENCES.powerplatform,
  });
  assert.equal(payload.aud, MICROSOFT_API_AUDIENCES.powerplatform);
  return token;
}

function assertRefused(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, answer.body);
  assert.equal(answer.headers.authorization, undefined, "a refusal carries no token");
  assert.equal(answer.headers["x-entra-proxy-route"], undefined);
  assert.match(answer.headers["content-type"] ?? "", /^application\/problem\+json/);
  assert.equal(JSON.parse(answer.body).code, code);
}

test("each gateway's header style gets the route's token, and the token never reaches the log", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.0/8, ::1]") });
  const key = { "x-api-key": stack.world.secrets.apiKey };
  const tokens = [
    await assertAllowed(stack, await ask(stack, "/", { ...key, ...nginx("/pp/environments/e1?x=1") }), "/pp"),
    await assertAllowed(
      stack,
      await ask(stack, "/", { ...key, ...traefik("/pp/environments", "POST") }),
      "/pp",
    ),
    await assertAllowed(stack, await ask(stack, "/check/pp/environments/e1?y=2", key), "/pp"),
    await assertAllowed(stack, await ask(stack, "/check/pp/environments", key, { method: "POST" }), "/pp"),
  ];
  const logs = stack.logs.join("");
  for (const token of new Set(tokens)) assert.ok(!logs.includes(token), "the token is not in the log");
  assert.ok(!logs.includes(stack.world.secrets.apiKey), "the API key is not in the log");
  const lines = stack.logs.map((l) => JSON.parse(l)).filter((l) => l.listener === "forward-auth");
  assert.equal(lines.length, 4);
  assert.deepEqual(
    lines.map((l) => [l.route, l.method, l.path, l.status, l.principal]),
    [
      ["/pp", "GET", "/pp/environments/e1", 200, "key:current"],
      ["/pp", "POST", "/pp/environments", 200, "key:current"],
      ["/pp", "GET", "/pp/environments/e1", 200, "key:current"],
      ["/pp", "POST", "/pp/environments", 200, "key:current"],
    ],
  );
  assert.ok(
    stack.logs.some((l) => l.includes('"msg":"forward auth listening"')),
    "the startup log names the forward-auth listener",
  );
});

test("refusals are the problems the proxy would give, with no token", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.0/8, ::1]") });
  const key = { "x-api-key": stack.world.secrets.apiKey };
  const cases: Array<[string, Record<string, string | string[]>, number, string]> = [
    ["no key", nginx("/pp/environments"), 401, "unauthenticated"],
    ["wrong key", { "x-api-key": "wrong", ...nginx("/pp/environments") }, 403, "access_denied"],
    ["method not allowed", { ...key, ...traefik("/pp/environments", "DELETE") }, 405, "method_not_allowed"],
    ["path outside the allowlist", { ...key, ...nginx("/pp/other") }, 400, "bad_path"],
    ["dot segment", { ...key, ...nginx("/pp/environments/../../plain/x") }, 400, "bad_path"],
    ["encoded slash", { ...key, ...traefik("/pp/environments/a%2F..%2Fb") }, 400, "bad_path"],
    ["no route", { ...key, ...nginx("/nowhere") }, 404, "route_not_found"],
    ["route without forwardAuth", { ...key, ...nginx("/plain/x") }, 404, "route_not_found"],
    ["absolute-form target", { ...key, ...nginx("http://evil.example/pp/environments") }, 400, "bad_path"],
    ["uri without method", { ...key, "x-original-uri": "/pp/environments" }, 400, "bad_request"],
    [
      "uri sent twice",
      { ...key, "x-original-uri": ["/pp/environments", "/plain/x"], "x-original-method": "GET" },
      400,
      "bad_request",
    ],
    [
      "two styles at once",
      { ...key, ...nginx("/pp/environments"), ...traefik("/plain/x") },
      400,
      "bad_request",
    ],
    [
      "cidr route, client outside",
      { ...nginx("/cidr/x"), "x-forwarded-for": "192.0.2.9" },
      403,
      "access_denied",
    ],
  ];
  for (const [name, headers, status, code] of cases) {
    await t.test(name, async () => assertRefused(await ask(stack, "/", headers), status, code));
  }
  // A header style the caller could add through an Envoy gateway does not override the Envoy path.
  assertRefused(
    await ask(stack, "/check/plain/x", { ...key, ...nginx("/pp/environments") }),
    400,
    "bad_request",
  );
  // Envoy style, a path outside pathPrefix.
  assertRefused(await ask(stack, "/pp/environments", key), 404, "route_not_found");
  // The gateway's X-Forwarded-For names the client for `cidrs` access.
  await assertAllowed(
    stack,
    await ask(stack, "/", { ...nginx("/cidr/x"), "x-forwarded-for": "10.1.2.3" }),
    "/cidr",
  );
  const denied = await stack.metrics();
  assert.match(denied, /entra_proxy_access_denied_total\{route="\/pp",reason="invalid_key"\} 1/);
});

test("an untrusted peer gets 403 and no token; the proxy port never answers forward-auth requests; close() stops the listener", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.1]") });
  const headers = { "x-api-key": stack.world.secrets.apiKey, ...nginx("/pp/environments") };
  await assertAllowed(stack, await ask(stack, "/", headers, { localAddress: "127.0.0.1" }), "/pp");
  const untrusted = await ask(stack, "/", headers, { localAddress: "127.0.0.2" });
  assertRefused(untrusted, 403, "access_denied");
  assert.ok(stack.logs.some((l) => l.includes('"error":"untrusted_peer"')));

  const viaProxy = await stack.call("/", { headers: nginx("/pp/environments") });
  assert.equal(viaProxy.status, 404);
  assert.equal(viaProxy.headers.get("authorization"), null);
  assert.equal(((await viaProxy.json()) as { code: string }).code, "route_not_found");
  const envoyViaProxy = await stack.call("/check/pp/environments");
  assert.equal(envoyViaProxy.status, 404);
  assert.equal(envoyViaProxy.headers.get("authorization"), null);

  // close() stops the forward-auth listener with the others.
  await stack.proxy.close(100);
  await assert.rejects(ask(stack, "/", headers), { code: "ECONNREFUSED" });
});

test("without pathPrefix, a request whose own path names a route and whose headers name another is refused", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.0/8]").replace("  pathPrefix: /check\n", "") });
  const key = { "x-api-key": stack.world.secrets.apiKey };
  // The gateway's own auth path names no route: the headers tell the original request.
  await assertAllowed(stack, await ask(stack, "/", { ...nginx("/pp/environments"), ...key }), "/pp");
  // An ext_authz request for DELETE /cidr/x carrying a caller's X-Original-URI for an allowed request.
  const smuggled = await ask(
    stack,
    "/cidr/x",
    { ...nginx("/pp/environments"), ...key },
    { method: "DELETE" },
  );
  assertRefused(smuggled, 400, "bad_request");
});

test("forward auth charges the caller's rate limit, the same budget as the proxy port: 429 with Retry-After and no token", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.0/8]") });
  const key = { "x-api-key": stack.world.secrets.apiKey };
  await assertAllowed(stack, await ask(stack, "/check/limited/x", key), "/limited");
  // The proxy port takes the second request of the budget.
  assert.equal((await stack.call("/limited/x")).status, 200);
  const refused = await ask(stack, "/check/limited/x", key);
  assertRefused(refused, 429, "rate_limited");
  assert.ok(Number(refused.headers["retry-after"]) >= 1, "Retry-After says when to come back");
  const metrics = await stack.metrics();
  assert.match(metrics, /entra_proxy_rate_limited_total\{[^}]*route="\/limited"[^}]*\} 1/);
});

test("forward auth holds the method allowlist for methods tunnelled in X-HTTP-Method too", async (t) => {
  const stack = await startStack(t, { yaml: yaml("[127.0.0.0/8]") });
  const key = { "x-api-key": stack.world.secrets.apiKey };
  assertRefused(
    await ask(stack, "/check/pp/environments/x", { ...key, "x-http-method": "DELETE" }, { method: "POST" }),
    405,
    "method_not_allowed",
  );
  await assertAllowed(
    stack,
    await ask(stack, "/check/pp/environments/x", { ...key, "x-http-method": "GET" }, { method: "POST" }),
    "/pp",
  );
  // MERGE is OData's older name for PATCH: allowed where PATCH is (every method on /limited).
  await assertAllowed(
    stack,
    await ask(stack, "/check/limited/x", { ...key, "x-http-method": "MERGE" }, { method: "POST" }),
    "/limited",
  );
});
