// The emulator's on-behalf-of grant over HTTPS: it checks the assertion's signature, issuer, expiry and
// audience (the web API's client id or api:// URI) exactly as Entra would, and answers AADSTS65001 and
// interaction_required with a claims challenge.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { EntraEmulator } from "../../../src/demo/emulator.ts";
import { JWT_BEARER_GRANT } from "../../../src/demo/token-service.ts";
import { decodeClaims, PP_SCOPE, startEmulator, TENANT } from "./fixtures.ts";

const WEB_API = "33333333-aaaa-4bbb-8ccc-000000000003";
const SECRET = "web-api-secret";
const USER = { username: "alice@contoso.example", objectId: "a11ce000-0000-4000-8000-000000000001" };

async function setup(t: Parameters<typeof startEmulator>[0]) {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: WEB_API, clientSecrets: [SECRET], displayName: "web api" });
  emulator.addUser({ tenantId: TENANT, ...USER, password: "x" });
  emulator.addUser({
    tenantId: TENANT,
    username: "carol@contoso.example",
    password: "x",
    consentedClientIds: [],
  });
  emulator.addUser({ tenantId: TENANT, username: "dave@contoso.example", password: "x", mfaRequired: true });
  return emulator;
}

async function exchange(emulator: EntraEmulator, assertion: string, extra: Record<string, string> = {}) {
  const res = await fetch(emulator.tokenEndpoint(TENANT), {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: JWT_BEARER_GRANT,
      requested_token_use: "on_behalf_of",
      client_id: WEB_API,
      client_secret: SECRET,
      scope: PP_SCOPE,
      assertion,
      ...extra,
    }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const aliceToken = (emulator: EntraEmulator, options: { audience?: string; lifetimeSec?: number } = {}) =>
  emulator.issueUserToken(TENANT, USER.username, { audience: `api://${WEB_API}`, ...options });

test("a user's token for the web API (api:// URI or client id) becomes a token of the downstream API for that user", async (t) => {
  const emulator = await setup(t);
  for (const audience of [`api://${WEB_API}`, WEB_API]) {
    const { status, body } = await exchange(emulator, await aliceToken(emulator, { audience }));
    assert.equal(status, 200, JSON.stringify(body));
    const claims = decodeClaims(String(body.access_token));
    assert.equal(claims.aud, "https://api.powerplatform.com");
    assert.equal(claims.oid, USER.objectId);
    assert.equal(claims.upn, USER.username);
    assert.equal(claims.appid, WEB_API);
    assert.equal(claims.idtyp, "user");
  }
});

test("an assertion with a bad signature, issuer, audience or expiry is refused as Entra refuses it", async (t) => {
  const emulator = await setup(t);
  const valid = await aliceToken(emulator);
  const [h, , s] = valid.split(".");
  const claims = decodeClaims(valid);
  const reSigned = (patch: Record<string, unknown>) => emulator.issueToken({ ...claims, ...patch });
  const cases: Array<[string, string, number]> = [
    [
      "bad signature",
      `${h}.${Buffer.from(JSON.stringify({ ...claims, oid: "x" })).toString("base64url")}.${s}`,
      50013,
    ],
    ["other issuer", await reSigned({ iss: "https://sts.windows.net/someone-else/" }), 50013],
    ["other audience", await aliceToken(emulator, { audience: "api://another-api" }), 50013],
    ["expired", await aliceToken(emulator, { lifetimeSec: -60 }), 500133],
  ];
  for (const [name, assertion, code] of cases) {
    const { status, body } = await exchange(emulator, assertion);
    assert.equal(status, 400, name);
    assert.equal(body.error, "invalid_grant", name);
    assert.deepEqual(body.error_codes, [code], name);
  }
  const noUse = await exchange(emulator, valid, { requested_token_use: "" });
  assert.equal(noUse.status, 400);
  const noSecret = await exchange(emulator, valid, { client_secret: "" });
  assert.equal(noSecret.status, 401);
});

test("no admin consent answers AADSTS65001; a user under MFA gets interaction_required with claims until the token has mfa", async (t) => {
  const emulator = await setup(t);
  const consent = await exchange(
    emulator,
    await emulator.issueUserToken(TENANT, "carol@contoso.example", { audience: `api://${WEB_API}` }),
  );
  assert.equal(consent.status, 400);
  assert.deepEqual(consent.body.error_codes, [65001]);
  assert.equal(consent.body.suberror, "consent_required");

  const dave = (mfa: boolean) =>
    emulator.issueUserToken(TENANT, "dave@contoso.example", { audience: `api://${WEB_API}`, mfa });
  const step = await exchange(emulator, await dave(false));
  assert.equal(step.status, 400);
  assert.equal(step.body.error, "interaction_required");
  assert.deepEqual(JSON.parse(String(step.body.claims)).access_token.capolids.essential, true);
  assert.equal((await exchange(emulator, await dave(true))).status, 200);
});
