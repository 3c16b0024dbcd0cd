// The on-behalf-of cache on its own (src/auth/obo-tokens.ts): per-user entries in a bounded LRU,
// refresh with the caller's latest token, Entra's refusals as the caller's errors without back-off.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { AcquisitionFailure } from "../../../src/auth/aadsts.ts";
import { type AcquiredToken, TokenAcquisitionError } from "../../../src/auth/credentials.ts";
import { callerErrorFor, type OboCaller, OboTokenCache } from "../../../src/auth/obo-tokens.ts";
import type { AcquisitionEvent } from "../../../src/auth/tokens.ts";
import { ProxyError } from "../../../src/errors.ts";
import { jwt } from "./jwt.ts";

const SCOPE = "https://api.powerplatform.com/.default";

function setup(
  options: { maxUsers?: number; fail?: (assertion: string) => AcquisitionFailure | undefined } = {},
) {
  let now = 1_000_000_000;
  const exchanged: string[] = [];
  const events: AcquisitionEvent[] = [];
  const cache = new OboTokenCache({
    identity: "web-api",
    kind: "clientSecret",
    scope: SCOPE,
    now: () => now,
    ...(options.maxUsers !== undefined ? { maxUsers: options.maxUsers } : {}),
    onAcquisition: (e) => events.push(e),
    exchange: async (assertion): Promise<AcquiredToken> => {
      exchanged.push(assertion);
      const failure = options.fail?.(assertion);
      if (failure) throw new TokenAcquisitionError(failure);
      const iat = Math.floor(now / 1000);
      // The downstream token names the user of the assertion ("<user>#<n>").
      return {
        accessToken: jwt({ sub: assertion.split("#")[0], iat, exp: iat + 3600, n: exchanged.length }),
        expiresOn: now + 3_600_000,
      };
    },
  });
  const caller = (user: string, n = 1): OboCaller => ({
    user,
    assertion: `${user}#${n}`,
    expiresAt: now + 3_600_000,
  });
  const tokenOf = async (c: OboCaller) => {
    const tokens = cache.forCaller(c);
    return tokens.peek() ?? (await tokens.get());
  };
  return {
    cache,
    exchanged,
    events,
    caller,
    tokenOf,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const claimsOf = (token: string) => JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString());

test("each user has their own token; the least recently used user is forgotten beyond maxUsers", async (t) => {
  const { cache, exchanged, caller, tokenOf, events } = setup({ maxUsers: 2 });
  t.after(() => cache.close());
  assert.equal(claimsOf(await tokenOf(caller("alice"))).sub, "alice");
  assert.equal(claimsOf(await tokenOf(caller("bob"))).sub, "bob");
  assert.equal(claimsOf(await tokenOf(caller("alice"))).sub, "alice"); // alice is now the most recent
  assert.equal(exchanged.length, 2);
  await tokenOf(caller("carol")); // bob, the least recently used, goes
  assert.equal(cache.size, 2);
  await tokenOf(caller("alice"));
  assert.equal(exchanged.length, 3, "alice is still cached");
  assert.equal(claimsOf(await tokenOf(caller("bob"))).sub, "bob");
  assert.equal(exchanged.length, 4, "bob was evicted and is exchanged again");
  assert.ok(events.every((e) => e.trigger === "on_behalf_of" && e.result === "success"));
});

test("a due refresh exchanges the caller's latest token and keeps serving the cached one meanwhile", async (t) => {
  const { cache, exchanged, caller, tokenOf, advance } = setup();
  t.after(() => cache.close());
  const first = await tokenOf(caller("alice", 1));
  advance(56 * 60_000); // past the refresh point (5 minutes before exp)
  assert.equal(await tokenOf(caller("alice", 2)), first, "served while the refresh runs");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(exchanged, ["alice#1", "alice#2"]);
  assert.notEqual(await tokenOf(caller("alice", 2)), first);
});

test("a refusal is the caller's error, the same assertion is not sent again, a new one is at once", async (t) => {
  const consent: AcquisitionFailure = {
    error: "AADSTS65001",
    aadsts: "65001",
    hint: "",
    message: "AADSTS65001: The user or administrator has not consented … alice@contoso.example",
    oauthError: "invalid_grant",
    subError: "consent_required",
  };
  const { cache, exchanged, caller, tokenOf, events } = setup({
    fail: (a) => (a === "alice#1" ? consent : undefined),
  });
  t.after(() => cache.close());
  for (let i = 0; i < 3; i++) {
    await assert.rejects(
      tokenOf(caller("alice", 1)),
      (e: unknown) => e instanceof ProxyError && e.code === "consent_required",
    );
  }
  assert.deepEqual(exchanged, ["alice#1"]);
  // No back-off for the caller's own refusal: the next token is exchanged right away.
  assert.equal(claimsOf(await tokenOf(caller("alice", 2))).sub, "alice");
  assert.deepEqual(exchanged, ["alice#1", "alice#2"]);
  // Entra's text (which may name the user) stays out of what is logged.
  assert.equal(
    events[0]?.failure?.message,
    "on-behalf-of exchange failed: AADSTS65001 (invalid_grant/consent_required)",
  );
});

test("the identity provider failing gives token_unavailable and backs off for that user", async (t) => {
  const down: AcquisitionFailure = { error: "network", hint: "", message: "identity provider unreachable" };
  const { cache, exchanged, caller, tokenOf } = setup({ fail: () => down });
  t.after(() => cache.close());
  await assert.rejects(
    tokenOf(caller("alice", 1)),
    (e: unknown) => e instanceof ProxyError && e.code === "token_unavailable",
  );
  await assert.rejects(
    tokenOf(caller("alice", 2)),
    (e: unknown) => e instanceof ProxyError && e.code === "token_unavailable",
  );
  assert.equal(exchanged.length, 1, "the second request waits for the back-off");
});

test("an assertion past its exp is never sent", async (t) => {
  const { cache, exchanged, tokenOf, advance } = setup();
  t.after(() => cache.close());
  const expiring: OboCaller = { user: "alice", assertion: "alice#1", expiresAt: 1_000_000_000 + 1_000 };
  advance(2_000);
  await assert.rejects(
    tokenOf(expiring),
    (e: unknown) => e instanceof ProxyError && e.code === "unauthenticated",
  );
  assert.equal(exchanged.length, 0);
});

test("Entra's answers map to the caller's errors", () => {
  const claims = '{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}';
  const step = callerErrorFor(
    {
      error: "AADSTS50076",
      aadsts: "50076",
      hint: "",
      message: "",
      oauthError: "interaction_required",
      subError: "basic_action",
      claims,
    },
    "web-api",
    SCOPE,
  );
  assert.equal(step?.code, "interaction_required");
  assert.equal(step?.status, 401);
  assert.equal(
    step?.headers["www-authenticate"],
    `Bearer error="insufficient_claims", claims="${Buffer.from(claims).toString("base64")}"`,
  );
  const refused = callerErrorFor(
    { error: "AADSTS50013", aadsts: "50013", hint: "", message: "", oauthError: "invalid_grant" },
    "web-api",
    SCOPE,
  );
  assert.equal(refused?.code, "unauthenticated");
  assert.equal(refused?.headers["www-authenticate"], 'Bearer error="invalid_token"');
  const consent = callerErrorFor(
    {
      error: "AADSTS65001",
      aadsts: "65001",
      hint: "",
      message: "",
      oauthError: "invalid_grant",
      subError: "consent_required",
    },
    "web-api",
    SCOPE,
  );
  assert.equal(consent?.code, "consent_required");
  assert.equal(consent?.status, 403);
  // The identity's own trouble (a wrong secret) is not the caller's: token_unavailable follows.
  assert.equal(
    callerErrorFor(
      { error: "AADSTS7000215", aadsts: "7000215", hint: "", message: "", oauthError: "invalid_client" },
      "web-api",
      SCOPE,
    ),
    undefined,
  );
});
