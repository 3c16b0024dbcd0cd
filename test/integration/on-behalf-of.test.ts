// On-behalf-of routes through the running proxy and the emulator (design.md "On-behalf-of"): each user's
// verified token is exchanged once for a token that carries that user, cached per user; Entra's
// refusals map to consent_required, interaction_required and unauthenticated; a forged or expired
// inbound token never reaches Entra; no log line or metric names the user.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_APP, DEMO_TENANT } from "../../src/demo/stack.ts";
import { JWT_BEARER_GRANT } from "../../src/demo/token-service.ts";
import { metricValue, type Stack, startStack } from "../helpers/stack.ts";

const AUDIENCE = `api://${DEMO_APP.clientId}`;
const ISSUER = `https://sts.windows.net/${DEMO_TENANT}/`;
const SCOPE = "https://api.powerplatform.com/.default";

const YAML = `listen: { host: 127.0.0.1 }
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  web-api:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
routes:
  - prefix: /me/powerplatform
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: web-api
    onBehalfOf: true
    access:
      jwt:
        issuer: ${ISSUER}
        audience: ${AUDIENCE}
        jwksUri: \${DEMO_AUTHORITY_HOST}/${DEMO_TENANT}/discovery/v2.0/keys
        requiredScopes: [access_as_user]
`;

const USERS = {
  alice: { username: "alice@contoso.example", objectId: "a11ce000-0000-4000-8000-000000000001" },
  bob: { username: "bob@contoso.example", objectId: "b0b00000-0000-4000-8000-000000000002" },
  carol: { username: "carol@contoso.example", objectId: "ca201000-0000-4000-8000-000000000003" },
  dave: { username: "dave@contoso.example", objectId: "da7e0000-0000-4000-8000-000000000004" },
};

async function oboStack(t: Parameters<typeof startStack>[0]): Promise<Stack> {
  return startStack(t, {
    yaml: YAML,
    prepare(world) {
      for (const [name, u] of Object.entries(USERS)) {
        world.emulator.addUser({
          tenantId: DEMO_TENANT,
          username: u.username,
          objectId: u.objectId,
          password: "not-used",
          // carol's tenant never granted the web API admin consent; dave's access needs MFA.
          ...(name === "carol" ? { consentedClientIds: [] } : {}),
          ...(name === "dave" ? { mfaRequired: true } : {}),
        });
      }
      return undefined;
    },
  });
}

function userToken(
  stack: Stack,
  user: keyof typeof USERS,
  options: { mfa?: boolean; lifetimeSec?: number } = {},
) {
  return stack.world.emulator.issueUserToken(DEMO_TENANT, USERS[user].username, {
    audience: AUDIENCE,
    ...options,
  });
}

function callAs(stack: Stack, token: string, path = "/me/powerplatform/environments"): Promise<Response> {
  return stack.call(path, { key: false, headers: { authorization: `Bearer ${token}` } });
}

function oboGrants(stack: Stack): number {
  return stack.world.emulator.tokenRequests.filter((r) => r.grantType === JWT_BEARER_GRANT).length;
}

interface Echo {
  token: { oid?: string; upn?: string; idtyp?: string; aud?: string; appid?: string; scp?: string };
}

interface Problem {
  code: string;
  detail: string;
  status: number;
}

test("two users get two different upstream identities; a second request is served from the cache", async (t) => {
  const stack = await oboStack(t);
  const aliceToken = await userToken(stack, "alice");
  const alice = await callAs(stack, aliceToken);
  assert.equal(alice.status, 200, await alice.clone().text());
  const aliceEcho = (await alice.json()) as Echo;
  const bob = await callAs(stack, await userToken(stack, "bob"));
  assert.equal(bob.status, 200);
  const bobEcho = (await bob.json()) as Echo;

  assert.equal(aliceEcho.token.oid, USERS.alice.objectId);
  assert.equal(aliceEcho.token.upn, USERS.alice.username);
  assert.equal(bobEcho.token.oid, USERS.bob.objectId);
  assert.equal(bobEcho.token.upn, USERS.bob.username);
  for (const echo of [aliceEcho, bobEcho]) {
    assert.equal(echo.token.idtyp, "user");
    assert.equal(echo.token.appid, DEMO_APP.clientId, "issued to the web API, on behalf of the user");
    assert.equal(echo.token.aud, "https://api.powerplatform.com");
  }
  const received = stack.world.mocks.powerplatform.requests;
  assert.ok(
    received.every((r) => r.headers.authorization !== `Bearer ${aliceToken}`),
    "the caller's own token is never forwarded",
  );
  assert.equal(oboGrants(stack), 2);

  const again = await callAs(stack, aliceToken);
  assert.equal(again.status, 200);
  assert.equal(((await again.json()) as Echo).token.oid, USERS.alice.objectId);
  assert.equal(oboGrants(stack), 2, "served from alice's cache entry");

  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_token_refreshes_total", {
      identity: "web-api",
      scope: SCOPE,
      result: "success",
      trigger: "on_behalf_of",
      error: "",
    }),
    2,
  );
  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as {
    onBehalfOf: Array<{ identity: string; cachedUsers: number; maxUsers: number }>;
  };
  assert.deepEqual(
    status.onBehalfOf.map((c) => [c.identity, c.cachedUsers, c.maxUsers]),
    [["web-api", 2, 10_000]],
  );
  const statusPage = await (await fetch(`${stack.proxy.adminUrl}/status`)).text();
  assert.match(statusPage, /On-behalf-of caches/);

  // Neither a log line nor a metric names the user or carries a token.
  const everything = `${stack.logs.join("\n")}\n${metrics}\n${statusPage}`;
  for (const secret of [USERS.alice.objectId, USERS.alice.username, USERS.bob.objectId, aliceToken]) {
    assert.ok(
      !everything.includes(secret),
      `logs, metrics and /status must not hold ${secret.slice(0, 12)}…`,
    );
  }
});

test("20 concurrent first requests from one user make one exchange", async (t) => {
  const stack = await oboStack(t);
  const token = await userToken(stack, "alice");
  const responses = await Promise.all(Array.from({ length: 20 }, () => callAs(stack, token)));
  for (const res of responses) {
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as Echo).token.oid, USERS.alice.objectId);
  }
  assert.equal(oboGrants(stack), 1);
});

test("AADSTS65001 gives 403 consent_required naming the missing admin consent and the API", async (t) => {
  const stack = await oboStack(t);
  const token = await userToken(stack, "carol");
  const res = await callAs(stack, token);
  assert.equal(res.status, 403);
  const problem = (await res.json()) as Problem & { aadsts?: string };
  assert.equal(problem.code, "consent_required");
  assert.equal(problem.aadsts, "AADSTS65001");
  assert.match(problem.detail, /admin consent is missing/);
  assert.ok(problem.detail.includes(SCOPE), problem.detail);
  assert.ok(problem.detail.includes('identity "web-api"'), problem.detail);
  assert.equal(stack.world.mocks.powerplatform.requests.length, 0);
  // The refused assertion is not sent again; the same answer comes from the proxy.
  const again = await callAs(stack, token);
  assert.equal(again.status, 403);
  assert.equal(oboGrants(stack), 1);
});

test("interaction_required gives 401 with the claims challenge; the stepped-up token then works", async (t) => {
  const stack = await oboStack(t);
  const res = await callAs(stack, await userToken(stack, "dave"));
  assert.equal(res.status, 401);
  assert.equal(((await res.json()) as Problem).code, "interaction_required");
  const challenge = res.headers.get("www-authenticate") ?? "";
  const match = /^Bearer error="insufficient_claims", claims="([A-Za-z0-9+/=]+)"$/.exec(challenge);
  assert.ok(match, challenge);
  const claims = JSON.parse(Buffer.from(match[1]!, "base64").toString("utf8"));
  assert.equal(claims.access_token.capolids.essential, true);

  const stepped = await callAs(stack, await userToken(stack, "dave", { mfa: true }));
  assert.equal(stepped.status, 200);
  assert.equal(((await stepped.json()) as Echo).token.oid, USERS.dave.objectId);
});

test("an assertion Entra refuses gives 401 unauthenticated", async (t) => {
  const stack = await oboStack(t);
  // Valid for the proxy's check, but for a user Entra does not know: AADSTS50013 invalid_grant.
  const stranger = await stack.world.emulator.issueToken({
    iss: ISSUER,
    aud: AUDIENCE,
    tid: DEMO_TENANT,
    scp: "access_as_user",
    idtyp: "user",
  });
  const res = await callAs(stack, stranger);
  assert.equal(res.status, 401);
  assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
  const problem = (await res.json()) as Problem & { aadsts?: string };
  assert.equal(problem.code, "unauthenticated");
  assert.equal(problem.aadsts, "AADSTS50013");
  assert.equal(oboGrants(stack), 1);
});

test("a forged or expired inbound token never reaches Entra", async (t) => {
  const stack = await oboStack(t);
  const valid = await userToken(stack, "alice");
  const [header, payload, signature] = valid.split(".");
  const claims = JSON.parse(Buffer.from(payload!, "base64url").toString("utf8"));
  const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, oid: USERS.bob.objectId })).toString("base64url")}.${signature}`;
  const expired = await userToken(stack, "alice", { lifetimeSec: -3600 });
  // Within the verifier's minute of clock-skew tolerance, but past exp: Entra would refuse it.
  const justExpired = await userToken(stack, "alice", { lifetimeSec: -10 });
  for (const [name, token] of [
    ["forged", forged],
    ["expired", expired],
    ["just expired", justExpired],
  ] as const) {
    const res = await callAs(stack, token);
    assert.equal(res.status, 401, name);
    assert.equal(((await res.json()) as Problem).code, "unauthenticated", name);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"', name);
  }
  assert.equal(oboGrants(stack), 0);
  assert.equal(stack.world.mocks.powerplatform.requests.length, 0);
});

test("an upstream 401 renews that user's token by a new exchange and retries once", async (t) => {
  const stack = await oboStack(t);
  const token = await userToken(stack, "alice");
  assert.equal((await callAs(stack, token)).status, 200);
  stack.world.mocks.powerplatform.revokeSeenTokens();
  const res = await callAs(stack, token);
  assert.equal(res.status, 200, await res.clone().text());
  assert.equal(((await res.json()) as Echo).token.oid, USERS.alice.objectId);
  assert.equal(oboGrants(stack), 2);
  const metrics = await stack.metrics();
  assert.equal(metricValue(metrics, "entra_proxy_upstream_401_total", { route: "/me/powerplatform" }), 1);
});
