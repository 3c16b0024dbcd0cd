// Inbound JWTs through the running proxy (design.md "access"): 401 with `Bearer error="invalid_token"`
// for a token without `exp` or an expired one, 403 for a missing role, and 503 `jwks_unavailable` —
// one JWKS fetch for many requests — when the issuer's keys cannot be had.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { DEMO_TENANT } from "../../src/demo/stack.ts";
import { PLATFORM_APP_YAML, startStack } from "../helpers/stack.ts";

const AUDIENCE = "api://entra-auth-proxy";
const ISSUER = `https://sts.windows.net/${DEMO_TENANT}/`;

const YAML = `listen: { host: 127.0.0.1 }
${PLATFORM_APP_YAML}  - prefix: /jwt
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access:
      jwt:
        issuer: ${ISSUER}
        audience: ${AUDIENCE}
        jwksUri: \${DEMO_AUTHORITY_HOST}/${DEMO_TENANT}/discovery/v2.0/keys
        requiredRoles: [Proxy.Use]
  - prefix: /broken-keys
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access:
      jwt: { issuer: ${ISSUER}, audience: ${AUDIENCE}, jwksUri: \${BROKEN_JWKS:-http://127.0.0.1:9/keys} }
`;

test("tokens without exp or expired get 401 invalid_token, a missing role 403", async (t) => {
  const stack = await startStack(t, { yaml: YAML });
  const { emulator } = stack.world;
  const base = { iss: ISSUER, aud: AUDIENCE, roles: ["Proxy.Use"], tid: DEMO_TENANT };
  const now = Math.floor(Date.now() / 1000);
  const call = (token: string) =>
    stack.call("/jwt/environments", { key: false, headers: { authorization: `Bearer ${token}` } });

  const ok = await call(await emulator.issueToken(base));
  assert.equal(ok.status, 200, await ok.text());

  for (const [name, token] of [
    ["no exp", await emulator.issueToken({ ...base, exp: undefined })],
    ["expired", await emulator.issueToken({ ...base, iat: now - 7200, nbf: now - 7200, exp: now - 3600 })],
  ] as const) {
    const res = await call(token);
    assert.equal(res.status, 401, name);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"', name);
    assert.equal(((await res.json()) as { code: string }).code, "unauthenticated", name);
  }

  const noRole = await call(await emulator.issueToken({ ...base, roles: ["Something.Else"] }));
  assert.equal(noRole.status, 403);
  assert.equal(((await noRole.json()) as { code: string }).code, "access_denied");
});

test("a JWKS endpoint that fails gives 503 jwks_unavailable, and 20 requests do not fetch it 20 times", async (t) => {
  let fetches = 0;
  const jwks = createServer((_req, res) => {
    fetches += 1;
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => jwks.listen(0, "127.0.0.1", resolve));
  t.after(() => jwks.close());
  const { port } = jwks.address() as AddressInfo;
  const stack = await startStack(t, { yaml: YAML, env: { BROKEN_JWKS: `http://127.0.0.1:${port}/keys` } });
  const token = await stack.world.emulator.issueToken({ iss: ISSUER, aud: AUDIENCE, tid: DEMO_TENANT });

  const started = Date.now();
  for (let i = 0; i < 20; i++) {
    const res = await stack.call("/broken-keys/environments", {
      key: false,
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { code: string }).code, "jwks_unavailable");
  }
  // Failed fetches wait 1 s, then 2 s: at most three fetches fit in the 7 s this loop may take.
  assert.ok(Date.now() - started < 7_000);
  assert.ok(fetches >= 1 && fetches <= 3, `${fetches} fetches`);
  t.diagnostic(`JWKS fetches for 20 requests: ${fetches} in ${Date.now() - started} ms`);
});
