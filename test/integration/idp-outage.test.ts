// The identity provider fails every token request for three token lifetimes: callers keep getting
// 200 while the cached token is valid, then 503 with Retry-After (never an expired token); token
// requests follow the back-off schedule; service resumes by itself when Entra recovers.
import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeJwt } from "jose";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

/** The `exp` of the bearer token in an Authorization header, in epoch ms. */
function expiryOf(authorization: string | undefined): number {
  const token = /^Bearer (\S+)$/.exec(authorization ?? "")?.[1];
  assert.ok(token, "the upstream received a bearer token");
  const { exp } = decodeJwt(token);
  assert.equal(typeof exp, "number");
  return exp! * 1000;
}

/**
 * Resolves in the second half of a wall-clock second: a token requested then has an `exp` (from an
 * `iat` rounded down) nearly a second before "request time + expires_in" rounded to the nearest second.
 */
async function secondHalfOfASecond(): Promise<void> {
  const phase = Date.now() % 1000;
  if (phase >= 550 && phase < 700) return;
  await new Promise((r) => setTimeout(r, (1550 - phase) % 1000));
}

test("IdP outage of 3× the token lifetime: serve while valid, 503 after, back off, recover", async (t) => {
  const lifetimeSec = 2;
  const marginMs = (lifetimeSec * 1000) / 10; // min(30 s, 10 % of the lifetime)
  const backoff = { initialMs: 200, maxMs: 1_000 };
  const stack = await startStack(t, {
    yaml: DEMO_ROUTES_YAML.replace("warmup: true", "warmup: false"),
    tokenLifetimeSec: lifetimeSec,
    backoff,
  });
  const emulator = stack.world.emulator;
  const upstream = stack.world.mocks.powerplatform;
  await secondHalfOfASecond();
  const ok = await stack.call("/powerplatform/x");
  assert.equal(ok.status, 200);
  await ok.arrayBuffer();
  const outageStart = Date.now();
  const tokenExpiry = expiryOf(upstream.requests[0]?.headers.authorization);
  emulator.inject({
    status: 503,
    body: { error: "temporarily_unavailable" },
    headers: { "Retry-After": "0" },
  });
  const outageMs = 3 * lifetimeSec * 1000;
  const seen: Array<{ sentAt: number; at: number; status: number; retryAfter: string | null }> = [];
  while (Date.now() - outageStart < outageMs) {
    const sentAt = Date.now();
    const res = await stack.call("/powerplatform/x");
    seen.push({ sentAt, at: Date.now(), status: res.status, retryAfter: res.headers.get("retry-after") });
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
  }
  const faulted = emulator.tokenRequests.filter((r) => r.outcome === "fault" && r.at >= outageStart).length;
  emulator.clearFaults();

  // At the upstream, against each token's own exp: no request ever arrived with an expired token.
  const late = upstream.requests
    .map((r) => ({ at: r.at, msAfterExp: r.at - expiryOf(r.headers.authorization), status: r.status }))
    .filter((r) => r.msAfterExp >= 0);
  assert.deepEqual(late, [], "requests that reached the upstream with an expired token");
  // While the token was usable (before its safety margin): 200. The token was requested late in a
  // second, so it has about 1.2 s of use: a loaded machine may fit only a few calls in.
  const beforeExpiry = seen.filter((s) => s.at < tokenExpiry - marginMs);
  assert.ok(
    beforeExpiry.length >= 3 && beforeExpiry.every((s) => s.status === 200),
    `200 while the token is valid: ${beforeExpiry.map((s) => s.status)}`,
  );
  // After expiry: only 503 token_unavailable with Retry-After.
  const afterExpiry = seen.filter((s) => s.sentAt >= tokenExpiry);
  assert.ok(afterExpiry.length > 10);
  assert.ok(
    afterExpiry.every((s) => s.status === 503 && Number(s.retryAfter) >= 1),
    `statuses after expiry: ${[...new Set(afterExpiry.map((s) => s.status))]}`,
  );
  assert.ok(!seen.some((s) => s.status === 401), "no 401 reached the caller");
  // Back-off: attempt n waits at least initial·2^(n-1)/2, capped at maxMs/2 … so in 6 s at most
  // 0.1+0.2+0.4+0.5·k s → about 13 attempts; a proxy without back-off would have made ~100.
  const bound = maxAttempts(outageMs, backoff);
  t.diagnostic(
    `token requests during the ${outageMs} ms outage: ${faulted} (back-off allows at most ${bound}); caller requests: ${seen.length}`,
  );
  assert.ok(faulted >= 3, `kept retrying (${faulted})`);
  assert.ok(faulted <= bound, `${faulted} token requests > ${bound}`);

  // Recovery without restart.
  let recovered = false;
  const recoveryStart = Date.now();
  while (!recovered && Date.now() - recoveryStart < 3_000) {
    const res = await stack.call("/powerplatform/x");
    recovered = res.status === 200;
    await res.arrayBuffer();
    if (!recovered) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(recovered, "service resumed after the IdP recovered");
  t.diagnostic(`recovered ${Date.now() - recoveryStart} ms after the IdP did`);
});

/** Most attempts the equal-jitter schedule allows in `windowMs` (each wait ≥ half its step). */
function maxAttempts(windowMs: number, policy: { initialMs: number; maxMs: number }): number {
  let elapsed = 0;
  let attempts = 1;
  for (let n = 1; ; n++) {
    elapsed += Math.min(policy.maxMs, policy.initialMs * 2 ** (n - 1)) / 2;
    if (elapsed > windowMs) return attempts;
    attempts++;
  }
}
