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

/** A front server that forwards every request to `upstream` with `timeoutMs`; errors[] gets each error code. */
async function frontFor(
  t: TestContext,
  forwarder: Forwarder,
  upstream: string,
  timeoutMs: number,
): Promise<{ front: string; errors: string[] }> {
  const errors: string[] = [];
  const front = await listen(t, (req, res) => {
    const request = {
      method: req.method ?? "GET",
      url: new URL(req.url ?? "/", upstream),
      headers: {},
      bearer: "token",
      body: { kind: "none" } as const,
      timeoutMs,
    };
    forwarder.forward(req, res, request, {
      onResponse(upstreamRes) {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        upstreamRes.pipe(res);
        upstreamRes.once("close", () => {
          if (!upstreamRes.complete) res.destroy();
        });
      },
      onError(e: ProxyError) {
        errors.push(e.code);
        if (res.headersSent) res.destroy();
        else res.writeHead(e.status).end();
      },
    });
  });
  return { front, errors };
}

/** One GET through a front server forwarding to `upstream` with `timeoutMs`. */
async function fetchThrough(t: TestContext, upstream: string, timeoutMs: number): Promise<Outcome> {
  const forwarder = new Forwarder();
  t.after(() => forwarder.close());
  const { front, errors } = await frontFor(t, forwarder, upstream, timeoutMs);
  const started = performance.now();
  return new Promise((resolve) => {
    const outcome: Outcome = { bytes: 0, cut: false, ms: 0 };
    const done = () => {
      outcome.ms = performance.now() - started;
      if (errors[0]) outcome.error = errors[0];
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

test("requests leave the timeout's in-flight list once each, in whatever order they end", async (t) => {
  // Six requests in flight, answered out of order (so the list moves entries around), one never.
  const held: Array<{ n: number; res: ServerResponse }> = [];
  let allArrived: () => void;
  const arrived = new Promise<void>((resolve) => {
    allArrived = resolve;
  });
  const upstream = await listen(t, (req, res) => {
    held.push({ n: Number(req.url?.slice(1)), res });
    if (held.length === 6) allArrived();
  });
  const forwarder = new Forwarder();
  t.after(() => forwarder.close());
  const { front, errors } = await frontFor(t, forwarder, upstream, 300);
  const statuses = [1, 2, 3, 4, 5, 6].map(
    (n) =>
      new Promise<number>((resolve) => {
        http.get(`${front}/${n}`, (res) => {
          res.resume();
          res.once("end", () => resolve(res.statusCode ?? 0));
        });
      }),
  );
  await arrived;
  assert.equal(forwarder.inFlightCount, 6);
  for (const n of [1, 6, 2, 5, 4]) {
    held.find((h) => h.n === n)?.res.end(`answer ${n}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  // 3 is never answered: still tracked after the others left, so it is cut at its deadline.
  assert.deepEqual(await Promise.all(statuses), [200, 200, 504, 200, 200, 200]);
  assert.deepEqual(errors, ["upstream_timeout"]);
  assert.equal(forwarder.inFlightCount, 0);
});
