// Hostile requests, table-driven: each gets its exact status and problem code, and the upstream
// receives nothing. The proxy must never become an open token relay.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { generateKeyPair, SignJWT } from "jose";
import { DEMO_TENANT } from "../../src/demo/stack.ts";
import { sendRaw } from "../helpers/raw-http.ts";
import { PLATFORM_APP_YAML, startStack } from "../helpers/stack.ts";

const OLD_KEY = "retired-key-from-2020";
const AUDIENCE = "api://entra-auth-proxy";

const YAML = `listen: { host: 127.0.0.1 }
warmup: true
${PLATFORM_APP_YAML}  - prefix: /pp
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    methods: [GET, POST]
    paths: ["/environments/**"]
    maxBodyBytes: 1024
    access:
      apiKeys:
        - { name: current, sha256: "\${DEMO_API_KEY_SHA256}" }
        - { name: retired, sha256: "${createHash("sha256").update(OLD_KEY).digest("hex")}", expires: 2020-12-31 }
  - prefix: /cidr
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { cidrs: [10.0.0.0/8] }
  - prefix: /jwt
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access:
      jwt:
        issuer: https://sts.windows.net/${DEMO_TENANT}/
        audience: ${AUDIENCE}
        jwksUri: \${DEMO_AUTHORITY_HOST}/${DEMO_TENANT}/discovery/v2.0/keys
        requiredRoles: [Proxy.Use]
`;

interface Case {
  name: string;
  /** Raw request text; {KEY} is replaced by the valid API key, {JWT:name} by a token. */
  raw: string;
  status: number;
  code: string;
}

const get = (target: string, headers = "X-Api-Key: {KEY}\r\n") =>
  `GET ${target} HTTP/1.1\r\nHost: proxy\r\n${headers}Connection: close\r\n\r\n`;
/** A bodyless POST on an allowed path carrying a method-override header. */
const tunnel = (override: string) =>
  `POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\n${override}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`;
const bearer = (name: string) => `Authorization: Bearer {JWT:${name}}\r\n`;

const CASES: Case[] = [
  // Path traversal and encoding tricks
  { name: "dot-dot segment", raw: get("/pp/../x"), status: 400, code: "bad_path" },
  { name: "dot segment", raw: get("/pp/./environments/x"), status: 400, code: "bad_path" },
  { name: "encoded dot-dot", raw: get("/pp/%2e%2e/x"), status: 400, code: "bad_path" },
  { name: "mixed-case encoded dot-dot", raw: get("/pp/%2E%2e/x"), status: 400, code: "bad_path" },
  { name: "half-encoded dot-dot", raw: get("/pp/.%2e/x"), status: 400, code: "bad_path" },
  { name: "half-encoded dot-dot (2)", raw: get("/pp/%2e./x"), status: 400, code: "bad_path" },
  { name: "encoded slash escaping the prefix", raw: get("/pp%2f..%2fx"), status: 400, code: "bad_path" },
  {
    name: "encoded slash in a segment",
    raw: get("/pp/environments%2f..%2f..%2fadmin"),
    status: 400,
    code: "bad_path",
  },
  { name: "encoded dot-dot-slash", raw: get("/pp/%2e%2e%2fx"), status: 400, code: "bad_path" },
  { name: "encoded backslash", raw: get("/pp/environments/a%5c..%5cb"), status: 400, code: "bad_path" },
  { name: "raw backslash", raw: get("/pp/environments/a\\..\\b"), status: 400, code: "bad_path" },
  { name: "encoded NUL", raw: get("/pp/environments/a%00b"), status: 400, code: "bad_path" },
  { name: "double-encoded dot-dot", raw: get("/pp/%252e%252e/x"), status: 400, code: "bad_path" },
  { name: "double-encoded slash", raw: get("/pp/environments/a%252fb"), status: 400, code: "bad_path" },
  { name: "triple encoding", raw: get("/pp/%25252e%25252e/x"), status: 400, code: "bad_path" },
  { name: "overlong UTF-8 dot", raw: get("/pp/%c0%ae%c0%ae/x"), status: 400, code: "bad_path" },
  { name: "overlong UTF-8 dot (3 bytes)", raw: get("/pp/%e0%80%ae/x"), status: 400, code: "bad_path" },
  { name: "malformed percent-encoding", raw: get("/pp/environments/%zz"), status: 400, code: "bad_path" },
  // Reaching another host
  {
    name: "absolute-form request target",
    raw: get("http://evil.example/pp/environments/x"),
    status: 400,
    code: "bad_path",
  },
  {
    name: "asterisk-form",
    raw: "OPTIONS * HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n",
    status: 400,
    code: "bad_path",
  },
  {
    name: "scheme-relative path",
    raw: get("//evil.example/pp/environments/x"),
    status: 404,
    code: "route_not_found",
  },
  {
    name: "userinfo-looking prefix",
    raw: get("/pp@evil.example/environments"),
    status: 404,
    code: "route_not_found",
  },
  {
    name: "prefix without segment boundary",
    raw: get("/ppx/environments"),
    status: 404,
    code: "route_not_found",
  },
  // Request smuggling and malformed HTTP (rejected by Node's parser, answered as problem+json)
  {
    name: "Content-Length with Transfer-Encoding",
    raw: "POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    status: 400,
    code: "bad_request",
  },
  {
    name: "duplicate, conflicting Content-Length",
    raw: "POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
    status: 400,
    code: "bad_request",
  },
  {
    name: "obs-fold header",
    raw: "GET /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nX-Folded: a\r\n b\r\n\r\n",
    status: 400,
    code: "bad_request",
  },
  {
    name: "unknown transfer coding",
    raw: "POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    status: 400,
    code: "bad_request",
  },
  {
    name: "invalid chunk size",
    raw: "POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    status: 400,
    code: "bad_request",
  },
  {
    name: "space before header colon",
    raw: get("/pp/environments/x", "X-Api-Key : {KEY}\r\n"),
    status: 400,
    code: "bad_request",
  },
  // Oversize
  {
    name: "Content-Length over maxBodyBytes",
    raw: `POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nContent-Length: 2048\r\nConnection: close\r\n\r\n${"a".repeat(2048)}`,
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "chunked body over maxBodyBytes",
    raw: `POST /pp/environments/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: {KEY}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n800\r\n${"a".repeat(2048)}\r\n0\r\n\r\n`,
    status: 413,
    code: "payload_too_large",
  },
  {
    name: "headers over 32 KiB",
    raw: get("/pp/environments/x", `X-Api-Key: {KEY}\r\nX-Big: ${"b".repeat(40_000)}\r\n`),
    status: 431,
    code: "headers_too_large",
  },
  // Methods and path allowlist
  {
    name: "method not in the route's list",
    raw: get("/pp/environments/x").replace("GET", "DELETE"),
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "TRACE",
    raw: get("/pp/environments/x").replace("GET", "TRACE"),
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "POST tunnelling DELETE in X-HTTP-Method (OData)",
    raw: tunnel("X-HTTP-Method: DELETE"),
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "POST tunnelling PATCH in X-HTTP-Method-Override",
    raw: tunnel("X-HTTP-Method-Override: patch"),
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "POST tunnelling MERGE (OData's PATCH) where PATCH is not allowed",
    raw: tunnel("X-HTTP-Method: MERGE"),
    status: 405,
    code: "method_not_allowed",
  },
  {
    name: "X-Method-Override sent twice, one of them allowed",
    raw: tunnel("X-Method-Override: POST\r\nX-Method-Override: DELETE"),
    status: 405,
    code: "method_not_allowed",
  },
  { name: "path outside the allowlist", raw: get("/pp/licensing/x"), status: 400, code: "bad_path" },
  // API keys
  { name: "no credential", raw: get("/pp/environments/x", ""), status: 401, code: "unauthenticated" },
  {
    name: "wrong API key",
    raw: get("/pp/environments/x", "X-Api-Key: guess\r\n"),
    status: 403,
    code: "access_denied",
  },
  {
    name: "API key in the query string is not a credential",
    raw: get("/pp/environments/x?api-key={KEY}", ""),
    status: 401,
    code: "unauthenticated",
  },
  {
    name: "Basic auth with a wrong password",
    raw: get("/pp/environments/x", `Authorization: Basic ${Buffer.from("erp:guess").toString("base64")}\r\n`),
    status: 403,
    code: "access_denied",
  },
  {
    name: "expired API key",
    raw: get("/pp/environments/x", `X-Api-Key: ${OLD_KEY}\r\n`),
    status: 403,
    code: "access_denied",
  },
  {
    name: "API key of another route's kind (bearer on an API-key route)",
    raw: get("/pp/environments/x", bearer("good")),
    status: 401,
    code: "unauthenticated",
  },
  // CIDR allowlist
  { name: "caller outside the CIDR list", raw: get("/cidr/x", ""), status: 403, code: "access_denied" },
  {
    name: "spoofed X-Forwarded-For from an untrusted peer",
    raw: get("/cidr/x", "X-Forwarded-For: 10.1.2.3\r\n"),
    status: 403,
    code: "access_denied",
  },
  // Inbound JWT
  { name: "JWT route without a token", raw: get("/jwt/x", ""), status: 401, code: "unauthenticated" },
  {
    name: "JWT with a forged signature",
    raw: get("/jwt/x", bearer("forged")),
    status: 401,
    code: "unauthenticated",
  },
  {
    name: "JWT for another audience",
    raw: get("/jwt/x", bearer("wrongAudience")),
    status: 401,
    code: "unauthenticated",
  },
  {
    name: "JWT from another issuer",
    raw: get("/jwt/x", bearer("wrongIssuer")),
    status: 401,
    code: "unauthenticated",
  },
  { name: "JWT with alg none", raw: get("/jwt/x", bearer("algNone")), status: 401, code: "unauthenticated" },
  {
    name: "JWT signed with HS256",
    raw: get("/jwt/x", bearer("hs256")),
    status: 401,
    code: "unauthenticated",
  },
  { name: "expired JWT", raw: get("/jwt/x", bearer("expired")), status: 401, code: "unauthenticated" },
  {
    name: "JWT without the required role",
    raw: get("/jwt/x", bearer("noRole")),
    status: 403,
    code: "access_denied",
  },
  {
    name: "garbage bearer token",
    raw: get("/jwt/x", "Authorization: Bearer not.a.jwt\r\n"),
    status: 401,
    code: "unauthenticated",
  },
  { name: "API key on a JWT route", raw: get("/jwt/x"), status: 401, code: "unauthenticated" },
];

test(`${CASES.length} hostile requests: exact status and problem code, and nothing reaches the upstream`, async (t) => {
  const stack = await startStack(t, { yaml: YAML });
  const { emulator } = stack.world;
  const iss = `https://sts.windows.net/${DEMO_TENANT}/`;
  const base = { iss, aud: AUDIENCE, roles: ["Proxy.Use"], tid: DEMO_TENANT };
  const now = Math.floor(Date.now() / 1000);
  const { privateKey: otherKey } = await generateKeyPair("RS256");
  const unsigned = (header: object, claims: object) =>
    `${Buffer.from(JSON.stringify(header)).toString("base64url")}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
  const tokens: Record<string, string> = {
    good: await emulator.issueToken(base),
    forged: await new SignJWT({ ...base })
      .setProtectedHeader({ alg: "RS256", kid: "emulator-key" })
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(otherKey),
    wrongAudience: await emulator.issueToken({ ...base, aud: "https://api.powerplatform.com" }),
    wrongIssuer: await emulator.issueToken({
      ...base,
      iss: "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
    }),
    algNone: `${unsigned({ alg: "none", typ: "JWT" }, { ...base, exp: now + 3600 })}.`,
    hs256: await new SignJWT({ ...base })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode("a-shared-secret-guessed-by-anyone")),
    expired: await emulator.issueToken({ ...base, iat: now - 7200, nbf: now - 7200, exp: now - 3600 }),
    noRole: await emulator.issueToken({ ...base, roles: ["Something.Else"] }),
  };
  // Positive controls: the same routes do work with proper credentials.
  const okKey = await sendRaw(
    stack.proxy.proxyUrl,
    get("/pp/environments/x").replace("{KEY}", stack.world.secrets.apiKey),
  );
  assert.equal(okKey.status, 200, okKey.body);
  // An override naming a method the route allows passes, for clients that cannot send it themselves.
  const okTunnel = await sendRaw(
    stack.proxy.proxyUrl,
    tunnel("X-HTTP-Method: GET").replace("{KEY}", stack.world.secrets.apiKey),
  );
  assert.equal(okTunnel.status, 200, okTunnel.body);
  const okJwt = await sendRaw(
    stack.proxy.proxyUrl,
    get("/jwt/x", `Authorization: Bearer ${tokens.good}\r\n`),
  );
  assert.equal(okJwt.status, 200, okJwt.body);
  const upstream = stack.world.mocks.powerplatform;
  const forwardedBefore = upstream.requests.length;
  const mismatches: string[] = [];
  for (const c of CASES) {
    const raw = c.raw
      .replaceAll("{KEY}", stack.world.secrets.apiKey)
      .replace(/\{JWT:(\w+)\}/g, (_, n: string) => tokens[n]!);
    const res = await sendRaw(stack.proxy.proxyUrl, raw);
    let code = "";
    try {
      code = (JSON.parse(res.body) as { code: string }).code;
    } catch {
      code = `<not json: ${res.body.slice(0, 60)}>`;
    }
    if (res.status !== c.status || code !== c.code)
      mismatches.push(`${c.name}: got ${res.status} ${code}, want ${c.status} ${c.code}`);
    if (c.status === 401 && !/www-authenticate:/i.test(res.head))
      mismatches.push(`${c.name}: 401 without WWW-Authenticate`);
  }
  assert.deepEqual(mismatches, []);
  assert.equal(
    upstream.requests.length,
    forwardedBefore,
    "the upstream received none of the hostile requests",
  );
  const metrics = await stack.metrics();
  for (const reason of [
    "no_credential",
    "invalid_key",
    "expired_key",
    "cidr",
    "jwt_invalid",
    "jwt_expired",
    "jwt_role",
  ]) {
    assert.match(
      metrics,
      new RegExp(`entra_proxy_access_denied_total\\{route="[^"]+",reason="${reason}"\\}`),
      reason,
    );
  }
  t.diagnostic(`hostile cases: ${CASES.length}`);
});

test("Host header games do not change where requests go; the inbound bearer is never forwarded", async (t) => {
  const stack = await startStack(t, { yaml: YAML });
  const token = await stack.world.emulator.issueToken({
    iss: `https://sts.windows.net/${DEMO_TENANT}/`,
    aud: AUDIENCE,
    roles: ["Proxy.Use"],
  });
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    `GET /jwt/environments HTTP/1.1\r\nHost: evil.example\r\nX-Forwarded-Host: evil.example\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
  );
  assert.equal(res.status, 200, res.body);
  const seen = stack.world.mocks.powerplatform.requests.at(-1)!;
  assert.equal(seen.headers.host, new URL(stack.world.mocks.powerplatform.url).host);
  assert.notEqual(seen.headers.authorization, `Bearer ${token}`);
  assert.equal(
    seen.claims?.aud,
    "https://api.powerplatform.com",
    "the proxy's own token replaced the caller's",
  );
  assert.equal(
    seen.headers["x-forwarded-host"],
    "evil.example",
    "an untrusted peer's X-Forwarded-Host is replaced by its Host",
  );
});

test("maxConcurrent: requests beyond the limit get 503 overloaded", async (t) => {
  const yaml = YAML.replace("    maxBodyBytes: 1024\n", "    maxBodyBytes: 1024\n    maxConcurrent: 2\n");
  const stack = await startStack(t, { yaml });
  const slow = (path: string) =>
    stack.call(path).then(async (r) => ({ status: r.status, body: await r.text() }));
  const results = await Promise.all([
    slow("/pp/environments/slow/600"),
    slow("/pp/environments/slow/600"),
    slow("/pp/environments/slow/600"),
  ]);
  const statuses = results.map((r) => r.status).sort();
  assert.deepEqual(statuses, [200, 200, 503]);
  assert.equal(JSON.parse(results.find((r) => r.status === 503)!.body).code, "overloaded");
});

test("secrets sent in every place never appear in a log line or a metric label", async (t) => {
  const stack = await startStack(t, { yaml: YAML });
  const secret = "Zx9-SECRET-VALUE-7Qp";
  const requests = [
    {
      path: `/pp/environments/x?sig=${secret}&api-version=1`,
      headers: { authorization: `Bearer ${secret}` },
    },
    { path: "/pp/environments/x", headers: { "x-api-key": secret } },
    {
      path: "/pp/environments/x",
      headers: { authorization: `Basic ${Buffer.from(`erp:${secret}`).toString("base64")}` },
    },
    {
      path: "/pp/environments/x",
      headers: { "x-api-key": stack.world.secrets.apiKey, cookie: `session=${secret}` },
    },
    { path: `/jwt/x?code=${secret}`, headers: { authorization: `Bearer ${secret}.${secret}.${secret}` } },
  ];
  for (const r of requests) {
    const res = await stack.call(r.path, { key: false, headers: r.headers });
    await res.arrayBuffer();
  }
  const everything = stack.logs.join("\n") + (await stack.metrics());
  assert.ok(
    stack.logs.filter((l) => l.includes('"msg":"request"')).length >= requests.length,
    "request lines were written",
  );
  assert.ok(!everything.includes(secret), "the secret leaked into logs or metrics");
  assert.ok(!everything.includes(stack.world.secrets.apiKey), "the API key leaked");
  assert.ok(!everything.includes(stack.world.secrets.clientSecret), "the client secret leaked");
  assert.doesNotMatch(everything, /eyJ[\w-]{10,}\.[\w-]{10,}\./, "no JWT in logs");
});
