// The front door's own failures: a bug of the proxy answers 500 internal_error through the one
// problem writer, is logged with its stack, and is not counted as an upstream error.
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { ClientIpResolver } from "../../../src/access/client-ip.ts";
import { createLogger } from "../../../src/observability/logger.ts";
import { createMetrics } from "../../../src/observability/metrics.ts";
import { RecentEvents } from "../../../src/observability/recent-events.ts";
import { Forwarder } from "../../../src/proxy/forward.ts";
import type { Router } from "../../../src/proxy/router.ts";
import { createFrontDoor } from "../../../src/server/front-door.ts";
import { PROBLEM_HEADERS } from "../../../src/server/problem.ts";
import type { RouteRuntime } from "../../../src/server/route-runtime.ts";

test("an error that is not a ProxyError is a bug: 500 internal_error, logged with its stack, not an upstream error", async (t) => {
  const lines: string[] = [];
  const logger = createLogger({ level: "info", destination: { write: (l: string) => lines.push(l) } });
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const forwarder = new Forwarder();
  t.after(() => forwarder.close());
  const broken = {
    match() {
      throw new TypeError("a bug in the router");
    },
  } as unknown as Router<RouteRuntime>;
  const frontDoor = createFrontDoor({
    routing: () => ({
      router: broken,
      clientIp: new ClientIpResolver([]),
      publicUrl: undefined,
      publicHosts: new Set(),
    }),
    forwarder,
    metrics,
    logger,
    events: new RecentEvents(10, Date.now),
    draining: () => false,
  });
  const server = http.createServer(frontDoor.handle);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/anything`);
  assert.equal(res.status, 500);
  assert.equal(res.headers.get("content-type"), "application/problem+json; charset=utf-8");
  for (const name of Object.keys(PROBLEM_HEADERS)) assert.ok(res.headers.has(name), `${name} is set`);
  const problem = (await res.json()) as { code: string; requestId: string };
  assert.equal(problem.code, "internal_error");
  assert.equal(problem.requestId, res.headers.get("x-request-id"));
  const logged = lines.map((l) => JSON.parse(l) as { msg: string; err?: { stack?: string } });
  const internal = logged.find((l) => l.msg === "internal error");
  assert.match(internal?.err?.stack ?? "", /TypeError: a bug in the router/);
  assert.doesNotMatch(await metrics.registry.metrics(), /entra_proxy_upstream_errors_total\{/);
});
