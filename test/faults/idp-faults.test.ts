// The identity provider misbehaving, one way at a time, on a cold cache: what callers see, how many
// token requests the proxy makes, and that no bad or expired token reaches the upstream.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateKeyPair, SignJWT } from "jose";
import type { Fault } from "../../src/demo/faults.ts";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

const COLD = DEMO_ROUTES_YAML.replace("warmup: true", "warmup: false");
const BACKOFF = { initialMs: 200, maxMs: 1_000 };
const WINDOW_MS = 2_000;

interface Case {
  name: string;
  fault: Fault | ((tokenFor: (aud: string) => Promise<string>) => Promise<Fault>);
  /** What callers get while the fault lasts. */
  status: number;
  code?: string;
  error?: RegExp;
  /** Token requests the proxy may make in the window (back-off bound, or exact). */
  maxTokenRequests: number;
}

const CASES: Case[] = [
  {
    name: "500 Internal Server Error",
    fault: { status: 500 },
    status: 503,
    code: "token_unavailable",
    maxTokenRequests: 6,
  },
  {
    name: "503 with Retry-After: 5",
    fault: { status: 503, headers: { "Retry-After": "5" } },
    status: 503,
    code: "token_unavailable",
    maxTokenRequests: 1, // Retry-After outlasts the window
  },
  {
    name: "429 with Retry-After: 5",
    fault: { status: 429, headers: { "Retry-After": "5" } },
    status: 503,
    code: "token_unavailable",
    maxTokenRequests: 1,
  },
  {
    name: "connection reset",
    fault: { drop: true },
    status: 503,
    code: "token_unavailable",
    error: /network/,
    maxTokenRequests: 6,
  },
  {
    name: "malformed JSON",
    fault: { malformed: true },
    status: 503,
    code: "token_unavailable",
    maxTokenRequests: 6,
  },
  {
    name: "token with the wrong audience",
    fault: async (tokenFor) => ({
      status: 200,
      body: {
        token_type: "Bearer",
        expires_in: 3600,
        ext_expires_in: 3600,
        access_token: await tokenFor("https://graph.microsoft.com"),
      },
    }),
    status: 401, // the upstream refuses it; the proxy renews once, then lets the 401 through
    maxTokenRequests: 3, // initial + one 401 renewal per second of the window
  },
];

for (const c of CASES) {
  test(`IdP fault: ${c.name}`, async (t) => {
    // 401-triggered renewals: at most one per second here (30 s by default), so recovery is quick.
    const stack = await startStack(t, { yaml: COLD, backoff: BACKOFF, rejectionRenewalIntervalMs: 1_000 });
    const { emulator } = stack.world;
    const fault =
      typeof c.fault === "function" ? await c.fault((aud) => emulator.issueToken({ aud })) : c.fault;
    emulator.inject({ ...fault, match: { grantType: "client_credentials" } });
    const started = Date.now();
    const seen: Array<{ status: number; code?: string; error?: string; retryAfter: string | null }> = [];
    while (Date.now() - started < WINDOW_MS) {
      const res = await stack.call("/powerplatform/x");
      const body = (await res.json().catch(() => ({}))) as { code?: string; detail?: string };
      seen.push({
        status: res.status,
        code: body.code,
        error: body.detail,
        retryAfter: res.headers.get("retry-after"),
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    const tokenRequests = emulator.tokenRequests.filter((r) => r.grantType === "client_credentials").length;
    t.diagnostic(
      `${c.name}: ${seen.length} caller requests → ${[...new Set(seen.map((s) => s.status))]}; token requests: ${tokenRequests}`,
    );
    assert.ok(
      seen.every((s) => s.status === c.status),
      `statuses ${[...new Set(seen.map((s) => s.status))]}`,
    );
    if (c.code) assert.ok(seen.every((s) => s.code === c.code && Number(s.retryAfter) >= 1));
    if (c.error)
      assert.ok(
        seen.some((s) => c.error!.test(s.error ?? "")),
        "names the failure",
      );
    assert.ok(tokenRequests >= 1 && tokenRequests <= c.maxTokenRequests, `${tokenRequests} token requests`);
    const upstream = stack.world.mocks.powerplatform.requests;
    assert.ok(upstream.every((r) => r.claims === null || r.claims.aud === "https://api.powerplatform.com"));
    if (c.status === 503) assert.equal(upstream.length, 0, "nothing was sent without a token");

    // Recovery without a restart.
    emulator.clearFaults();
    let status = 0;
    for (let i = 0; i < 80 && status !== 200; i++) {
      const res = await stack.call("/powerplatform/x");
      await res.arrayBuffer();
      status = res.status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status, 200, "recovers once the IdP does");
  });
}

test("IdP fault: a slow token endpoint (5 s) — callers wait for the one in-flight request", async (t) => {
  const stack = await startStack(t, { yaml: COLD });
  stack.world.emulator.inject({ delayMs: 5_000, times: 1 });
  const started = Date.now();
  const statuses = await Promise.all(
    Array.from({ length: 20 }, async () => {
      const res = await stack.call("/powerplatform/x");
      await res.arrayBuffer();
      return res.status;
    }),
  );
  assert.deepEqual(new Set(statuses), new Set([200]));
  const waited = Date.now() - started;
  assert.ok(waited >= 4_900, `answered after ${waited} ms`);
  t.diagnostic(`20 concurrent callers on a cold cache, token endpoint 5 s slow: all 200 after ${waited} ms`);
  assert.equal(
    stack.world.emulator.tokenRequests.filter((r) => r.grantType === "client_credentials").length,
    1,
  );
});

test("a forged token from the IdP (wrong signature) never reaches an upstream as valid", async (t) => {
  const stack = await startStack(t, { yaml: COLD, backoff: BACKOFF });
  const { privateKey } = await generateKeyPair("RS256");
  const forged = await new SignJWT({ aud: "https://api.powerplatform.com" })
    .setProtectedHeader({ alg: "RS256", kid: "not-the-emulator" })
    .setExpirationTime("1h")
    .sign(privateKey);
  stack.world.emulator.inject({
    status: 200,
    body: { token_type: "Bearer", expires_in: 3600, access_token: forged },
    match: { grantType: "client_credentials" },
  });
  const res = await stack.call("/powerplatform/x");
  assert.equal(res.status, 401, "the upstream refuses it and the caller sees its 401");
  await res.arrayBuffer();
  assert.ok(stack.world.mocks.powerplatform.requests.every((r) => r.claims === null));
});
