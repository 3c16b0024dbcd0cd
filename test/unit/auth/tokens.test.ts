import assert from "node:assert/strict";
import { test } from "node:test";
import type { AcquiredToken, TokenSource } from "../../../src/auth/credentials.ts";
import { TokenAcquisitionError } from "../../../src/auth/credentials.ts";
import { type AcquisitionEvent, TokenProvider } from "../../../src/auth/tokens.ts";
import { ProxyError } from "../../../src/errors.ts";
import { jwt } from "./jwt.ts";

/** A token source driven by the test: each acquire() waits for the test to settle it. */
class ScriptedSource implements TokenSource {
  readonly kind = "clientSecret" as const;
  calls = 0;
  private pending: Array<{ resolve(t: AcquiredToken): void; reject(e: unknown): void }> = [];
  acquire(): Promise<AcquiredToken> {
    this.calls++;
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject }));
  }
  succeed(token: AcquiredToken): void {
    for (const p of this.pending.splice(0)) p.resolve(token);
  }
  fail(error = "AADSTS7000215", retryAfterMs?: number): void {
    const failure = {
      error,
      aadsts: error.replace("AADSTS", ""),
      hint: "wrong secret",
      message: `${error}: Invalid client secret provided.`,
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    };
    for (const p of this.pending.splice(0)) p.reject(new TokenAcquisitionError(failure));
  }
}

function setup(start = 1_000_000) {
  let now = start;
  const source = new ScriptedSource();
  const events: AcquisitionEvent[] = [];
  const provider = new TokenProvider({
    identity: "app",
    scope: "https://api.powerplatform.com/.default",
    source,
    now: () => now,
    random: () => 0.5,
    onAcquisition: (e) => events.push(e),
  });
  return {
    source,
    events,
    provider,
    advance: (ms: number) => {
      now += ms;
    },
    now: () => now,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

test("200 concurrent cold requests cause exactly one token request", async (t) => {
  const { source, provider, now } = setup();
  t.after(() => provider.close());
  const waiting = Array.from({ length: 200 }, () => provider.get());
  await tick();
  assert.equal(source.calls, 1);
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 3_600_000 });
  const tokens = await Promise.all(waiting);
  assert.ok(tokens.every((t) => t === "tok-1"));
  assert.equal(source.calls, 1);
});

test("expiry is the token's exp, earlier than acquiredAt + expires_in, less the safety margin", async (t) => {
  const { source, provider, advance, now } = setup(1_000_700);
  t.after(() => provider.close());
  // Entra set iat (rounded down) before the answer travelled: exp = 1_060_000, while the answer
  // arrives at 1_000_900 with expires_in 60 → the old reckoning said 1_060_900.
  const iat = 1_000;
  const exp = iat + 60;
  const first = provider.get();
  advance(200);
  const acquiredAt = now();
  source.succeed({ accessToken: jwt({ iat, nbf: iat, exp }), expiresOn: acquiredAt + 60_000 });
  await first;
  assert.equal(provider.state().expiresOn, exp * 1000, "/status shows the token's exp");
  assert.equal(provider.secondsToExpiry(), (exp * 1000 - now()) / 1000, "the expiry gauge counts to exp");
  // Margin min(30 s, 10 % of 60 s) = 6 s: served until exp − 6 s, not a millisecond longer.
  advance(exp * 1000 - 6_000 - now() - 1);
  assert.ok(provider.peek());
  assert.equal(provider.state().valid, true);
  advance(1);
  assert.equal(provider.peek(), undefined, "counts as expired 6 s before exp");
  assert.equal(provider.state().valid, false);
  assert.ok(now() < acquiredAt + 60_000, "…long before acquiredAt + expires_in");
});

test("a token without exp expires expires_in after the request was sent, less the margin", async (t) => {
  const { source, provider, advance, now } = setup();
  t.after(() => provider.close());
  const requestedAt = now();
  const first = provider.get();
  advance(300);
  source.succeed({ accessToken: "opaque-token", expiresOn: requestedAt + 3_600_000 });
  await first;
  assert.equal(provider.state().expiresOn, requestedAt + 3_600_000);
  // One hour: margin 30 s; refresh when 5 min remain.
  assert.equal(provider.state().refreshAt, requestedAt + 3_300_000);
  advance(requestedAt + 3_570_000 - now() - 1);
  assert.equal(provider.peek(), "opaque-token");
  advance(1);
  assert.equal(provider.peek(), undefined);
});

test("a token near expiry is refreshed once in the background while it keeps being served", async (t) => {
  const { source, provider, advance, now, events } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 60_000 }); // refresh at +30 s
  assert.equal(await first, "tok-1");
  advance(31_000);
  // Many requests in the refresh window: all get the old, still valid token at once; one refresh starts.
  for (let i = 0; i < 50; i++) assert.equal(provider.peek(), "tok-1");
  assert.equal(source.calls, 2);
  source.succeed({ accessToken: "tok-2", expiresOn: now() + 60_000 });
  await tick();
  assert.equal(provider.peek(), "tok-2");
  assert.equal(source.calls, 2, "no second refresh until the new token reaches its refresh time");
  assert.deepEqual(
    events.map((e) => [e.trigger, e.result]),
    [
      ["initial", "success"],
      ["proactive", "success"],
    ],
  );
});

test("an expired token is never served; callers wait for a new one", async (t) => {
  const { source, provider, advance, now } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 10_000 });
  await first;
  advance(10_000); // exactly at expiry
  assert.equal(provider.peek(), undefined);
  const next = provider.get();
  await tick();
  source.succeed({ accessToken: "tok-2", expiresOn: now() + 10_000 });
  assert.equal(await next, "tok-2");
});

test("IdP failure keeps serving the valid token, backs off, and gives 503 token_unavailable once expired", async (t) => {
  const { source, provider, advance, now, events } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 60_000 });
  await first;
  advance(31_000);
  assert.equal(provider.peek(), "tok-1");
  source.fail("AADSTS7000215");
  await tick();
  // Backoff: 1st failure waits 0.75 s (equal jitter with random 0.5): no new attempt before then.
  advance(500);
  assert.equal(provider.peek(), "tok-1");
  assert.equal(source.calls, 2);
  advance(300);
  assert.equal(provider.peek(), "tok-1");
  assert.equal(source.calls, 3);
  source.fail("AADSTS7000215", 40_000); // Retry-After 40 s wins over the 1.5 s backoff (next try at +71.8 s)
  await tick();
  advance(18_000); // +49.8 s: still valid, still backing off
  assert.equal(provider.peek(), "tok-1");
  assert.equal(source.calls, 3);
  advance(10_200); // +60 s: expired
  assert.equal(provider.peek(), undefined, "expired at +60 s: never served");
  await assert.rejects(provider.get(), (err: unknown) => {
    assert.ok(err instanceof ProxyError);
    assert.equal(err.code, "token_unavailable");
    assert.equal(err.status, 503);
    assert.equal(err.headers["retry-after"], "12");
    const body = err.toProblem("rid");
    assert.equal(body.aadsts, "AADSTS7000215");
    assert.match(body.hint ?? "", /secret/);
    return true;
  });
  assert.equal(source.calls, 3, "a caller during back-off does not reach the IdP");
  advance(12_000);
  const recovered = provider.get();
  await tick();
  assert.equal(source.calls, 4);
  source.succeed({ accessToken: "tok-3", expiresOn: now() + 60_000 });
  assert.equal(await recovered, "tok-3");
  assert.deepEqual(
    events.map((e) => e.error),
    ["", "AADSTS7000215", "AADSTS7000215", ""],
  );
});

test("concurrent upstream 401s renew the token once", async (t) => {
  const { source, provider, now, events } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 3_600_000 });
  await first;
  const renewals = Array.from({ length: 100 }, () => provider.renewAfterRejection("tok-1"));
  await tick();
  assert.equal(source.calls, 2);
  source.succeed({ accessToken: "tok-2", expiresOn: now() + 3_600_000 });
  assert.ok((await Promise.all(renewals)).every((t) => t === "tok-2"));
  // A late 401 for the old token does not discard the new one.
  assert.equal(await provider.renewAfterRejection("tok-1"), "tok-2");
  assert.equal(source.calls, 2);
  assert.equal(events.at(-1)?.trigger, "upstream_401");
});

test("a caller waiting on a hung IdP gets token_unavailable after the acquire timeout", async (t) => {
  let now = 0;
  const source = new ScriptedSource();
  const provider = new TokenProvider({
    identity: "a",
    scope: "s",
    source,
    now: () => now,
    acquireTimeoutMs: 20,
  });
  t.after(() => provider.close());
  await assert.rejects(
    provider.get(),
    (err: unknown) => err instanceof ProxyError && err.code === "token_unavailable",
  );
  // The hung request is still the one in flight: a second caller does not start another.
  const second = provider.get();
  assert.equal(source.calls, 1);
  now += 1;
  source.succeed({ accessToken: "late", expiresOn: now + 60_000 });
  assert.equal(await second, "late");
});

test("a token obtained by a 401 renewal is not renewed again on a 401 for 30 s", async (t) => {
  const { source, provider, now, advance, events } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 3_600_000 });
  await first;
  // The first 401 on a token always renews it.
  const renewal = provider.renewAfterRejection("tok-1");
  await tick();
  source.succeed({ accessToken: "tok-2", expiresOn: now() + 3_600_000 });
  assert.equal(await renewal, "tok-2");
  // tok-2 came from a 401 renewal: for 30 s its 401s pass through, whatever other requests answer.
  for (let i = 0; i < 20; i++) {
    assert.equal(await provider.renewAfterRejection("tok-2"), "tok-2");
    advance(1_000);
  }
  assert.equal(source.calls, 2);
  advance(9_999); // 29.999 s after tok-2 was requested
  assert.equal(await provider.renewAfterRejection("tok-2"), "tok-2");
  advance(1);
  const later = provider.renewAfterRejection("tok-2");
  await tick();
  assert.equal(source.calls, 3);
  source.succeed({ accessToken: "tok-3", expiresOn: now() + 3_600_000 });
  assert.equal(await later, "tok-3");
  assert.equal(await provider.renewAfterRejection("tok-3"), "tok-3", "tok-3 is guarded in its turn");
  assert.equal(source.calls, 3);
  assert.deepEqual(
    events.map((e) => e.trigger),
    ["initial", "upstream_401", "upstream_401"],
  );
});

test("the first 401 on a proactively refreshed token renews it", async (t) => {
  const { source, provider, now, advance } = setup();
  t.after(() => provider.close());
  const first = provider.get();
  source.succeed({ accessToken: "tok-1", expiresOn: now() + 60_000 });
  await first;
  const renewal = provider.renewAfterRejection("tok-1");
  await tick();
  source.succeed({ accessToken: "tok-2", expiresOn: now() + 60_000 });
  await renewal;
  advance(31_000); // tok-2 reaches its refresh time
  assert.equal(provider.peek(), "tok-2");
  await tick();
  source.succeed({ accessToken: "tok-3", expiresOn: now() + 60_000 });
  await tick();
  assert.equal(provider.peek(), "tok-3");
  const renewed = provider.renewAfterRejection("tok-3");
  await tick();
  assert.equal(source.calls, 4);
  source.succeed({ accessToken: "tok-4", expiresOn: now() + 60_000 });
  assert.equal(await renewed, "tok-4");
});
