// Mock Microsoft APIs: they check tokens like the real services and record what the proxy sends.
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { request } from "node:http";
import { test } from "node:test";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { generateKeyPair, SignJWT } from "jose";
import { flowTriggerPath, MockUpstream, startMockMicrosoftApis } from "../../../src/demo/upstreams.ts";
import { startEmulator, TENANT } from "./fixtures.ts";

const PP = "https://api.powerplatform.com";
const CLIENT_ID = "33333333-aaaa-4bbb-8ccc-000000000003";
const SECRET = "mock-secret";

async function setUp(t: import("node:test").TestContext, extra: { allowedObjectIds?: string[] } = {}) {
  let now = Date.parse("2026-02-01T10:00:00Z");
  const clock = { now: () => now, advance: (ms: number) => (now += ms) };
  const emulator = await startEmulator(t, { now: clock.now });
  const mock = await MockUpstream.start({
    name: "powerplatform",
    audience: PP,
    jwks: emulator.publicJwks(),
    now: clock.now,
    ...extra,
  });
  t.after(() => mock.close());
  const token = await emulator.issueToken({ aud: PP, tid: TENANT });
  const get = (path: string, bearer: string | null = token, init: RequestInit = {}) =>
    fetch(`${mock.url}${path}`, {
      ...init,
      headers: bearer === null ? {} : { authorization: `Bearer ${bearer}` },
      redirect: "manual",
    });
  return { emulator, mock, token, get, clock };
}

test("a valid token gets the echo; authorization is redacted in the echo but recorded", async (t) => {
  const { mock, token, get } = await setUp(t);
  const res = await fetch(`${mock.url}/base/environments?api-version=2023-06-01`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "x-custom": "1", "content-type": "application/json" },
    body: '{"a":1}',
  });
  assert.equal(res.status, 200);
  const echo = (await res.json()) as {
    service: string;
    method: string;
    path: string;
    query: string;
    headers: Record<string, string>;
    bodyBytes: number;
    bodySha256: string;
    token: Record<string, unknown>;
  };
  assert.equal(echo.service, "powerplatform");
  assert.equal(echo.method, "POST");
  assert.equal(echo.path, "/base/environments");
  assert.equal(echo.query, "api-version=2023-06-01");
  assert.equal(echo.headers.authorization, "<redacted>");
  assert.equal(echo.headers["x-custom"], "1");
  assert.equal(echo.bodyBytes, 7);
  assert.equal(echo.bodySha256, createHash("sha256").update('{"a":1}').digest("hex"));
  assert.equal(echo.token.aud, PP);
  assert.equal(echo.token.tid, TENANT);

  const [received] = mock.requests;
  assert.equal(received?.headers.authorization, `Bearer ${token}`);
  assert.equal(received?.claims?.["aud"], PP);
  assert.equal(received?.status, 200);
  assert.equal((await get("/x")).status, 200);
  mock.reset();
  assert.equal(mock.requests.length, 0);
});

test("wrong aud, expired, foreign signature and missing tokens get 401 with WWW-Authenticate", async (t) => {
  const { emulator, get, clock, mock } = await setUp(t);
  const { privateKey } = await generateKeyPair("RS256");
  const kid = emulator.publicJwks().keys[0]!.kid!;
  const foreign = await new SignJWT({ aud: PP, exp: Math.floor(clock.now() / 1000) + 600 })
    .setProtectedHeader({ alg: "RS256", kid })
    .sign(privateKey);
  const cases: Array<[string, string | null, RegExp]> = [
    ["wrong aud", await emulator.issueToken({ aud: "https://service.powerapps.com/" }), /audience/],
    ["aud with a trailing slash", await emulator.issueToken({ aud: `${PP}/` }), /audience/],
    ["foreign signature", foreign, /signature/],
    ["missing", null, /missing/],
    ["garbage", "abc.def.ghi", /malformed/],
  ];
  for (const [label, bearer, reason] of cases) {
    const res = await get("/x", bearer);
    assert.equal(res.status, 401, label);
    const header = res.headers.get("www-authenticate") ?? "";
    assert.match(header, /^Bearer error="invalid_token", error_description="[^"]+"$/, label);
    assert.match(header, reason, label);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "InvalidAuthenticationToken", label);
  }

  const token = await emulator.issueToken({ aud: PP });
  assert.equal((await get("/x", token)).status, 200);
  clock.advance(3601_000);
  const expired = await get("/x", token);
  assert.equal(expired.status, 401);
  assert.match(expired.headers.get("www-authenticate") ?? "", /expired/);
  assert.deepEqual(
    mock.requests.map((r) => [r.status, r.claims === null]),
    [...cases.map(() => [401, true]), [200, false], [401, true]],
  );
});

test("special paths: status, slow, bytes, async, always401, redirect", async (t) => {
  const { mock, get } = await setUp(t);

  const throttled = await get("/api/status/429");
  assert.equal(throttled.status, 429);
  assert.equal(throttled.headers.get("retry-after"), "7");
  assert.equal((await get("/api/status/503")).headers.get("retry-after"), "7");
  assert.equal((await get("/api/status/204")).status, 204);

  const started = performance.now();
  assert.equal((await get("/api/slow/120")).status, 200);
  assert.ok(performance.now() - started >= 110);

  const bytes = await get("/files/bytes/200000");
  const data = Buffer.from(await bytes.arrayBuffer());
  assert.equal(data.length, 200_000);
  assert.equal(data[70_000], 70_000 % 256);

  const accepted = await get("/base/path/async");
  assert.equal(accepted.status, 202);
  for (const name of ["location", "operation-location", "azure-asyncoperation"]) {
    assert.equal(accepted.headers.get(name), `${mock.url}/base/path/operations/123`);
  }
  assert.equal((await get("/base/path/operations/123")).status, 200);

  const denied = await get("/v1/always401");
  assert.equal(denied.status, 401);
  assert.match(denied.headers.get("www-authenticate") ?? "", /invalid_token/);

  const redirect = await get("/v1/redirect");
  assert.equal(redirect.status, 302);
  assert.equal(redirect.headers.get("location"), `${mock.url}/v1/redirected`);

  const page = (await (await get("/v1/paged")).json()) as Record<string, string>;
  assert.equal(page["@odata.nextLink"], `${mock.url}/v1/paged?page=2`);
});

test("a 50 MiB upload is hashed while streaming, never held in memory", async (t) => {
  const { mock, token } = await setUp(t);
  const gc = exposeGc();
  const chunk = Buffer.alloc(1024 * 1024, 7);
  const expected = createHash("sha256");
  const total = 50;
  const baseline = await settledArrayBuffers(gc);
  let midUpload = 0;
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      `${mock.url}/upload`,
      { method: "PUT", headers: { authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        if (sent === 40 && midUpload === 0) {
          // 40 MiB have gone through backpressure; a buffering server would be holding them now.
          // V8 frees ArrayBuffer memory on a background sweeper, so settle before reading it.
          void settledArrayBuffers(gc).then((bytes) => {
            midUpload = Math.max(1, bytes - baseline);
            pump();
          }, reject);
          return;
        }
        sent += 1;
        expected.update(chunk);
        if (!req.write(chunk)) return void req.once("drain", pump);
      }
      req.end();
    };
    pump();
  });
  assert.equal(status, 200);
  const [received] = mock.requests;
  assert.equal(received?.bodyBytes, total * chunk.length);
  assert.equal(received?.bodySha256, expected.digest("hex"));
  assert.ok(midUpload < 16 * 1024 * 1024, `${midUpload} bytes held mid-upload`);
});

async function settledArrayBuffers(gc: () => void): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return process.memoryUsage().arrayBuffers;
}

function exposeGc(): () => void {
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

test("allowedObjectIds: other callers get 403 like a flow shared with specific users", async (t) => {
  const allowed = randomUUID();
  const { emulator, get } = await setUp(t, { allowedObjectIds: [allowed] });
  assert.equal((await get("/x", await emulator.issueToken({ aud: PP, oid: allowed }))).status, 200);
  const denied = await get("/x", await emulator.issueToken({ aud: PP, oid: randomUUID() }));
  assert.equal(denied.status, 403);
  assert.equal(((await denied.json()) as { error: { code: string } }).error.code, "MisMatchingOAuthClaims");
});

test("startMockMicrosoftApis: each mock accepts the token Entra issues for the service's documented scope", async (t) => {
  const emulator = await startEmulator(t);
  emulator.addApp({ tenantId: TENANT, clientId: CLIENT_ID, clientSecrets: [SECRET] });
  const mocks = await startMockMicrosoftApis(emulator);
  t.after(() => Promise.all(Object.values(mocks).map((m) => m.close())));
  assert.deepEqual(Object.keys(mocks).sort(), ["flow", "lcs", "powerapps", "powerplatform"]);
  // The scopes from the design's preset table, exactly as Microsoft documents them.
  const scopes = {
    powerplatform: "https://api.powerplatform.com/.default",
    powerapps: "https://service.powerapps.com//.default",
    flow: "https://service.flow.microsoft.com//.default",
    lcs: "https://lcsapi.lcs.dynamics.com//.default",
  };
  for (const [name, scope] of Object.entries(scopes)) {
    const mock = mocks[name as keyof typeof mocks];
    const tokenRes = await fetch(emulator.tokenEndpoint(TENANT), {
      method: "POST",
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: CLIENT_ID,
        client_secret: SECRET,
        scope,
      }),
    });
    const { access_token } = (await tokenRes.json()) as { access_token: string };
    const ok = await fetch(`${mock.url}/x`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(ok.status, 200, name);
    const other = mocks[name === "flow" ? "lcs" : "flow"];
    const wrong = await fetch(`${other.url}/x`, { headers: { authorization: `Bearer ${access_token}` } });
    assert.equal(wrong.status, 401, `${name} token at ${other.name}`);
  }
  const trigger = `${flowTriggerPath("0c8a11d4")}?api-version=1`;
  const res = await fetch(`${mocks.flow.url}${trigger}`, {
    method: "POST",
    headers: { authorization: `Bearer ${await emulator.issueToken({ aud: mocks.flow.audience })}` },
    body: "{}",
  });
  assert.equal(((await res.json()) as { path: string }).path, flowTriggerPath("0c8a11d4"));
});
