// No caller byte reaches an upstream outside a correctly framed request (design.md, Forwarding rules).
// A keep-alive upstream records every request its parser saw per connection: a smuggled request would
// appear there as an extra request, riding on another caller's connection and token.
import assert from "node:assert/strict";
import { type AddressInfo, connect, createServer as createNetServer } from "node:net";
import { test } from "node:test";
import { chunked, sendRaw } from "../helpers/raw-http.ts";
import { startRecordingUpstream } from "../helpers/recording-upstream.ts";
import { PLATFORM_APP_YAML, startStack } from "../helpers/stack.ts";

const YAML = `listen: { host: 127.0.0.1 }
warmup: true
${PLATFORM_APP_YAML}  - prefix: /a
    service: powerplatform
    upstream: \${RAW_UPSTREAM}/base
    identity: platform-app
    methods: [GET, HEAD, POST, OPTIONS, DELETE]
    paths: ["/allowed/**"]
    maxBodyBytes: 1024
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /b
    service: powerplatform
    upstream: \${RAW_UPSTREAM}/base
    identity: platform-app
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;

const SMUGGLED =
  "POST /base/forbidden/x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n";

async function setUp(t: import("node:test").TestContext) {
  const upstream = await startRecordingUpstream(t);
  const stack = await startStack(t, { yaml: YAML, env: { RAW_UPSTREAM: upstream.url } });
  const key = stack.world.secrets.apiKey;
  const request = (method: string, path: string, extra = "", body = "") =>
    `${method} ${path} HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\n${extra}Connection: close\r\n\r\n${body}`;
  return { upstream, stack, request };
}

function assertNothingSmuggled(upstream: Awaited<ReturnType<typeof startRecordingUpstream>>): void {
  for (const r of upstream.requests) {
    assert.ok(r.url.startsWith("/base/"), `unexpected upstream request ${r.method} ${r.url}`);
    assert.ok(!r.url.includes("forbidden") && !r.url.includes("admin"), `smuggled ${r.method} ${r.url}`);
  }
  for (const [connection, bytes] of upstream.raw) {
    assert.ok(!bytes.includes("/admin/secret"), `connection ${connection} carried the smuggled bytes`);
    assert.ok(!bytes.includes("/base/forbidden"), `connection ${connection} carried the smuggled bytes`);
  }
}

test("a body on GET, HEAD, DELETE or OPTIONS is refused with 400 and never reaches the upstream, however it is framed", async (t) => {
  const { upstream, stack, request } = await setUp(t);
  const cases = [
    ["OPTIONS", "Transfer-Encoding: chunked\r\n", chunked(SMUGGLED)],
    ["DELETE", "Transfer-Encoding: chunked\r\n", chunked(SMUGGLED)],
    ["GET", "Transfer-Encoding: chunked\r\n", chunked(SMUGGLED)],
    ["HEAD", "Transfer-Encoding: chunked\r\n", chunked(SMUGGLED)],
    ["DELETE", `Content-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    ["OPTIONS", `Content-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
    ["GET", `Content-Length: ${SMUGGLED.length}\r\n`, SMUGGLED],
  ] as const;
  for (const [method, framing, body] of cases) {
    const res = await sendRaw(stack.proxy.proxyUrl, request(method, "/a/allowed/x", framing, body));
    assert.equal(res.status, 400, `${method} with ${framing.trim()}: ${res.head}`);
    if (method !== "HEAD") assert.equal(JSON.parse(res.body).code, "bad_request", res.body);
  }
  // Another caller's requests on the same upstream host and pool afterwards.
  for (const path of ["/b/one", "/b/two", "/a/allowed/three"]) {
    const res = await stack.call(path);
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  assert.deepEqual(
    upstream.requests.map((r) => `${r.method} ${r.url}`),
    ["GET /base/one", "GET /base/two", "GET /base/allowed/three"],
  );
  assertNothingSmuggled(upstream);
});

test("bodyless DELETE and OPTIONS still pass, with an explicit empty body", async (t) => {
  const { upstream, stack, request } = await setUp(t);
  for (const [method, extra] of [
    ["DELETE", ""],
    ["OPTIONS", ""],
    ["DELETE", "Content-Length: 0\r\n"],
  ] as const) {
    const res = await sendRaw(stack.proxy.proxyUrl, request(method, "/a/allowed/x", extra));
    assert.equal(res.status, 200, `${method}: ${res.head}`);
  }
  assert.deepEqual(
    upstream.requests.map((r) => `${r.method} ${r.url} ${r.bodyBytes}`),
    ["DELETE /base/allowed/x 0", "OPTIONS /base/allowed/x 0", "DELETE /base/allowed/x 0"],
  );
  assertNothingSmuggled(upstream);
});

test("chunked POST bodies arrive whole and framed; each upstream connection carries exactly the requests sent", async (t) => {
  const { upstream, stack, request } = await setUp(t);
  const small = "x".repeat(1000);
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    request("POST", "/a/allowed/x", "Transfer-Encoding: chunked\r\n", chunked(small)),
  );
  assert.equal(res.status, 200, res.head);
  // Longer than the replay buffer, so it streams chunked.
  const large = "y".repeat(100 * 1024);
  const big = await sendRaw(
    stack.proxy.proxyUrl,
    request("POST", "/b/big", "Transfer-Encoding: chunked\r\n", chunked(large)),
  );
  assert.equal(big.status, 200, big.head);
  for (const path of ["/b/after-1", "/b/after-2"]) await (await stack.call(path)).arrayBuffer();
  assert.deepEqual(
    upstream.requests.map((r) => `${r.method} ${r.url} ${r.bodyBytes}`),
    [
      "POST /base/allowed/x 1000",
      `POST /base/big ${large.length}`,
      "GET /base/after-1 0",
      "GET /base/after-2 0",
    ],
  );
  assertNothingSmuggled(upstream);
});

test("maxBodyBytes holds for chunked bodies on every method: 413, and the upstream receives nothing", async (t) => {
  const { upstream, stack, request } = await setUp(t);
  const body = "z".repeat(2000);
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    request("POST", "/a/allowed/x", "Transfer-Encoding: chunked\r\n", chunked(body)),
  );
  assert.equal(res.status, 413, res.head);
  assert.equal(JSON.parse(res.body).code, "payload_too_large");
  const withLength = await sendRaw(
    stack.proxy.proxyUrl,
    request("POST", "/a/allowed/x", `Content-Length: ${body.length}\r\n`, body),
  );
  assert.equal(withLength.status, 413, withLength.head);
  assert.equal(upstream.requests.length, 0);
});

test("a malformed request pipelined behind a response in progress cuts the connection, never a 400 inside the body", async (t) => {
  const upstream = await startRecordingUpstream(t, (_req, res) => {
    res.writeHead(200, { "content-length": "20" });
    res.write("0123456789");
  });
  const stack = await startStack(t, { yaml: YAML, env: { RAW_UPSTREAM: upstream.url } });
  const { port } = new URL(stack.proxy.proxyUrl);
  const received = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () =>
      socket.write(`GET /b/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${stack.world.secrets.apiKey}\r\n\r\n`),
    );
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
      if (data.endsWith("0123456789")) socket.write("BAD\u0001REQUEST\r\n\r\n");
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" ? resolve(data) : reject(err),
    );
    socket.on("close", () => resolve(data));
  });
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.ok(received.endsWith("0123456789"), "the caller sees a short body, then the connection closes");
  assert.doesNotMatch(received, /HTTP\/1\.1 400/);
});

test("a malformed request pipelined behind one still waiting for its upstream answer cuts the connection: no 400 to mistake for that answer", async (t) => {
  let answer: (() => void) | undefined;
  const upstream = await startRecordingUpstream(t, (_req, res) => {
    answer = () => res.writeHead(200, { "content-length": "2" }).end("ok");
  });
  t.after(() => answer?.());
  const stack = await startStack(t, { yaml: YAML, env: { RAW_UPSTREAM: upstream.url } });
  const { port } = new URL(stack.proxy.proxyUrl);
  const key = stack.world.secrets.apiKey;
  const received = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", async () => {
      socket.write(
        `POST /b/orders HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\nContent-Length: 2\r\n\r\n{}`,
      );
      // The POST has reached the upstream, which has not answered yet.
      await upstream.waitFor(1);
      socket.write("BAD\u0001REQUEST\r\n\r\n");
    });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" ? resolve(data) : reject(err),
    );
    socket.on("close", () => resolve(data));
  });
  assert.deepEqual(
    upstream.requests.map((r) => `${r.method} ${r.url}`),
    ["POST /base/orders"],
  );
  assert.equal(received, "", "the caller gets no answer it could take for the POST's: the connection closes");
});

test("two requests pipelined, then a malformed one: the second response is cut, never a 400 inside its body", async (t) => {
  const open: Array<import("node:http").ServerResponse> = [];
  const upstream = await startRecordingUpstream(t, (req, res) => {
    if (req.url === "/base/first") {
      // Answered after the second, so the second's answer waits behind it.
      setTimeout(() => res.writeHead(200, { "content-length": "5" }).end("first"), 100);
    } else {
      res.writeHead(200, { "content-length": "20" });
      res.write("0123456789");
      open.push(res);
    }
  });
  t.after(() => {
    for (const res of open) res.end("0123456789");
  });
  const stack = await startStack(t, { yaml: YAML, env: { RAW_UPSTREAM: upstream.url } });
  const { port } = new URL(stack.proxy.proxyUrl);
  const key = stack.world.secrets.apiKey;
  const get = (path: string) => `GET ${path} HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\n\r\n`;
  const received = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => socket.write(get("/b/first") + get("/b/second")));
    let data = "";
    let sentBad = false;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
      // The first response is complete and the second has begun: now the malformed request.
      if (!sentBad && data.includes("first") && data.endsWith("0123456789")) {
        sentBad = true;
        socket.write("BAD\u0001REQUEST\r\n\r\n");
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" ? resolve(data) : reject(err),
    );
    socket.on("close", () => resolve(data));
  });
  assert.ok(received.endsWith("0123456789"), "the second response is cut short, then the connection closes");
  assert.doesNotMatch(received, /HTTP\/1\.1 400/);
});

/**
 * A POST to /b whose upload (over the 64 KiB held for a replay, so it streams) a raw upstream answers at
 * once; once the answer is in, the caller sends `rest`. Returns all the caller received.
 */
async function earlyAnswered(t: import("node:test").TestContext, rest: string): Promise<string> {
  const upstream = createNetServer((socket) => {
    socket.once("data", () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
    socket.resume();
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => upstream.once("listening", resolve));
  t.after(() => upstream.close());
  const stack = await startStack(t, {
    yaml: YAML,
    env: { RAW_UPSTREAM: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}` },
  });
  const { port } = new URL(stack.proxy.proxyUrl);
  const key = stack.world.secrets.apiKey;
  return new Promise<string>((resolve) => {
    const socket = connect(Number(port), "127.0.0.1", () =>
      socket.write(
        `POST /b/up HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\nTransfer-Encoding: chunked\r\n\r\n${(70_000).toString(16)}\r\n${"a".repeat(70_000)}\r\n`,
      ),
    );
    let data = "";
    let sent = false;
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
      if (!sent && data.endsWith("ok")) {
        sent = true;
        setTimeout(() => socket.write(rest), 50);
      }
    });
    socket.on("error", () => resolve(data));
    socket.on("close", () => resolve(data));
    setTimeout(() => socket.destroy(), 5_000);
  });
}

test("an upload answered before it was all sent, then broken: no 400 after the answer", async (t) => {
  // The rest of the upload, with a chunk size that is no number.
  const received = await earlyAnswered(t, "zz\r\nhello\r\n0\r\n\r\n");
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.doesNotMatch(received, /HTTP\/1\.1 400/, "one request, one answer");
});

test("an upload answered early and then finished: a malformed next request still gets its own 400", async (t) => {
  const received = await earlyAnswered(t, "0\r\n\r\nBAD\u0001REQUEST\r\n\r\n");
  assert.match(received, /^HTTP\/1\.1 200 /);
  assert.match(received, /HTTP\/1\.1 400 /);
});

test("a body refused while the token is still being fetched sends nothing upstream, not even a connection", async (t) => {
  const upstream = await startRecordingUpstream(t);
  const yaml = YAML.replace("warmup: true", "warmup: false").replace(
    "maxBodyBytes: 1024",
    "maxBodyBytes: 102400",
  );
  const stack = await startStack(t, { yaml, env: { RAW_UPSTREAM: upstream.url } });
  const release = stack.world.emulator.inject({ delayMs: 1_000, times: 1 });
  t.after(release);
  const key = stack.world.secrets.apiKey;
  const big = "q".repeat(140 * 1024);
  const res = await sendRaw(
    stack.proxy.proxyUrl,
    `POST /a/allowed/x HTTP/1.1\r\nHost: proxy\r\nX-Api-Key: ${key}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked(big)}`,
  );
  assert.equal(res.status, 413, res.head);
  // Once the token is there, a request goes through; the refused one must not have opened a connection.
  const later = await stack.call("/b/later");
  assert.equal(later.status, 200);
  await later.arrayBuffer();
  assert.deepEqual(
    upstream.requests.map((r) => r.url),
    ["/base/later"],
  );
  assert.equal(upstream.raw.size, 1, "one upstream connection, the later request's");
});
