import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
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
    help: "Requests answered, by route, method, status and consumer.",
    labelNames: ["route", "method", "status", "consumer"],
    registers: [reference],
  });
  const histogram = new Histogram({
    name: "entra_proxy_request_duration_seconds",
    help: "Time from request to the end of the response, by route.",
    labelNames: ["route"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [reference],
  });
  const requests: Array<[string, string, number, number, string]> = [];
  const consumers = ["-", "erp-nightly", "reporting"];
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
      consumers[(i >> 3) % 3]!,
    ]);
  }
  for (const [route, method, status, seconds, consumer] of requests) {
    metrics.requests.record(route, method, status, consumer === "-" ? undefined : consumer, seconds);
    counter.inc({ route, method, status: String(status), consumer });
    histogram.observe({ route }, seconds);
  }
  const sortLines = (block: string) => block.split("\n").sort().join("\n");
  for (const name of ["entra_proxy_requests_total", "entra_proxy_request_duration_seconds"]) {
    const ours = await family(metrics.registry, name);
    const theirs = await family(reference, name);
    assert.equal(sortLines(ours), sortLines(theirs), name);
  }
  // Counts accumulate across scrapes; they are not reset by reading.
  metrics.requests.record("/powerplatform", "GET", 200, undefined, 0.1);
  const again = await family(metrics.registry, "entra_proxy_requests_total");
  counter.inc({ route: "/powerplatform", method: "GET", status: "200", consumer: "-" });
  assert.equal(sortLines(again), sortLines(await family(reference, "entra_proxy_requests_total")));
});

test("a single answered request is seen at once by a scrape of either family and by the per-route counts", async () => {
  for (const reader of ["requests_total", "duration", "perRoute"] as const) {
    const metrics = createMetrics(() => [], { defaultMetrics: false });
    metrics.requests.record("/lcs", "GET", 503, "erp", 0.02);
    if (reader === "perRoute") {
      assert.deepEqual(metrics.requests.perRoute().get("/lcs"), { requests: 1, serverErrors: 1 });
    } else if (reader === "requests_total") {
      assert.match(
        await family(metrics.registry, "entra_proxy_requests_total"),
        /entra_proxy_requests_total\{route="\/lcs",method="GET",status="503",consumer="erp"\} 1/,
      );
    } else {
      assert.match(
        await family(metrics.registry, "entra_proxy_request_duration_seconds"),
        /entra_proxy_request_duration_seconds_count\{route="\/lcs"\} 1/,
      );
    }
    // Several hundred later ones, past the point where they are applied on their own, are counted once each.
    for (let i = 0; i < 700; i++) metrics.requests.record("/lcs", "GET", 200, "erp", 0.01);
    assert.deepEqual(metrics.requests.perRoute().get("/lcs"), { requests: 701, serverErrors: 1 });
    assert.match(
      await family(metrics.registry, "entra_proxy_request_duration_seconds"),
      /entra_proxy_request_duration_seconds_count\{route="\/lcs"\} 701/,
    );
  }
});

test("every metric in the registry is one of prom-client's own types", () => {
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const duration = metrics.registry.getSingleMetric("entra_proxy_request_duration_seconds");
  assert.ok(duration instanceof Histogram, "the request duration histogram is prom-client's Histogram");
  for (const metric of metrics.registry.getMetricsAsArray()) {
    assert.ok(
      metric instanceof Counter || metric instanceof Gauge || metric instanceof Histogram,
      (metric as { name: string }).name,
    );
  }
});

test("entra_proxy_build_info is 1 with the package version and the Node version", async () => {
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const pkg = JSON.parse(await readFile(new URL("../../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  assert.equal(
    await family(metrics.registry, "entra_proxy_build_info"),
    [
      "# HELP entra_proxy_build_info Always 1; the labels say which build and Node are running.",
      "# TYPE entra_proxy_build_info gauge",
      `entra_proxy_build_info{version="${pkg.version}",node="${process.version}"} 1`,
    ].join("\n"),
  );
});

test("entra_proxy_config_last_reload_success_timestamp_seconds is the time of the last successful load", async () => {
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const value = async () =>
    (await family(metrics.registry, "entra_proxy_config_last_reload_success_timestamp_seconds"))
      .split("\n")
      .at(-1);
  metrics.configLoaded(Date.UTC(2026, 11, 5, 10, 0, 0, 500));
  assert.equal(await value(), "entra_proxy_config_last_reload_success_timestamp_seconds 1796464800.5");
  metrics.configLoaded(Date.UTC(2026, 11, 5, 11, 0, 0));
  assert.equal(await value(), "entra_proxy_config_last_reload_success_timestamp_seconds 1796468400");
});

test("entra_proxy_config_last_reload_successful is 1 after a load, 0 after a rejected reload, 1 again after a good one", async () => {
  const metrics = createMetrics(() => [], { defaultMetrics: false });
  const value = async () =>
    (await family(metrics.registry, "entra_proxy_config_last_reload_successful")).split("\n").at(-1);
  metrics.configLoaded(0);
  assert.equal(await value(), "entra_proxy_config_last_reload_successful 1");
  metrics.configRejected();
  assert.equal(await value(), "entra_proxy_config_last_reload_successful 0");
  metrics.configLoaded(1000);
  assert.equal(await value(), "entra_proxy_config_last_reload_successful 1");
});

test("entra_proxy_in_flight_requests is read from the routes on every scrape", async () => {
  let samples: Array<{ route: string; count: number }> = [
    { route: "/powerplatform", count: 3 },
    { route: "/lcs", count: 0 },
  ];
  const metrics = createMetrics(() => [], { defaultMetrics: false, inFlight: () => samples });
  const series = async () =>
    (await family(metrics.registry, "entra_proxy_in_flight_requests"))
      .split("\n")
      .filter((l) => !l.startsWith("#"))
      .sort();
  assert.deepEqual(await series(), [
    'entra_proxy_in_flight_requests{route="/lcs"} 0',
    'entra_proxy_in_flight_requests{route="/powerplatform"} 3',
  ]);
  // After a reload the old and the new runtime of a route may both have requests under way: summed.
  samples = [
    { route: "/powerplatform", count: 1 },
    { route: "/powerplatform", count: 2 },
    { route: "/flows/order", count: 5 },
  ];
  assert.deepEqual(await series(), [
    'entra_proxy_in_flight_requests{route="/flows/order"} 5',
    'entra_proxy_in_flight_requests{route="/powerplatform"} 3',
  ]);
  samples = [];
  assert.deepEqual(await series(), [], "a route that is gone leaves no series");
});
