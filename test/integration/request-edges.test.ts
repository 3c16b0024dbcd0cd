// The edges of the request path (issues of hostile and lifecycle testing): flow routes reach only their
// trigger and returned status URLs, stalled bodies end in 408, departed callers send nothing upstream,
// in-flight limits survive reloads, caller-claimed identity headers are dropped, rewritten URLs never
// come from an untrusted Host, and absolute-form targets never reach the log.
import assert from "node:assert/strict";
import http from "node:http";
import { type TestContext, test } from "node:test";
import { DEMO_ROUTES_YAML, demoConfig } from "../../src/demo/stack.ts";
import { chunked, sendRaw } from "../helpers/raw-http.ts";
import { startStack } from "../helpers/stack.ts";

function withRouteOptions(extra: string, prefix = "/powerplatform"): string {
  return DEMO_ROUTES_YAML.replace(
    `  - prefix: ${prefix}\n`,
    `  - prefix: ${prefix}\n${extra
      .split("\n")
      .map((l) => `    ${l}`)
      .join("\n")}\n`,
  );
}

test("a flow route reaches its trigger by its methods and the workflow only through status URLs it returned", async (t) => {
  const stack = await startStack(t);
  const flow = stack.world.mocks.flow;
  const refused = [
    ["GET", "/flows/order-created/_workflow/triggers/manual/paths/invoke", 400],
    ["POST", "/flows/order-created/_workflow/triggers/other/paths/invoke", 405],
    ["POST", "/flows/order-created/_workflow", 405],
    ["GET", "/flows/order-created/_workflow", 400],
    ["GET", "/flows/order-created/_workflow/runs/1/operations/123?api-version=1", 400],
    ["GET", "/flows/order-created", 405],
  ] as const;
  for (const [method, path, status] of refused) {
    const res = await stack.call(path, { method });
    assert.equal(res.status, status, `${method} ${path}`);
    await res.arrayBuffer();
  }
  assert.equal(flow.requests.length, 0, "nothing reached the flow");
  const accepted = await stack.call("/flows/order-created/async", { method: "POST", body: "{}" });
  assert.equal(accepted.status, 202);
  await accepted.arrayBuffer();
  const location = accepted.headers.get("location")!;
  const poll = await fetch(location, { headers: { "x-api-key": stack.world.secrets.apiKey } });
  assert.equal(poll.status, 200, "the returned status URL is polled with GET");
  await poll.arrayBuffer();
  const post = await fetch(location, {
    method: "POST",
    body: "{}",
    headers: { "x-api-key": stack.world.secrets.apiKey },
  });
  assert.equal(post.status, 405, "but not with POST");
  await post.arrayBuffer();
  assert.equal(flow.requests.length, 2);
});

test("a caller stalled inside a small body gets 408 and frees its route slot; the connection is closed", async (t) => {
  const stack = await startStack(t, { yaml: withRouteOptions("timeoutMs: 500\nmaxConcurrent: 2") });
  const key = stack.world.secrets.apiKey;
  const head = (length: number) =>
    `POST /powerplatform/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\nContent-Length: ${length}\r\n\r\n`;
  const started = performance.now();
  const [small, large] = await Promise.all([
    sendRaw(stack.proxy.proxyUrl, `${head(100)}${"a".repeat(11)}`),
    sendRaw(stack.proxy.proxyUrl, `${head(100_000)}abc`),
  ]);
  const ms = performance.now() - started;
  // Both connections ended (sendRaw resolves on the server closing them), within a bound of the timeout.
  assert.ok(ms < 5_000, `closed after ${ms.toFixed(0)} ms`);
  for (const res of [small, large]) {
    assert.equal(res.status, 408, res.head);
    assert.equal(JSON.parse(res.body).code, "request_timeout");
    assert.match(res.head, /connection: close/i);
  }
  const after = await stack.call("/powerplatform/x");
  assert.equal(after.status, 200, "the stalled callers' slots are free again");
  await after.arrayBuffer();
  assert.ok(
    stack.world.mocks.powerplatform.requests.every((r) => r.method === "GET"),
    "no stalled body went upstream whole",
  );
});

test("refusals of requests without a body keep the caller's connection open for its next request", async (t) => {
  const stack = await startStack(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.after(() => agent.destroy());
  const get = (path: string, headers: Record<string, string>) =>
    new Promise<{ status: number; reused: boolean; connection: string | undefined }>((resolve, reject) => {
      const req = http.get(`${stack.proxy.proxyUrl}${path}`, { agent, headers }, (res) => {
        res.resume();
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            reused: req.reusedSocket,
            connection: res.headers.connection,
          }),
        );
      });
      req.on("error", reject);
    });
  const key = stack.world.secrets.apiKey;
  const answers = [
    await get("/powerplatform/x", {}), // 401: no key
    await get("/powerplatform/x", { "x-api-key": "wrong" }), // 403: invalid key
    await get("/nowhere", { "x-api-key": key }), // 404: no route
    await get("/powerplatform/x", { "x-api-key": key }), // 200
  ];
  assert.deepEqual(
    answers.map((a) => a.status),
    [401, 403, 404, 200],
  );
  for (const [i, a] of answers.entries()) {
    assert.notEqual(a.connection, "close", `answer ${i} keeps the connection`);
    if (i > 0) assert.ok(a.reused, `request ${i} went over the same connection`);
  }
});

test("callers that leave while their token is acquired send nothing upstream, and are logged with 499", async (t) => {
  const yaml = DEMO_ROUTES_YAML.replace("warmup: true", "warmup: false");
  const stack = await startStack(t, { yaml });
  const release = stack.world.emulator.inject({ delayMs: 1_500, times: 1 });
  t.after(release);
  const upstream = stack.world.mocks.powerplatform;
  const calls = Array.from({ length: 10 }, (_, i) =>
    stack
      .call(`/powerplatform/x/${i}`, { method: i % 2 ? "DELETE" : "GET", signal: AbortSignal.timeout(300) })
      .then(
        () => "answered",
        () => "gave up",
      ),
  );
  assert.deepEqual(new Set(await Promise.all(calls)), new Set(["gave up"]));
  // Once the token is there, a fresh request goes through: the departed ones must not have.
  const later = await stack.call("/powerplatform/later");
  assert.equal(later.status, 200);
  await later.arrayBuffer();
  assert.deepEqual(
    upstream.requests.map((r) => r.path),
    ["/later"],
  );
  const lines = stack.logs.filter((l) => l.includes('"msg":"request"') && l.includes('"status":499'));
  assert.equal(lines.length, 10, "each departed request is logged with 499");
});

test("in-flight counts survive reloads: maxConcurrent still holds after two reloads", async (t) => {
  const yaml = withRouteOptions("maxConcurrent: 2");
  const stack = await startStack(t, { yaml });
  const slow = () =>
    stack.call("/powerplatform/slow/800").then(async (r) => ({ status: r.status, body: await r.text() }));
  const first = [slow(), slow()];
  // Both are in flight at the upstream before the reloads.
  const upstream = stack.world.mocks.powerplatform;
  while (upstream.received < 2) await new Promise((r) => setTimeout(r, 10));
  const config = demoConfig(stack.world, yaml);
  await stack.proxy.reload(config);
  await stack.proxy.reload(config);
  const third = await slow();
  assert.equal(third.status, 503, third.body);
  assert.equal(JSON.parse(third.body).code, "overloaded");
  assert.deepEqual(
    (await Promise.all(first)).map((r) => r.status),
    [200, 200],
  );
});

test("identity headers a caller claims are dropped; the request id the proxy logs is the one sent upstream", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/powerplatform/x", {
    headers: {
      forwarded: "for=10.0.0.1;host=evil.example",
      "x-ms-client-principal": "eyJhdXRoX3R5cCI6ImFhZCJ9",
      "x-ms-client-principal-id": "00000000-0000-0000-0000-000000000001",
      "x-original-url": "/admin",
      "x-rewrite-url": "/admin",
      "x-real-ip": "10.0.0.1",
      "x-forwarded-client-cert": 'Hash=0f;Subject="CN=admin"',
      "x-arr-clientcert": "MIIBkTCB+wIJAK",
      "x-client-cert": "MIIBkTCB+wIJAK",
      "x-ssl-client-cert": "-----BEGIN%20CERTIFICATE-----",
      "x-envoy-external-address": "10.0.0.1",
      "x-original-forwarded-for": "10.0.0.1",
      "client-cert": ":MIIBkTCB+wIJAK:",
      "x-forwarded-tls-client-cert": "MIIBkTCB+wIJAK",
      "cf-connecting-ip": "10.0.0.1",
      x_real_ip: "10.0.0.1",
      x_ms_client_principal_name: "admin@contoso.example",
      "x-ms-token-aad-access-token": "eyJ0eXAiOiJKV1QifQ",
      "x-request-id": "bad id with spaces",
    },
  });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  const seen = stack.world.mocks.powerplatform.requests.at(-1)!;
  for (const name of [
    "forwarded",
    "x-ms-client-principal",
    "x-ms-client-principal-id",
    "x-original-url",
    "x-rewrite-url",
    "x-real-ip",
    "x-forwarded-client-cert",
    "x-arr-clientcert",
    "x-client-cert",
    "x-ssl-client-cert",
    "x-envoy-external-address",
    "x-original-forwarded-for",
    "client-cert",
    "x-forwarded-tls-client-cert",
    "cf-connecting-ip",
    "x_real_ip",
    "x_ms_client_principal_name",
  ]) {
    assert.equal(seen.headers[name], undefined, `${name} reached the upstream`);
  }
  const id = res.headers.get("x-request-id")!;
  assert.notEqual(id, "bad id with spaces");
  assert.equal(seen.headers["x-request-id"], id, "the upstream got the id the caller and the log got");
  assert.ok(stack.logs.some((l) => l.includes(`"requestId":"${id}"`)));
});

async function locationFor(t: TestContext, yaml: string, host: string): Promise<string> {
  const stack = await startStack(t, { yaml });
  const key = stack.world.secrets.apiKey;
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    `POST /powerplatform/jobs/async HTTP/1.1\r\nHost: ${host}\r\nX-Api-Key: ${key}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
  );
  assert.equal(res.status, 202, res.head);
  return /\r\nlocation: (\S+)/i.exec(res.head)![1]!;
}

test("rewritten Location never comes from an untrusted Host: publicHosts, else the listener's own address", async (t) => {
  const plain = await locationFor(t, DEMO_ROUTES_YAML, "evil.example");
  assert.match(plain, /^http:\/\/127\.0\.0\.1:\d+\/powerplatform\/jobs\/operations\/123$/);
  const listed = DEMO_ROUTES_YAML.replace(
    "  adminPort: 9090\n",
    "  adminPort: 9090\n  publicHosts: [proxy.contoso.example]\n",
  );
  assert.equal(
    await locationFor(t, listed, "proxy.contoso.example"),
    "http://proxy.contoso.example/powerplatform/jobs/operations/123",
  );
  assert.doesNotMatch(await locationFor(t, listed, "evil.example"), /evil/);
});

test("an absolute-form target with credentials is refused and its userinfo never reaches the log", async (t) => {
  const stack = await startStack(t);
  const key = stack.world.secrets.apiKey;
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    `GET http://erp:${key}@127.0.0.1/powerplatform/x HTTP/1.1\r\nHost: proxy\r\nConnection: close\r\n\r\n`,
  );
  assert.equal(res.status, 400);
  await new Promise((r) => setImmediate(r));
  assert.ok(
    stack.logs.some((l) => l.includes('"status":400')),
    "the request was logged",
  );
  assert.ok(!stack.logs.join("\n").includes(key), "the key in the target's userinfo was logged");
});

test("chunked bodies of 1 KiB and of exactly 64 KiB refused with 401 are replayed with a new token", async (t) => {
  // Each round revokes a token that a 401 renewal obtained moments ago: allow renewing it again.
  const stack = await startStack(t, { rejectionRenewalIntervalMs: 0 });
  const key = stack.world.secrets.apiKey;
  for (const size of [1024, 64 * 1024]) {
    await (await stack.call("/powerplatform/warm")).arrayBuffer();
    stack.world.mocks.powerplatform.revokeSeenTokens();
    const res = await sendRaw(
      stack.proxy.proxyUrl,
      `POST /powerplatform/import HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked("b".repeat(size))}`,
    );
    assert.equal(res.status, 200, `${size} bytes: ${res.head}`);
    assert.equal(JSON.parse(res.body).bodyBytes, size);
  }
});

test("the request line names the client, the bytes both ways, the upstream time, and for a refusal its code and reason", async (t) => {
  const stack = await startStack(t);
  const body = JSON.stringify({ rows: "r".repeat(2_000) });
  const ok = await stack.call("/powerplatform/import", { method: "POST", body });
  const answer = await ok.arrayBuffer();
  const denied = await stack.call("/powerplatform/x", { key: "not-the-key" });
  await denied.arrayBuffer();
  // Each line is written when its response closes, which the caller may see a moment before.
  const requestLines = () => stack.logs.filter((l) => l.includes('"msg":"request"'));
  while (requestLines().length < 2) await new Promise((r) => setTimeout(r, 5));
  const lines = requestLines().map((l) => JSON.parse(l) as Record<string, unknown>);
  const post = lines.find((l) => l.method === "POST")!;
  assert.equal(post.status, 200);
  assert.equal(post.clientIp, "127.0.0.1");
  assert.equal(post.bytesIn, Buffer.byteLength(body));
  assert.equal(post.bytesOut, answer.byteLength);
  assert.equal(typeof post.upstreamMs, "number");
  const refused = lines.find((l) => l.status === 403)!;
  assert.equal(refused.error, "access_denied");
  assert.equal(refused.reason, "invalid_key");
  assert.equal(refused.clientIp, "127.0.0.1");
});
