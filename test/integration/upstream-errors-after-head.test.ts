// An upstream answer that breaks after its head — a reset, or a body that stalls past timeoutMs — is
// that response's own failure. When the answer was a 401 or a 429 the proxy is already replaying the
// request, and the replay's answer is what the caller gets; a broken 2xx cuts the caller's response.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, connect, createServer as createNetServer } from "node:net";
import { type TestContext, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { metricValue, type Stack, startStack } from "../helpers/stack.ts";

type Handler = (req: IncomingMessage, res: ServerResponse, nth: number) => void;

/** A proxy whose route /u goes to an upstream answering the nth request to a path with `handler`. */
async function stackWith(
  t: TestContext,
  handler: Handler,
  routeOptions = "",
): Promise<Stack & { hits: () => number }> {
  let hits = 0;
  const upstream = createServer((req, res) => {
    hits++;
    req.resume();
    handler(req, res, hits);
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => upstream.once("listening", resolve));
  t.after(() => upstream.close());
  t.after(() => upstream.closeAllConnections());
  const stack = await stackFor(
    t,
    upstream,
    `    timeoutMs: 500\n    retryThrottled: { maxWaitMs: 5000, attempts: 3 }\n${routeOptions}`,
  );
  return { ...stack, hits: () => hits };
}

/** A proxy whose anonymous route /u goes to the listening `upstream`, with `routeOptions` (YAML lines) added. */
function stackFor(t: TestContext, upstream: { address(): unknown }, routeOptions: string): Promise<Stack> {
  const yaml = `${DEMO_ROUTES_YAML}  - prefix: /u
    upstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}
    scope: https://api.powerplatform.com/.default
    identity: platform-app
    access: { anonymous: true }
${routeOptions}`;
  return startStack(t, { yaml });
}

/** A response head and the first byte of a 1,000-byte body, the connection reset `afterMs` later. */
function headThenReset(
  res: ServerResponse,
  status: number,
  headers: Record<string, string>,
  afterMs: number,
) {
  res.writeHead(status, { ...headers, "content-length": "1000" });
  res.write("{");
  setTimeout(() => res.socket?.resetAndDestroy(), afterMs);
}

/** The request's log line once it is written (on the response's close). */
async function requestLine(stack: Stack, path: string): Promise<Record<string, unknown>> {
  for (let waited = 0; waited < 5_000; waited += 20) {
    const line = stack.logs.find((l) => l.includes('"msg":"request"') && l.includes(`"path":"${path}"`));
    if (line) return JSON.parse(line) as Record<string, unknown>;
    await sleep(20);
  }
  throw new Error(`no request line for ${path}`);
}

test("a 429 whose connection resets during the pause is still replayed; the caller gets the replay's answer", async (t) => {
  const stack = await stackWith(t, (_req, res, nth) => {
    if (nth === 1) headThenReset(res, 429, { "retry-after": "1" }, 30);
    else res.end("ok");
  });
  const res = await stack.call("/u/x");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
  assert.equal(stack.hits(), 2);
  const line = await requestLine(stack, "/u/x");
  assert.equal(line.retried, true);
  assert.equal(line.error, undefined);
});

test("a 401 whose connection resets while the retry is in flight: the caller gets the retry's answer, no internal error", async (t) => {
  const stack = await stackWith(t, (_req, res, nth) => {
    if (nth === 1) headThenReset(res, 401, { "www-authenticate": 'Bearer error="invalid_token"' }, 100);
    else setTimeout(() => res.end("ok"), 400);
  });
  const res = await stack.call("/u/x");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "ok");
  const line = await requestLine(stack, "/u/x");
  assert.equal(line.retried, true);
  assert.equal(line.error, undefined);
  assert.ok(!stack.logs.some((l) => l.includes('"msg":"internal error"')), "no internal error logged");
});

test("a 401 whose body stalls past timeoutMs does not cut the retry's answer", async (t) => {
  const stack = await stackWith(t, (_req, res, nth) => {
    if (nth === 1) {
      res.writeHead(401, { "www-authenticate": 'Bearer error="invalid_token"', "content-length": "1000" });
      res.write("{"); // and nothing more: the idle sweep cuts it after timeoutMs
      return;
    }
    // The retry's body trickles for longer than timeoutMs, never idle that long.
    res.writeHead(200, { "content-length": "15" });
    let sent = 0;
    const timer = setInterval(() => {
      res.write("x");
      if (++sent === 15) {
        clearInterval(timer);
        res.end();
      }
    }, 100);
  });
  const res = await stack.call("/u/x");
  assert.equal(res.status, 200);
  assert.equal(await res.text(), "x".repeat(15));
});

test("a 200 reset mid-body cuts the caller's response and is logged as upstream_reset", async (t) => {
  const stack = await stackWith(t, (_req, res) => headThenReset(res, 200, {}, 30));
  const res = await stack.call("/u/x");
  assert.equal(res.status, 200);
  await assert.rejects(res.text(), "the caller never gets a short body that looks complete");
  const line = await requestLine(stack, "/u/x");
  assert.equal(line.error, "upstream_reset");
  const metrics = await stack.metrics();
  for (const code of ["upstream_unreachable", "upstream_timeout"]) {
    assert.equal(metricValue(metrics, "entra_proxy_upstream_errors_total", { route: "/u", code }), undefined);
  }
});

test("rewriteLinks: a body held for rewriting that breaks off or stalls gets the caller a 502 or 504, not silence", async (t) => {
  const json = { "content-type": "application/json" };
  for (const [name, handler, status, code] of [
    ["reset", (res: ServerResponse) => headThenReset(res, 200, json, 30), 502, "upstream_unreachable"],
    [
      "stall",
      (res: ServerResponse) => {
        res.writeHead(200, { ...json, "content-length": "1000" });
        res.write("{"); // and nothing more: the idle sweep cuts it after timeoutMs
      },
      504,
      "upstream_timeout",
    ],
  ] as const) {
    await t.test(name, async (t) => {
      const stack = await stackWith(t, (_req, res) => handler(res), "    rewriteLinks: true\n");
      const res = await stack.call("/u/x");
      assert.equal(res.status, status);
      assert.equal(((await res.json()) as { code: string }).code, code);
      const line = await requestLine(stack, "/u/x");
      assert.equal(line.error, code);
      const metrics = await stack.metrics();
      assert.equal(metricValue(metrics, "entra_proxy_upstream_errors_total", { route: "/u", code }), 1);
      assert.equal(metricValue(metrics, "entra_proxy_in_flight_requests", { route: "/u" }), 0);
    });
  }
});

test("rewriteLinks: a caller that leaves while the body is held is a 499, not an upstream error", async (t) => {
  const stack = await stackWith(
    t,
    (_req, res) => {
      res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
      // A healthy upstream, just slow: a byte every 100 ms.
      const timer = setInterval(() => res.write(" "), 100);
      res.on("close", () => clearInterval(timer));
    },
    "    rewriteLinks: true\n",
  );
  const leave = new AbortController();
  setTimeout(() => leave.abort(), 300);
  await assert.rejects(stack.call("/u/x", { signal: leave.signal }));
  const line = await requestLine(stack, "/u/x");
  assert.equal(line.status, 499);
  const metrics = await stack.metrics();
  for (const code of ["upstream_unreachable", "upstream_timeout"]) {
    assert.equal(metricValue(metrics, "entra_proxy_upstream_errors_total", { route: "/u", code }), undefined);
  }
});

test("an upload refused (413) while a 401's token renewal is under way gets no second answer when the renewal ends", async (t) => {
  // A raw upstream: GET gets 200; POST gets 401 at once, and the upload goes on being read.
  const upstream = createNetServer((socket) => {
    socket.once("data", (first: Buffer) =>
      socket.write(
        first.toString("latin1").startsWith("GET")
          ? "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
          : 'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{"error":"nope"}',
      ),
    );
    socket.resume();
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => upstream.once("listening", resolve));
  t.after(() => upstream.close());
  const stack = await stackFor(t, upstream, "    maxBodyBytes: 100000\n");
  // Once the route's token is in use (and every warm-up is over), the next token request is slow.
  assert.equal((await stack.call("/u/warm")).status, 200);
  stack.world.emulator.inject({ delayMs: 1500, times: 1 });
  const { port } = new URL(stack.proxy.proxyUrl);
  const chunk = (n: number) => `${n.toString(16)}\r\n${"a".repeat(n)}\r\n`;
  const received = await new Promise<string>((resolve) => {
    const socket = connect(Number(port), "127.0.0.1", () => {
      socket.write(`POST /u/upload HTTP/1.1\r\nHost: p\r\nTransfer-Encoding: chunked\r\n\r\n${chunk(70000)}`);
      // Over maxBodyBytes while the renewal waits on the slow token endpoint.
      setTimeout(() => socket.write(chunk(40000)), 400);
    });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
    });
    socket.on("error", () => {});
    // Past the renewal's end: whatever the proxy writes by then is in.
    setTimeout(() => {
      socket.destroy();
      resolve(data);
    }, 2_500);
  });
  assert.match(received, /^HTTP\/1\.1 413 /);
  assert.equal(received.match(/HTTP\/1\.1 /g)?.length, 1, "one answer");
  assert.ok(!stack.logs.some((l) => l.includes('"msg":"internal error"')), "no internal error logged");
});
