// The Forwarder's upstream timeout: idle sockets are cut, slow but moving transfers are not.
import assert from "node:assert/strict";
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { type TestContext, test } from "node:test";
import type { ProxyError } from "../../../src/errors.ts";
import { Forwarder } from "../../../src/proxy/forward.ts";

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

async function listen(t: TestContext, handler: Handler): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Outcome {
  status?: number;
  bytes: number;
  error?: string;
  /** The caller's response was cut (upstream died after the headers were sent). */
  cut: boolean;
  ms: number;
}

/** A front server that forwards every request to `upstream` with `timeoutMs`, and one GET through it. */
async function fetchThrough(t: TestContext, upstream: string, timeoutMs: number): Promise<Outcome> {
  const forwarder = new Forwarder();
  t.after(() => forwarder.close());
  let error: string | undefined;
  const front = await listen(t, (req, res) => {
    forwarder.forward(req, res, {
      target: new URL(upstream),
      path: req.url ?? "/",
      bearer: "token",
      timeoutMs,
      onResponse(upstreamRes) {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
        upstreamRes.once("close", () => {
          if (!upstreamRes.complete) res.destroy();
        });
      },
      onError(e: ProxyError) {
        error = e.code;
        if (res.headersSent) res.destroy();
        else res.writeHead(e.status).end();
      },
    });
  });
  const started = performance.now();
  return new Promise((resolve) => {
    const outcome: Outcome = { bytes: 0, cut: false, ms: 0 };
    const done = () => {
      outcome.ms = performance.now() - started;
      if (error) outcome.error = error;
      resolve(outcome);
    };
    http
      .get(`${front}/x`, (res) => {
        outcome.status = res.statusCode ?? 0;
        res.on("data", (c: Buffer) => {
          outcome.bytes += c.length;
        });
        res.once("end", done);
        res.once("error", () => {
          outcome.cut = true;
          done();
        });
      })
      .once("error", () => {
        outcome.cut = true;
        done();
      });
  });
}

test("no response headers within timeoutMs → upstream_timeout, within one sweep of the deadline", async (t) => {
  const upstream = await listen(t, () => {
    /* never answers */
  });
  const outcome = await fetchThrough(t, upstream, 300);
  assert.equal(outcome.status, 504);
  assert.equal(outcome.error, "upstream_timeout");
  assert.ok(outcome.ms >= 290 && outcome.ms < 900, `answered after ${outcome.ms.toFixed(0)} ms`);
});

test("a response that keeps moving is not cut, however long it takes in total", async (t) => {
  const upstream = await listen(t, (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain" });
    let sent = 0;
    const timer = setInterval(() => {
      res.write("x".repeat(100));
      if (++sent === 10) {
        clearInterval(timer);
        res.end();
      }
    }, 80);
  });
  const outcome = await fetchThrough(t, upstream, 300);
  assert.equal(outcome.status, 200);
  assert.equal(outcome.bytes, 1000);
  assert.equal(outcome.cut, false);
  assert.equal(outcome.error, undefined);
  assert.ok(outcome.ms > 700, "the transfer took longer than the timeout in total");
});

test("a body that stalls after the headers is cut, and the caller sees a broken response", async (t) => {
  const upstream = await listen(t, (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": 1000 });
    res.write("x".repeat(100)); // then nothing more
  });
  const outcome = await fetchThrough(t, upstream, 300);
  assert.equal(outcome.status, 200);
  assert.equal(outcome.bytes, 100);
  assert.equal(outcome.cut, true);
  assert.equal(outcome.error, "upstream_timeout");
});
