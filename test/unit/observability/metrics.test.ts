import assert from "node:assert/strict";
import { test } from "node:test";
import { Counter, Histogram, Registry } from "prom-client";
import { createMetrics } from "../../../src/observability/metrics.ts";

/** The exposition text of one family, from the registry that holds it. */
async function family(registry: Registry, name: string): Promise<string> {
  const text = await registry.metrics();
  return text
    .split("\n\n")
    .find((block) => block.includes(`# TYPE ${name} `))!
    .trim();
}

test("request metrics render exactly as prom-client's own Counter and Histogram fed the same requests", async () => {
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const reference = new Registry();
  const counter = new Counter({
    name: "entra_proxy_requests_total",
    help: "Requests answered, by route, method and status.",
    labelNames: ["route", "method", "status"],
    registers: [reference],
  });
  const histogram = new Histogram({
    name: "entra_proxy_request_duration_seconds",
    help: "Time from request to the end of the response, by route.",
    labelNames: ["route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [reference],
  });
  const requests: Array<[string, string, number, number]> = [];
  const routes = ["/powerplatform", "/flows/order", "unmatched"];
  const methods = ["GET", "POST", "OTHER"];
  const statuses = [200, 202, 401, 404, 502, 0];
  // Durations on, below and above every bucket bound, and beyond the last one.
  const durations = [0, 0.004, 0.005, 0.0051, 0.01, 0.3, 1, 2.5, 29.9, 30, 31, 120];
  for (let i = 0; i < 500; i++) {
    requests.push([
      routes[i % 3]!,
      methods[(i >> 2) % 3]!,
      statuses[i % 6]!,
      durations[i % durations.length]!,
    ]);
  }
  for (const [route, method, status, seconds] of requests) {
    metrics.requests.add(route, method, status);
    metrics.requestDuration.observe(route, seconds);
    counter.inc({ route, method, status: String(status) });
    histogram.observe({ route }, seconds);
  }
  const sortLines = (block: string) => block.split("\n").sort().join("\n");
  for (const name of ["entra_proxy_requests_total", "entra_proxy_request_duration_seconds"]) {
    const ours = await family(metrics.registry, name);
    const theirs = await family(reference, name);
    assert.equal(sortLines(ours), sortLines(theirs), name);
  }
  // Counts accumulate across scrapes; they are not reset by reading.
  metrics.requests.add("/powerplatform", "GET", 200);
  const again = await family(metrics.registry, "entra_proxy_requests_total");
  counter.inc({ route: "/powerplatform", method: "GET", status: "200" });
  assert.equal(sortLines(again), sortLines(await family(reference, "entra_proxy_requests_total")));
});
