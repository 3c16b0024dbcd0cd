// Inbound JWTs through the route's access check, against a real JWKS server on loopback that counts
// its fetches and can be made to fail (design.md "access": exp required, 401/403/503, stale-if-error).
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { type TestContext, test } from "node:test";
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWTPayload, SignJWT } from "jose";
import { type AccessDecision, compileAccessCheck } from "../../../src/access/check.ts";

const ISSUER = "https://login.example/tenant/v2.0";
const AUDIENCE = "api://proxy";

async function signer(kid: string) {
  const { privateKey, publicKey } = await generateKeyPair("RS256");
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: "RS256", use: "sig" };
  const sign = (claims: JWTPayload, options: { exp?: number | null } = {}) => {
    const jwt = new SignJWT({
      iss: ISSUER,
      aud: AUDIENCE,
      roles: ["Proxy.Use"],
      oid: "caller-oid",
      ...claims,
    })
      .setProtectedHeader({ alg: "RS256", kid, typ: "JWT" })
      .setIssuedAt();
    if (options.exp !== null) jwt.setExpirationTime(options.exp ?? "1h");
    return jwt.sign(privateKey);
  };
  return { jwk, sign };
}

/** A JWKS endpoint that serves `keys` while `failing` is false and answers 500 otherwise. */
async function startJwks(t: TestContext, keys: JSONWebKeySet) {
  const state = { keys, failing: false, fetches: 0 };
  const server = createServer((_req, res) => {
    state.fetches += 1;
    if (state.failing) {
      res.writeHead(500, { "content-type": "text/plain" }).end("down");
      return;
    }
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(state.keys));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/keys`,
    state,
  };
}

function routeCheck(jwksUri: string, now: () => number) {
  const check = compileAccessCheck(
    { anonymous: false, jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUri, requiredRoles: ["Proxy.Use"] } },
    now,
  );
  return (token: string): Promise<AccessDecision> =>
    Promise.resolve(check({ authorization: `Bearer ${token}` }, "127.0.0.1"));
}

const invalidToken = (reason: string) => ({
  allowed: false,
  code: "unauthenticated",
  reason,
  challenge: 'Bearer error="invalid_token"',
});

test("a token without exp, an expired or a bad token get 401 invalid_token; a valid one lacking a role 403", async (t) => {
  const key = await signer("k1");
  const other = await signer("k1"); // same kid, another key: a forged signature
  const jwks = await startJwks(t, { keys: [key.jwk] });
  const check = routeCheck(jwks.url, Date.now);
  const now = Math.floor(Date.now() / 1000);

  assert.partialDeepStrictEqual(await check(await key.sign({})), {
    allowed: true,
    principal: "jwt:caller-oid",
  });
  assert.deepEqual(await check(await key.sign({}, { exp: null })), invalidToken("jwt_invalid"));
  assert.deepEqual(
    await check(await key.sign({ iat: now - 7200 }, { exp: now - 3600 })),
    invalidToken("jwt_expired"),
  );
  assert.deepEqual(await check(await other.sign({})), invalidToken("jwt_invalid"));
  assert.deepEqual(await check(await key.sign({ aud: "api://another" })), invalidToken("jwt_invalid"));
  assert.deepEqual(await check("not.a.jwt"), invalidToken("jwt_invalid"));
  assert.deepEqual(await check(await key.sign({ roles: ["Something.Else"] })), {
    allowed: false,
    code: "access_denied",
    reason: "jwt_role",
  });
  assert.equal(jwks.state.fetches, 1, "the keys were fetched once");
});

test("while the JWKS endpoint fails, 30 requests make one fetch and later fetches back off", async (t) => {
  const key = await signer("k1");
  const jwks = await startJwks(t, { keys: [key.jwk] });
  jwks.state.failing = true;
  let now = Date.parse("2027-03-01T10:00:00Z");
  const check = routeCheck(jwks.url, () => now);
  const token = await key.sign({}, { exp: Math.floor(now / 1000) + 86_400 });
  const unavailable = (retryAfter: number) => ({
    allowed: false,
    code: "jwks_unavailable",
    reason: "jwks_unavailable",
    retryAfter,
  });

  const first = await Promise.all(Array.from({ length: 15 }, () => check(token)));
  for (let i = 0; i < 15; i++) first.push(await check(token));
  for (const decision of first) assert.deepEqual(decision, unavailable(1));
  assert.equal(jwks.state.fetches, 1, "30 requests, one fetch");

  // Each failure doubles the wait before the next fetch, up to a minute; no request fetches before then.
  const waits: number[] = [];
  for (let fetches = 2; fetches <= 10; fetches++) {
    const decision = await check(token);
    assert.ok(!decision.allowed && decision.retryAfter !== undefined);
    waits.push(decision.retryAfter);
    now += decision.retryAfter * 1000 - 1;
    await check(token);
    assert.equal(jwks.state.fetches, fetches - 1, "no fetch before the backoff has passed");
    now += 1;
    await check(token);
    assert.equal(jwks.state.fetches, fetches);
  }
  assert.deepEqual(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);

  jwks.state.failing = false;
  now += 60_000;
  assert.partialDeepStrictEqual(await check(token), { allowed: true, principal: "jwt:caller-oid" });
});

test("keys are kept past their max age while the JWKS endpoint fails, and refreshed when it is back", async (t) => {
  const key = await signer("k1");
  const jwks = await startJwks(t, { keys: [key.jwk] });
  let now = Date.parse("2027-03-01T10:00:00Z");
  const check = routeCheck(jwks.url, () => now);
  // The token's own validity is judged on the same clock: it outlives the outage.
  const token = await key.sign({}, { exp: Math.floor(now / 1000) + 86_400 });
  assert.equal((await check(token)).allowed, true);

  jwks.state.failing = true;
  now += 11 * 60_000; // past the keys' max age of 10 minutes
  for (let i = 0; i < 30; i++) {
    assert.partialDeepStrictEqual(await check(token), { allowed: true, principal: "jwt:caller-oid" });
  }
  // A key id the kept keys lack waits for the refresh under way (or sees its backoff): it cannot be judged.
  const unknown = await (await signer("k-unknown")).sign({}, { exp: Math.floor(now / 1000) + 3600 });
  const decision = await check(unknown);
  assert.equal(decision.allowed === false && decision.code, "jwks_unavailable");
  assert.equal(jwks.state.fetches, 2, "one refresh attempt for 31 requests");

  // Back online with rotated keys: a token signed with the new key is accepted, the old key is gone.
  const rotated = await signer("k2");
  jwks.state.failing = false;
  jwks.state.keys = { keys: [rotated.jwk] };
  now += 60_000;
  const newToken = await rotated.sign({}, { exp: Math.floor(now / 1000) + 3600 });
  assert.partialDeepStrictEqual(await check(newToken), { allowed: true, principal: "jwt:caller-oid" });
  assert.equal(jwks.state.fetches, 3);
  assert.deepEqual(await check(token), invalidToken("jwt_invalid"));
  assert.equal(jwks.state.fetches, 3, "an unknown key id right after a fetch fetches nothing more");
});

test("a key id the kept keys lack, while the JWKS endpoint fails: 503, not 401", async (t) => {
  const key = await signer("k1");
  const jwks = await startJwks(t, { keys: [key.jwk] });
  let now = Date.parse("2027-03-01T10:00:00Z");
  const check = routeCheck(jwks.url, () => now);
  assert.equal((await check(await key.sign({}, { exp: Math.floor(now / 1000) + 3600 }))).allowed, true);
  jwks.state.failing = true;
  now += 60_000; // past the cool-down after a successful fetch
  const rotated = await signer("k2");
  const decision = await check(await rotated.sign({}, { exp: Math.floor(now / 1000) + 3600 }));
  assert.equal(decision.allowed === false && decision.code, "jwks_unavailable");
  assert.equal(jwks.state.fetches, 2);
});

test("a JWKS endpoint that refuses connections gives 503 jwks_unavailable with a retry delay", async (t) => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise((resolve) => closed.close(resolve));
  const key = await signer("k1");
  const check = routeCheck(`http://127.0.0.1:${port}/keys`, Date.now);
  t.diagnostic(`JWKS at closed port ${port}`);
  assert.deepEqual(await check(await key.sign({})), {
    allowed: false,
    code: "jwks_unavailable",
    reason: "jwks_unavailable",
    retryAfter: 1,
  });
});
