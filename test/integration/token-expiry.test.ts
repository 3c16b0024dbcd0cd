// Token expiry as the outside sees it: msal sources count expires_in from before the request was
// sent, and /status and the expiry gauge count to the token's own exp.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJwt } from "jose";
import { createTokenSource } from "../../src/auth/credentials.ts";
import { DEMO_ROUTES_YAML, demoConfig, startDemoWorld } from "../../src/demo/stack.ts";
import { trustedPki } from "../helpers/pki.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

const PP = { identity: "platform-app", scope: "https://api.powerplatform.com/.default" };

/**
 * Resolves in the second half of a wall-clock second: a token requested then has an `exp` (from an
 * `iat` rounded down) nearly a second before "request time + expires_in" rounded to the nearest second.
 */
async function secondHalfOfASecond(): Promise<void> {
  const phase = Date.now() % 1000;
  if (phase >= 550 && phase < 700) return;
  await new Promise((r) => setTimeout(r, (1550 - phase) % 1000));
}

test("a client-credentials source counts expires_in from when its token request was sent", async (t) => {
  const world = await startDemoWorld({ pki: await trustedPki() });
  t.after(() => world.close());
  const config = demoConfig(world);
  const source = createTokenSource(config.identities["platform-app"]!, config.cloud, PP.scope, {
    env: world.env,
  });
  await source.acquire(); // authority discovery, so the next acquisition is one token request
  await secondHalfOfASecond();
  const before = Date.now();
  const token = await source.acquire();
  const after = Date.now();
  const lifetimeMs = 3_600_000;
  assert.ok(
    token.expiresOn >= before + lifetimeMs && token.expiresOn <= after + lifetimeMs,
    `expiresOn ${token.expiresOn - lifetimeMs} outside [${before}, ${after}]`,
  );
});

test("/status and entra_proxy_token_expiry_seconds count to the token's exp", async (t) => {
  const stack = await startStack(t, { yaml: DEMO_ROUTES_YAML.replace("warmup: true", "warmup: false") });
  await secondHalfOfASecond();
  const res = await stack.call("/powerplatform/x");
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const bearer = /^Bearer (\S+)$/.exec(
    stack.world.mocks.powerplatform.requests[0]?.headers.authorization ?? "",
  );
  const exp = decodeJwt(bearer![1]!).exp! * 1000;

  const before = Date.now();
  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as {
    tokens: Array<{ identity: string; scope: string; expiresAt?: string; valid: boolean }>;
  };
  const metrics = await stack.metrics();
  const after = Date.now();
  const entry = status.tokens.find((e) => e.identity === PP.identity && e.scope === PP.scope);
  assert.equal(entry?.expiresAt, new Date(exp).toISOString());
  assert.equal(entry?.valid, true);
  const gauge = metricValue(metrics, "entra_proxy_token_expiry_seconds", PP);
  assert.ok(
    gauge !== undefined && gauge <= (exp - before) / 1000 && gauge >= (exp - after) / 1000,
    `gauge ${gauge} s, exp in ${(exp - before) / 1000} s`,
  );
});
