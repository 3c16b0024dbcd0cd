// The emulator over plain HTTPS: response shapes, fault injection, the managed identity endpoint,
// token minting and the clock — the contract the proxy's own tests rely on.
import assert from "node:assert/strict";
import { createPrivateKey, randomUUID } from "node:crypto";
import { test } from "node:test";
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, SignJWT } from "jose";
import type { EntraEmulator } from "../../../src/demo/emulator.ts";
import { trustedPki } from "../../helpers/pki.ts";
import { decodeClaims, OTHER_TENANT, PP_SCOPE, startEmulator, TENANT } from "./fixtures.ts";

const CLIENT_ID = "22222222-aaaa-4bbb-8ccc-000000000002";
const SECRET = "the-secret-value";

function postToken(emulator: EntraEmulator, form: Record<string, string>, tenant = TENANT, headers = {}) {
  return fetch(emulator.tokenEndpoint(tenant), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(form),
  });
}

const clientCredentials = (secret = SECRET, scope = PP_SCOPE) => ({
  grant_type: "client_credentials",
  client_id: CLIENT_ID,
  client_secret: secret,
  scope,
});

test("discovery document and JWKS: issued tokens verify against jwks_uri", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  for (const path of ["v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"]) {
    const res = await fetch(`${emulator.url}/${TENANT}/${path}`);
    assert.equal(res.status, 200);
    const doc = (await res.json()) as Record<string, string>;
    assert.equal(doc["issuer"], `${emulator.url}/${TENANT}/v2.0`);
    assert.equal(doc["token_endpoint"], emulator.tokenEndpoint(TENANT));
    assert.ok(doc["authorization_endpoint"] && doc["end_session_endpoint"]);
    const token = (await (await postToken(emulator, clientCredentials())).json()) as { access_token: string };
    const { payload, protectedHeader } = await jwtVerify(
      token.access_token,
      createRemoteJWKSet(new URL(doc["jwks_uri"]!)),
      { audience: "https://api.powerplatform.com", issuer: `https://sts.windows.net/${TENANT}/` },
    );
    assert.equal(protectedHeader.alg, "RS256");
    assert.equal(protectedHeader.kid, emulator.publicJwks().keys[0]?.kid);
    assert.equal(payload["appid"], CLIENT_ID);
  }
  const unknown = await fetch(`${emulator.url}/${OTHER_TENANT}/v2.0/.well-known/openid-configuration`);
  assert.equal(unknown.status, 400);
  assert.deepEqual(((await unknown.json()) as { error_codes: number[] }).error_codes, [90002]);
});

test("errors are shaped exactly like Entra's", async (t) => {
  const now = Date.parse("2026-05-04T03:02:01.500Z");
  const emulator = await startEmulator(t, { now: () => now });
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const correlationId = randomUUID();

  const res = await postToken(emulator, clientCredentials("wrong"), TENANT, {
    "client-request-id": correlationId,
  });
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("cache-control"), "no-store, no-cache");
  const body = (await res.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), [
    "correlation_id",
    "error",
    "error_codes",
    "error_description",
    "error_uri",
    "timestamp",
    "trace_id",
  ]);
  assert.equal(body["error"], "invalid_client");
  assert.deepEqual(body["error_codes"], [7000215]);
  assert.equal(body["timestamp"], "2026-05-04 03:02:01Z");
  assert.equal(body["correlation_id"], correlationId);
  assert.equal(
    body["error_description"],
    `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${CLIENT_ID}'.\r\nTrace ID: ${body["trace_id"]}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: 2026-05-04 03:02:01Z`,
  );

  const cases: Array<[Record<string, string>, string, number, number]> = [
    [{ ...clientCredentials(), client_id: randomUUID() }, TENANT, 400, 700016],
    [clientCredentials(), OTHER_TENANT, 400, 90002],
    [clientCredentials(SECRET, "https://api.powerplatform.com"), TENANT, 400, 1002012],
    [{ grant_type: "client_credentials", client_id: CLIENT_ID, scope: PP_SCOPE }, TENANT, 401, 7000218],
    [{ ...clientCredentials(), grant_type: "authorization_code" }, TENANT, 400, 70003],
  ];
  for (const [form, tenant, status, code] of cases) {
    const r = await postToken(emulator, form, tenant);
    assert.equal(r.status, status, `AADSTS${code}`);
    assert.deepEqual(((await r.json()) as { error_codes: number[] }).error_codes, [code]);
  }
});

test("aud is the scope without /.default (double-slash scopes keep their trailing slash)", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const cases = [
    ["https://api.powerplatform.com/.default", "https://api.powerplatform.com"],
    ["https://service.powerapps.com//.default", "https://service.powerapps.com/"],
    ["https://service.powerapps.com/.default", "https://service.powerapps.com"],
    ["https://service.flow.microsoft.com//.default", "https://service.flow.microsoft.com/"],
    ["https://lcsapi.lcs.dynamics.com//.default", "https://lcsapi.lcs.dynamics.com/"],
    ["https://lcsapi.eu.lcs.dynamics.com//.default", "https://lcsapi.eu.lcs.dynamics.com/"],
    ["api://4f1c2b3a-0000-4000-8000-000000000000/.default", "api://4f1c2b3a-0000-4000-8000-000000000000"],
  ];
  for (const [scope, aud] of cases) {
    const body = (await (await postToken(emulator, clientCredentials(SECRET, scope))).json()) as {
      access_token: string;
    };
    assert.equal(decodeClaims(body.access_token)["aud"], aud, scope);
  }
});

test("unknown resources fail with AADSTS500011 once resources are registered", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  assert.equal(
    (await postToken(emulator, clientCredentials(SECRET, "https://anything.example/.default"))).status,
    200,
  );
  emulator.addResource("https://api.powerplatform.com");
  assert.equal((await postToken(emulator, clientCredentials())).status, 200);
  const res = await postToken(emulator, clientCredentials(SECRET, "https://anything.example/.default"));
  assert.equal(res.status, 400);
  const body = (await res.json()) as { error: string; error_codes: number[] };
  assert.equal(body.error, "invalid_resource");
  assert.deepEqual(body.error_codes, [500011]);
});

test("certificate assertions: aud, iss/sub and lifetime are checked; SHA-1 x5t with RS256 works", async (t) => {
  const pki = await trustedPki();
  const cert = await pki.issue({ commonName: "app", client: true });
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, certificates: [cert.cert] });
  const key = createPrivateKey(cert.key);
  const x5t = Buffer.from(cert.thumbprintSha1, "hex").toString("base64url");
  const assertion = (claims: { aud?: string; iss?: string; exp?: number }) =>
    new SignJWT({})
      .setProtectedHeader({ alg: "RS256", x5t })
      .setAudience(claims.aud ?? emulator.tokenEndpoint(TENANT))
      .setIssuer(claims.iss ?? CLIENT_ID)
      .setSubject(claims.iss ?? CLIENT_ID)
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 600)
      .setJti(randomUUID())
      .sign(key);
  const send = async (jwt: string) => {
    const res = await postToken(emulator, {
      grant_type: "client_credentials",
      client_id: CLIENT_ID,
      client_assertion_type: "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
      client_assertion: jwt,
      scope: PP_SCOPE,
    });
    const body = (await res.json()) as { access_token?: string; error_codes?: number[] };
    return body.access_token ? "ok" : body.error_codes?.[0];
  };

  assert.equal(await send(await assertion({})), "ok");
  assert.equal(await send(await assertion({ aud: "https://login.example/token" })), 700023);
  assert.equal(await send(await assertion({ iss: randomUUID() })), 700021);
  assert.equal(await send(await assertion({ exp: Math.floor(Date.now() / 1000) - 3600 })), 700024);
  assert.equal(await send("not-a-jwt"), 50027);
});

test("faults: drop, malformed, delay, status with headers; matched by grant type; counted by times", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });

  emulator.inject({ drop: true, times: 1 });
  await assert.rejects(postToken(emulator, clientCredentials()));

  emulator.inject({ malformed: true, times: 1 });
  const malformed = await postToken(emulator, clientCredentials());
  assert.equal(malformed.status, 200);
  await assert.rejects(malformed.json(), SyntaxError);

  emulator.inject({ status: 429, headers: { "Retry-After": "3" }, times: 1 });
  const throttled = await postToken(emulator, clientCredentials());
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers.get("retry-after"), "3");

  emulator.inject({ status: 503, body: { custom: true }, match: { grantType: "password" } });
  assert.equal((await postToken(emulator, clientCredentials())).status, 200, "other grants are not hit");

  emulator.inject({ delayMs: 150, times: 1 });
  const started = performance.now();
  const delayed = await postToken(emulator, clientCredentials());
  assert.equal(delayed.status, 200, "a delay-only fault then serves the request");
  assert.ok(performance.now() - started >= 140);

  emulator.clearFaults();
  assert.equal((await postToken(emulator, clientCredentials())).status, 200);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => r.outcome),
    ["fault", "fault", "fault", "success", "success", "success"],
  );
  emulator.resetLog();
  assert.equal(emulator.tokenRequests.length, 0);
});

test("managed identity endpoint: header, api-version, identity selection and App Service response", async (t) => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  const emulator = await startEmulator(t, { now: () => now });
  const system = emulator.addManagedIdentity({ tenantId: TENANT, objectId: randomUUID() });
  const userAssigned = emulator.addManagedIdentity({
    tenantId: TENANT,
    clientId: randomUUID(),
    objectId: randomUUID(),
  });
  const msi = (query: string, header: string | null = emulator.identityHeader) =>
    fetch(`${emulator.msiEndpoint}?${query}`, {
      headers: header === null ? {} : { "x-identity-header": header },
    });
  const resource = "resource=https%3A%2F%2Fapi.powerplatform.com";

  assert.equal((await msi(`${resource}&api-version=2019-08-01`, null)).status, 401);
  assert.equal((await msi(`${resource}&api-version=2019-08-01`, "wrong")).status, 401);
  assert.equal((await msi(`${resource}&api-version=2017-09-01`)).status, 400);
  assert.equal((await msi(`${resource}&api-version=2019-08-01&client_id=${randomUUID()}`)).status, 400);

  const sys = (await (await msi(`${resource}&api-version=2019-08-01`)).json()) as Record<string, string>;
  assert.equal(sys["token_type"], "Bearer");
  assert.equal(sys["resource"], "https://api.powerplatform.com");
  assert.equal(sys["client_id"], system.clientId);
  assert.equal(sys["expires_on"], String(now / 1000 + 3600));
  assert.equal(decodeClaims(sys["access_token"]!)["oid"], system.objectId);

  const ua = (await (
    await msi(`${resource}&api-version=2019-08-01&client_id=${userAssigned.clientId}`)
  ).json()) as Record<string, string>;
  assert.equal(decodeClaims(ua["access_token"]!)["appid"], userAssigned.clientId);

  emulator.inject({ status: 500, times: 1, match: { grantType: "managed_identity" } });
  assert.equal((await msi(`${resource}&api-version=2019-08-01`)).status, 500);
  assert.deepEqual(
    emulator.tokenRequests.map((r) => [r.outcome, r.status]),
    [
      ["error", 401],
      ["error", 401],
      ["error", 400],
      ["error", 400],
      ["success", 200],
      ["success", 200],
      ["fault", 500],
    ],
  );
});

test("token lifetime, refresh_in and the injected clock", async (t) => {
  let now = Date.parse("2026-01-01T00:00:00Z");
  const emulator = await startEmulator(t, { now: () => now, tokenLifetimeSec: 600 });
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const acquire = async () =>
    (await (await postToken(emulator, clientCredentials())).json()) as Record<string, unknown>;

  const short = await acquire();
  assert.equal(short["expires_in"], 600);
  assert.equal(short["refresh_in"], undefined);
  assert.deepEqual(
    [
      decodeClaims(short["access_token"] as string)["iat"],
      decodeClaims(short["access_token"] as string)["exp"],
    ],
    [now / 1000, now / 1000 + 600],
  );

  now += 60_000;
  emulator.setTokenLifetime(7200);
  const long = await acquire();
  assert.equal(long["refresh_in"], 3600);
  assert.equal(decodeClaims(long["access_token"] as string)["iat"], now / 1000);

  const withRefreshIn = await startEmulator(t, { refreshInSec: 42 });
  withRefreshIn.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const body = (await (await postToken(withRefreshIn, clientCredentials())).json()) as Record<
    string,
    unknown
  >;
  assert.equal(body["refresh_in"], 42);
});

test("issueToken mints tokens with overrides, and removes claims set to undefined", async (t) => {
  const emulator = await startEmulator(t);
  const token = await emulator.issueToken({ aud: "https://wrong.example", tid: TENANT, exp: undefined });
  const claims = decodeClaims(token);
  assert.equal(claims["aud"], "https://wrong.example");
  assert.equal(claims["iss"], `https://sts.windows.net/${TENANT}/`);
  assert.equal("exp" in claims, false);
  const { payload } = await jwtVerify(await emulator.issueToken(), createLocalJWKSet(emulator.publicJwks()));
  assert.equal(payload.aud, "https://api.powerplatform.com");
});
