// SIGTERM while busy keep-alive callers keep sending: responses from then on say `Connection: close`,
// the process exits as soon as in-flight work is done (not at drainTimeoutMs), and no caller is reset.
import assert from "node:assert/strict";
import { Agent, request } from "node:http";
import { test } from "node:test";
import { DEMO_ROUTES_YAML, startDemoWorld } from "../../src/demo/stack.ts";
import { startServeChild } from "../helpers/child.ts";
import { trustedPki } from "../helpers/pki.ts";

const DRAIN_TIMEOUT_MS = 8_000;
const CHILD_YAML = DEMO_ROUTES_YAML.replace("port: 8080", "port: 0").replace(
  "adminPort: 9090",
  `adminPort: 0\n  drainTimeoutMs: ${DRAIN_TIMEOUT_MS}`,
);

async function setup(t: Parameters<typeof startServeChild>[0]) {
  const pki = await trustedPki();
  const world = await startDemoWorld({ pki });
  t.after(() => world.close());
  const serve = await startServeChild(t, CHILD_YAML, world.env, pki.caCert);
  await serve.waitFor((l) => l.msg === "warm-up finished");
  return { serve, key: world.secrets.apiKey };
}

interface Outcome {
  /** When the response ended (Date.now()). */
  endedAt: number;
  status: number;
  connectionClose: boolean;
}

/** One GET on the shared keep-alive agent: its outcome, or the error code that ended it. */
function get(url: string, key: string, agent: Agent): Promise<Outcome | { error: string }> {
  return new Promise((resolve) => {
    const req = request(url, { agent, headers: { "x-api-key": key } }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          endedAt: Date.now(),
          status: res.statusCode ?? 0,
          connectionClose: res.headers.connection === "close",
        }),
      );
      res.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on("error", (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end();
  });
}

test("SIGTERM with 100 busy keep-alive callers: Connection: close, exit when in-flight work is done, no resets", async (t) => {
  const { serve, key } = await setup(t);
  const agent = new Agent({ keepAlive: true, maxSockets: 100 });
  t.after(() => agent.destroy());
  let sigtermAt = Number.POSITIVE_INFINITY;
  const outcomes: Outcome[] = [];
  const errors: string[] = [];
  let started = 0;
  const callers = Array.from({ length: 100 }, async (_, i) => {
    // Each caller sends its next request as soon as the last one ends, 100–500 ms each.
    for (let n = 0; ; n++) {
      const ms = 100 + ((i * 37 + n * 53) % 401);
      started++;
      const outcome = await get(`${serve.proxyUrl}/powerplatform/slow/${ms}`, key, agent);
      if ("error" in outcome) {
        // Refused after SIGTERM: the listener is closed and the caller moves to another replica.
        if (outcome.error !== "ECONNREFUSED" || Date.now() < sigtermAt)
          errors.push(`${outcome.error} ${Date.now() - sigtermAt} ms after SIGTERM`);
        return;
      }
      outcomes.push(outcome);
      if (outcome.status !== 200) errors.push(`status ${outcome.status}`);
    }
  });
  // Steady load: every caller is in the middle of a request or about to send its next one.
  while (outcomes.length < 150) await new Promise((r) => setTimeout(r, 20));

  sigtermAt = Date.now();
  serve.child.kill("SIGTERM");
  const { code, signal } = await serve.exit;
  const exitMs = Date.now() - sigtermAt;
  await Promise.all(callers);

  const shutdown = await serve.waitFor((l) => l.msg === "shutting down");
  const stopped = await serve.waitFor((l) => l.msg === "stopped");
  const after = outcomes.filter((o) => o.endedAt >= sigtermAt);
  const closing = after.filter((o) => o.connectionClose).length;
  t.diagnostic(
    `requests ${started}; exit ${exitMs} ms after SIGTERM (drainTimeoutMs ${DRAIN_TIMEOUT_MS}), ` +
      `drain in the proxy ${Date.parse(String(stopped.time)) - Date.parse(String(shutdown.time))} ms; ` +
      `responses after SIGTERM ${after.length}, with Connection: close ${closing}; ` +
      `errors ${errors.length} ${JSON.stringify(errors.slice(0, 3))}`,
  );
  assert.equal(code, 0);
  assert.equal(signal, null);
  assert.deepEqual(errors, [], "no caller is reset");
  assert.ok(after.length >= 100, "every caller's in-flight request finished");
  assert.ok(closing >= 100, "each caller was told to close its connection");
  assert.ok(
    exitMs < DRAIN_TIMEOUT_MS / 2,
    `exited ${exitMs} ms after SIGTERM, as soon as in-flight work was done`,
  );
});

test("a SIGHUP during the drain is ignored: the in-flight request finishes and the exit is clean", async (t) => {
  const { serve, key } = await setup(t);
  const slow = get(`${serve.proxyUrl}/powerplatform/slow/1000`, key, new Agent());
  await new Promise((r) => setTimeout(r, 200));
  serve.child.kill("SIGTERM");
  await serve.waitFor((l) => l.msg === "shutting down");
  serve.child.kill("SIGHUP");
  const outcome = await slow;
  assert.ok(!("error" in outcome), `the in-flight request was cut: ${JSON.stringify(outcome)}`);
  assert.equal(outcome.status, 200);
  assert.deepEqual(await serve.exit, { code: 0, signal: null });
});

test("an idle keep-alive connection does not hold the drain: it is closed and the process exits", async (t) => {
  const { serve, key } = await setup(t);
  const agent = new Agent({ keepAlive: true });
  t.after(() => agent.destroy());
  const first = await get(`${serve.proxyUrl}/powerplatform/x`, key, agent);
  assert.ok(!("error" in first) && first.status === 200);
  const [socket] = Object.values(agent.freeSockets).flat();
  assert.ok(socket, "the connection is kept alive");
  const closed = new Promise((resolve) => socket.once("close", resolve));
  const sigtermAt = Date.now();
  serve.child.kill("SIGTERM");
  await closed;
  assert.deepEqual(await serve.exit, { code: 0, signal: null });
  const exitMs = Date.now() - sigtermAt;
  assert.ok(exitMs < DRAIN_TIMEOUT_MS / 2, `exited ${exitMs} ms after SIGTERM, not at the drain timeout`);
});
