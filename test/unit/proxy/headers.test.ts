// Response header hygiene on a real upstream response, as Node's client parses it.
import assert from "node:assert/strict";
import { get, type IncomingMessage } from "node:http";
import { createServer } from "node:net";
import test from "node:test";
import { responseHeaders } from "../../../src/proxy/headers.ts";

/** An upstream response with exactly these header lines. */
async function upstreamResponse(t: test.TestContext, headerLines: string[]): Promise<IncomingMessage> {
  const server = createServer((socket) => {
    socket.once("data", () => {
      socket.end(`HTTP/1.1 200 OK\r\n${headerLines.join("\r\n")}\r\nContent-Length: 2\r\n\r\nok`);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const { port } = server.address() as { port: number };
  const res = await new Promise<IncomingMessage>((resolve, reject) =>
    get({ host: "127.0.0.1", port, path: "/", agent: false }, resolve).once("error", reject),
  );
  t.after(() => res.resume());
  return res;
}

test("hop-by-hop headers, names the Connection headers list, and the upstream's own cookies are dropped", async (t) => {
  const upstream = await upstreamResponse(t, [
    "Connection: keep-alive, X-Hop-One",
    "Keep-Alive: timeout=5",
    "X-Hop-One: secret",
    "Connection: X-Hop-Two",
    "X-Hop-Two: also",
    "Trailer: Expires",
    "Upgrade: h2c",
    "Proxy-Connection: keep-alive",
    "Set-Cookie: session=1; Path=/",
    "Set-Cookie: affinity=2; Domain=.powerplatform.com",
    "Set-Cookie: tracking=3; Domain=partner.example",
    "Vary: Accept",
    "Vary: Origin",
    "Location: https://api.powerplatform.com/ops/1",
  ]);
  assert.deepEqual(responseHeaders(upstream, "api.powerplatform.com"), {
    "set-cookie": ["tracking=3; Domain=partner.example"],
    vary: "Accept, Origin",
    location: "https://api.powerplatform.com/ops/1",
    "content-length": "2",
  });
});

test("when every cookie is the upstream's own, no Set-Cookie is left", async (t) => {
  const upstream = await upstreamResponse(t, ["Set-Cookie: session=1; Path=/", "X-Kept: yes"]);
  assert.deepEqual(responseHeaders(upstream, "api.powerplatform.com"), {
    "x-kept": "yes",
    "content-length": "2",
  });
});
