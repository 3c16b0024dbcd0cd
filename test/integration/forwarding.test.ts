import assert from "node:assert/strict";
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { connect, createServer } from "node:net";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { residentBytes, startIsolatedStack } from "../helpers/proxy-process.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

async function problem(res: Response): Promise<{ status: number; code: string }> {
  const body = (await res.json()) as { code: string; status: number };
  assert.equal(body.status, res.status);
  return { status: res.status, code: body.code };
}

test("path escapes, prefix non-matches and unknown routes get the right problem codes; nothing reaches upstream", async (t) => {
  const stack = await startStack(t);
  const cases: Array<[string, number, string]> = [
    ["/powerplatform/../powerapps/x", 400, "bad_path"],
    ["/powerplatform/%2e%2e/x", 400, "bad_path"],
    ["/powerplatform%2f..", 400, "bad_path"],
    ["/powerplatform/a%2f..%2fb", 400, "bad_path"],
    ["/powerplatformx/y", 404, "route_not_found"],
    ["/nothing-here", 404, "route_not_found"],
    ["/metrics", 404, "route_not_found"],
  ];
  for (const [path, status, code] of cases) {
    // fetch() would normalise "..": send the raw target over a socket instead.
    const res = await rawRequest(
      stack.proxy.proxyUrl,
      `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${stack.world.secrets.apiKey}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(res.status, status, path);
    assert.equal(JSON.parse(res.body).code, code, path);
    assert.match(res.headers, /content-security-policy/i, "helmet headers on the proxy's own responses");
  }
  assert.equal(stack.world.mocks.powerplatform.requests.length, 0);
  assert.equal(stack.world.mocks.powerapps.requests.length, 0);
});

test("access: no key → 401 with WWW-Authenticate; wrong key → 403; Basic password works", async (t) => {
  const stack = await startStack(t);
  const none = await stack.call("/powerplatform/x", { key: false });
  assert.equal(none.status, 401);
  assert.match(none.headers.get("www-authenticate") ?? "", /^Basic /);
  assert.deepEqual(await problem(none), { status: 401, code: "unauthenticated" });
  const wrong = await stack.call("/powerplatform/x", { key: "not-the-key" });
  assert.deepEqual(await problem(wrong), { status: 403, code: "access_denied" });
  const basic = await stack.call("/powerplatform/x", {
    key: false,
    headers: {
      authorization: `Basic ${Buffer.from(`erp:${stack.world.secrets.apiKey}`).toString("base64")}`,
    },
  });
  assert.equal(basic.status, 200);
  await basic.arrayBuffer();
  assert.equal(stack.world.mocks.powerplatform.requests.length, 1);
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_access_denied_total", {
      route: "/powerplatform",
      reason: "no_credential",
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_access_denied_total", {
      route: "/powerplatform",
      reason: "invalid_key",
    }),
    1,
  );
});

test("method not allowed on a flow route gives 405 with Allow", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/flows/order-created", { method: "GET" });
  assert.equal(res.headers.get("allow"), "POST");
  assert.deepEqual(await problem(res), { status: 405, code: "method_not_allowed" });
});

test("headers named in Connection are hop-by-hop and are not forwarded", async (t) => {
  const stack = await startStack(t);
  const res = await rawRequest(
    stack.proxy.proxyUrl,
    `GET /powerplatform/x HTTP/1.1\r\nHost: x\r\nX-Api-Key: ${stack.world.secrets.apiKey}\r\nConnection: close, X-Drop-Me\r\nX-Drop-Me: hop\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nX-Kept: yes\r\n\r\n`,
  );
  assert.equal(res.status, 200);
  const seen = stack.world.mocks.powerplatform.requests.at(-1)?.headers ?? {};
  assert.equal(seen["x-kept"], "yes");
  for (const name of ["x-drop-me", "keep-alive", "te"]) assert.equal(seen[name], undefined, name);
});

test("Expect: 100-continue is answered on the caller's hop and not forwarded", async (t) => {
  const stack = await startStack(t);
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest(`${stack.proxy.proxyUrl}/powerplatform/upload`, {
      method: "POST",
      headers: { "x-api-key": stack.world.secrets.apiKey, expect: "100-continue", "content-length": 5 },
    });
    req.once("continue", () => req.end("hello"));
    req.once("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.once("error", reject);
  });
  assert.equal(status, 200);
  const seen = stack.world.mocks.powerplatform.requests.at(-1);
  assert.equal(seen?.headers.expect, undefined);
  assert.equal(seen?.bodyBytes, 5);
});

test("upstream 429 and Retry-After pass through unchanged", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/powerapps/status/429");
  assert.equal(res.status, 429);
  assert.equal(res.headers.get("retry-after"), "7");
  await res.arrayBuffer();
});

test("upstream refused → 502 upstream_unreachable; slow upstream → 504 upstream_timeout", async (t) => {
  const closedPort = await new Promise<number>((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const yaml = `${DEMO_ROUTES_YAML}  - prefix: /dead
    upstream: http://127.0.0.1:${closedPort}
    scope: https://api.powerplatform.com/.default
    identity: platform-app
    access: { anonymous: true }
  - prefix: /slow
    upstream: \${POWERPLATFORM_UPSTREAM}
    scope: https://api.powerplatform.com/.default
    identity: platform-app
    timeoutMs: 300
    access: { anonymous: true }
`;
  const stack = await startStack(t, { yaml });
  assert.deepEqual(await problem(await stack.call("/dead/x")), { status: 502, code: "upstream_unreachable" });
  assert.deepEqual(await problem(await stack.call("/slow/slow/2000")), {
    status: 504,
    code: "upstream_timeout",
  });
  const metrics = await stack.metrics();
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_errors_total", {
      route: "/dead",
      code: "upstream_unreachable",
    }),
    1,
  );
  assert.equal(
    metricValue(metrics, "entra_proxy_upstream_errors_total", { route: "/slow", code: "upstream_timeout" }),
    1,
  );
});

test("bodies stream through: the proxy's RSS growth stays far below the body size and does not grow with it", async (t) => {
  // The proxy in a process of its own, so its RSS is not mixed with the client's and the mocks'.
  // /bulk is /powerplatform with a body limit above the 100 MiB default.
  const yaml = `${DEMO_ROUTES_YAML}  - prefix: /bulk
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    maxBodyBytes: 1073741824
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;
  const { world, proxy } = await startIsolatedStack(t, { yaml });
  const target: Target = { proxyUrl: proxy.proxyUrl, apiKey: world.secrets.apiKey, prefix: "/bulk" };
  const MiB = 1024 * 1024;
  /** Peak RSS growth of the proxy over its settled RSS while `size` bytes go up and `size` down at once. */
  const growthDuring = async (size: number): Promise<number> => {
    await proxy.memory();
    const before = residentBytes(proxy.pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, residentBytes(proxy.pid));
    }, 10);
    try {
      const [echo, received] = await Promise.all([upload(target, size), download(target, size)]);
      assert.equal(echo.bodyBytes, size, "the mock hashed the whole upload");
      assert.equal(received, size);
    } finally {
      clearInterval(sampler);
    }
    return (Math.max(peak, residentBytes(proxy.pid)) - before) / MiB;
  };
  await growthDuring(8 * MiB); // JIT, sockets, token and the allocator settle
  const started = performance.now();
  const small = await growthDuring(100 * MiB);
  const large = await growthDuring(400 * MiB);
  t.diagnostic(
    `proxy RSS growth: ${small.toFixed(1)} MiB during 100 MiB up + down, ${large.toFixed(1)} MiB during 400 MiB up + down (${((performance.now() - started) / 1000).toFixed(1)} s; the fine-grained figure is npm run bench's)`,
  );
  // A proxy that held a body would grow by at least the body (400 MiB); a streaming one holds a few
  // chunks plus whatever garbage V8 has not collected yet, which depends on the machine but not on
  // the body's size. Both bounds leave a factor of two either way.
  assert.ok(large < 200, `RSS grew ${large.toFixed(1)} MiB while 400 MiB went through each way`);
  assert.ok(
    large - small < 150,
    `RSS growth rose from ${small.toFixed(1)} to ${large.toFixed(1)} MiB with 4 times the body`,
  );
});

interface Target {
  proxyUrl: string;
  apiKey: string;
  /** Route prefix, e.g. /bulk */
  prefix: string;
}

/** Streams `size` bytes with backpressure (node:http, not fetch, so the client buffers nothing either). */
async function upload({ proxyUrl, apiKey, prefix }: Target, size: number): Promise<{ bodyBytes: number }> {
  const chunk = Buffer.alloc(64 * 1024, 7);
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${proxyUrl}${prefix}/upload`, {
      method: "POST",
      headers: { "x-api-key": apiKey, "content-type": "application/octet-stream" },
    });
    req.on("response", async (res) => {
      let text = "";
      for await (const part of res) text += part;
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}: ${text}`));
      else resolve(JSON.parse(text));
    });
    req.on("error", reject);
    let sent = 0;
    pipeline(
      Readable.from(
        (function* () {
          for (; sent < size; sent += chunk.length) yield chunk;
        })(),
      ),
      req,
    ).catch(reject);
  });
}

async function download({ proxyUrl, apiKey, prefix }: Target, size: number): Promise<number> {
  const res = await fetch(`${proxyUrl}${prefix}/bytes/${size}`, { headers: { "x-api-key": apiKey } });
  let received = 0;
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) received += part.length;
  return received;
}

test("admin port: healthz, readyz after warm-up, metrics; X-Request-Id kept when well-formed", async (t) => {
  const stack = await startStack(t);
  assert.equal((await fetch(`${stack.proxy.adminUrl}/healthz`)).status, 200);
  let ready = 503;
  for (let i = 0; i < 50 && ready !== 200; i++) {
    ready = (await fetch(`${stack.proxy.adminUrl}/readyz`)).status;
    if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(ready, 200);
  const res = await stack.call("/powerplatform/x", { headers: { "x-request-id": "erp-batch-42" } });
  await res.arrayBuffer();
  assert.equal(res.headers.get("x-request-id"), "erp-batch-42");
  const bad = await stack.call("/powerplatform/x", { headers: { "x-request-id": "bad id with spaces" } });
  await bad.arrayBuffer();
  assert.notEqual(bad.headers.get("x-request-id"), "bad id with spaces");
  assert.ok(stack.logs.some((l) => l.includes('"requestId":"erp-batch-42"')));
  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as { routes: unknown[] };
  assert.equal(status.routes.length, 4);
});

/** Sends a request exactly as written (fetch would normalise paths and drop Connection headers). */
async function rawRequest(
  base: string,
  request: string,
): Promise<{ status: number; headers: string; body: string }> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(request));
    let data = "";
    socket.on("data", (d) => {
      data += d.toString();
    });
    socket.on("error", reject);
    socket.on("end", () => {
      const [head = "", ...rest] = data.split("\r\n\r\n");
      const status = Number(head.split(" ")[1]);
      let body = rest.join("\r\n\r\n");
      if (/transfer-encoding: chunked/i.test(head))
        body = body.replace(/^[0-9a-f]+\r\n/i, "").replace(/\r\n0\r\n\r\n$/, "");
      resolve({ status, headers: head, body });
    });
  });
}

test("Set-Cookie of the upstream's own domain is dropped; others pass", async (t) => {
  const stack = await startStack(t);
  const res = await stack.call("/powerplatform/x/set-cookie");
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  assert.deepEqual(res.headers.getSetCookie(), ["tracking=1; Domain=partner.example; Path=/"]);
});

test("after a major collection, finished requests die young: the old generation does not fill with them", async (t) => {
  // A full collection moves whatever is live — including the proxy's own long-lived structures —
  // to the old generation. A structure there that kept pointing at finished requests (a Set's
  // replaced hash tables did: src/proxy/forward.ts, inFlight) made young collections keep every
  // request alive until the next major one, so each request was promoted.
  const { world, proxy } = await startIsolatedStack(t);
  const agent = new HttpAgent({ keepAlive: true, maxSockets: 25 });
  t.after(() => agent.destroy());
  const get = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${proxy.proxyUrl}/powerplatform/items/${i % 50}`, {
        agent,
        headers: { "x-api-key": world.secrets.apiKey },
      });
      req.on("response", (res) => {
        res.resume();
        res.on("end", () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`)),
        );
      });
      req.on("error", reject);
      req.end();
    });
  const load = async (requests: number) => {
    let next = 0;
    const worker = async () => {
      while (next < requests) await get(next++);
    };
    await Promise.all(Array.from({ length: 25 }, worker));
  };
  await load(2_000); // JIT, sockets, token: settled
  await proxy.memory(); // full collections: everything live is now old
  const oldSpace = proxy.watchOldSpace();
  const started = performance.now();
  await load(6_000);
  const added = await oldSpace.stop();
  const seconds = (performance.now() - started) / 1000;
  const perRequest = added.bytes / 6_000;
  t.diagnostic(
    `6,000 requests in ${seconds.toFixed(1)} s: old generation +${(added.bytes / 1048576).toFixed(1)} MiB (${perRequest.toFixed(0)} bytes per request), ${added.shrinks} samples after a major GC`,
  );
  assert.ok(perRequest < 1_000, `${perRequest.toFixed(0)} bytes per request reached the old generation`);
});
