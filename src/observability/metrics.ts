// Every metric the proxy exports, defined once (design.md "Metrics"). Label values are bounded:
// route prefixes and identity names from the config, never paths, users, addresses or tokens.
import { readFileSync } from "node:fs";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export interface ExpirySample {
  identity: string;
  scope: string;
  secondsToExpiry: number;
}

/** An API key with an expiry date, for entra_proxy_api_key_expiry_seconds. */
export interface KeyExpirySample {
  consumer: string;
  key: string;
  secondsToExpiry: number;
}

/** Requests in flight on one route (by its label, the prefix). */
export interface InFlightSample {
  route: string;
  count: number;
}

export interface ProxyMetrics {
  registry: Registry;
  tokenRefreshes: Counter<"identity" | "scope" | "result" | "trigger" | "error">;
  tokenRefreshDuration: Histogram<"identity" | "scope">;
  upstream401: Counter<"route">;
  /** entra_proxy_requests_total and entra_proxy_request_duration_seconds: `requests.record` once per answered request. */
  requests: AnsweredRequests;
  upstreamErrors: Counter<"route" | "code">;
  accessDenied: Counter<"route" | "reason">;
  configReloads: Counter<"result">;
  linkRewrites: Counter<"route" | "result">;
  /** Requests answered 429 rate_limited by the proxy's own limits, by which limit refused. */
  rateLimited: Counter<"route" | "consumer" | "limit">;
  /** Upstream 429s received. */
  upstreamThrottled: Counter<"route">;
  /** Time requests waited in an identity's queue (only requests that had to wait). */
  limitWait: Histogram<"identity">;
  /** entra_proxy_config_last_reload_success_timestamp_seconds: call with the time (ms) of each successful load or reload. */
  configLoaded(atMs: number): void;
  /** entra_proxy_config_last_reload_successful goes to 0 until the next successful reload. */
  configRejected(): void;
}

export interface MetricsOptions {
  defaultMetrics?: boolean;
  /** entra_proxy_in_flight_requests is read from this on every scrape (the routes keep the counts). */
  inFlight?: () => Iterable<InFlightSample>;
  /** entra_proxy_api_key_expiry_seconds is read from this on every scrape. */
  keyExpiry?: () => Iterable<KeyExpirySample>;
}

/** The version in package.json, for entra_proxy_build_info (the same path from src/ and dist/). */
export const VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** One registry per running proxy (tests run several in one process). */
export function createMetrics(
  expirySamples: () => ExpirySample[],
  options: MetricsOptions = {},
): ProxyMetrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new AnsweredRequests(
    new Histogram({
      name: "entra_proxy_request_duration_seconds",
      help: "Time from request to the end of the response, by route.",
      labelNames: ["route"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
      collect() {
        requests.apply();
      },
    }),
  );
  new Counter({
    name: "entra_proxy_requests_total",
    help: "Requests answered, by route, method, status and consumer.",
    labelNames: ["route", "method", "status", "consumer"],
    registers,
    collect() {
      requests.apply();
      this.reset();
      for (const [labels, count] of requests.entries()) this.inc(labels, count);
    },
  });
  const lastReload = new Gauge({
    name: "entra_proxy_config_last_reload_success_timestamp_seconds",
    help: "Unix time of the last successful config load or reload.",
    registers,
  });
  // Prometheus' own convention (prometheus_config_last_reload_successful): the alert on a rejected
  // reload needs the current state, which the counters and the success timestamp cannot order.
  const lastReloadSuccessful = new Gauge({
    name: "entra_proxy_config_last_reload_successful",
    help: "1 if the last config load or reload succeeded, 0 if it was rejected (the previous config keeps serving).",
    registers,
  });
  const metrics: ProxyMetrics = {
    registry,
    configLoaded: (atMs) => {
      lastReload.set(atMs / 1000);
      lastReloadSuccessful.set(1);
    },
    configRejected: () => lastReloadSuccessful.set(0),
    tokenRefreshes: new Counter({
      name: "entra_proxy_token_refreshes_total",
      help: "Token acquisitions from Entra ID, by outcome and what triggered them.",
      labelNames: ["identity", "scope", "result", "trigger", "error"],
      registers,
    }),
    tokenRefreshDuration: new Histogram({
      name: "entra_proxy_token_refresh_duration_seconds",
      help: "Time taken by a token acquisition.",
      labelNames: ["identity", "scope"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    upstream401: new Counter({
      name: "entra_proxy_upstream_401_total",
      help: "Responses with status 401 received from upstreams.",
      labelNames: ["route"],
      registers,
    }),
    requests,
    upstreamErrors: new Counter({
      name: "entra_proxy_upstream_errors_total",
      help: "Requests that failed with a proxy-generated error, by problem code.",
      labelNames: ["route", "code"],
      registers,
    }),
    accessDenied: new Counter({
      name: "entra_proxy_access_denied_total",
      help: "Requests refused by a route's access rules, by reason.",
      labelNames: ["route", "reason"],
      registers,
    }),
    linkRewrites: new Counter({
      name: "entra_proxy_link_rewrites_total",
      help: "JSON responses on rewriteLinks routes, by outcome (rewritten, unchanged, too_large, not_json, encoded, invalid_json).",
      labelNames: ["route", "result"],
      registers,
    }),
    rateLimited: new Counter({
      name: "entra_proxy_rate_limited_total",
      help: "Requests answered 429 rate_limited by the proxy, by the limit that refused them (consumer, identity, upstream_pause).",
      labelNames: ["route", "consumer", "limit"],
      registers,
    }),
    upstreamThrottled: new Counter({
      name: "entra_proxy_upstream_throttled_total",
      help: "Responses with status 429 received from upstreams.",
      labelNames: ["route"],
      registers,
    }),
    limitWait: new Histogram({
      name: "entra_proxy_limit_wait_seconds",
      help: "Time requests waited for room under their identity's limits (requests that had to wait).",
      labelNames: ["identity"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    configReloads: new Counter({
      name: "entra_proxy_config_reloads_total",
      help: "Config reloads (SIGHUP or a changed file), by result; a rejected config keeps the old one serving.",
      labelNames: ["result"],
      registers,
    }),
  };
  new Gauge({
    name: "entra_proxy_token_expiry_seconds",
    help: "Seconds until the cached token expires (negative once expired).",
    labelNames: ["identity", "scope"],
    registers,
    collect() {
      this.reset();
      for (const s of expirySamples()) this.set({ identity: s.identity, scope: s.scope }, s.secondsToExpiry);
    },
  });
  const inFlight = options.inFlight;
  new Gauge({
    name: "entra_proxy_in_flight_requests",
    help: "Requests being answered, by route.",
    labelNames: ["route"],
    registers,
    collect() {
      this.reset();
      // Routes replaced by a reload may still be finishing requests under the same label: summed.
      for (const s of inFlight?.() ?? []) this.inc({ route: s.route }, s.count);
    },
  });
  const keyExpiry = options.keyExpiry;
  new Gauge({
    name: "entra_proxy_api_key_expiry_seconds",
    help: "Seconds until an API key with an expiry date expires (negative once expired), by consumer and key name.",
    labelNames: ["consumer", "key"],
    registers,
    collect() {
      this.reset();
      for (const s of keyExpiry?.() ?? []) this.set({ consumer: s.consumer, key: s.key }, s.secondsToExpiry);
    },
  });
  new Gauge({
    name: "entra_proxy_build_info",
    help: "Always 1; the labels say which build and Node are running.",
    labelNames: ["version", "node"],
    registers,
  }).set({ version: VERSION, node: process.version }, 1);
  return metrics;
}

/** Answered requests that wait before they are applied (see AnsweredRequests). */
const PENDING_REQUESTS = 256;

/**
 * entra_proxy_requests_total and entra_proxy_request_duration_seconds, fed once per answered request.
 * The counts are plain numbers in maps (prom-client's labelled `inc` validates and hashes a label object
 * on every call; the counter reads these totals on scrape). A request's figures wait in a short list and
 * are applied 256 at a time, and before anything reads them (a scrape, the status page): applied in a
 * run, the histogram's and the maps' code and data stay in the CPU's caches, where one request at a
 * time between the proxy's other work they cost several times as much (docs/performance.md).
 */
export class AnsweredRequests {
  private readonly byRoute = new Map<string, Map<number, Map<string, Map<string, number>>>>();
  private readonly durations: Histogram<"route">;
  /** `{ route }` label objects by route, made once. */
  private readonly routeLabels = new Map<string, { route: string }>();
  private pending = 0;
  private readonly routes: string[] = [];
  private readonly methods: string[] = [];
  private readonly statuses: number[] = [];
  private readonly consumers: string[] = [];
  private readonly seconds: number[] = [];

  constructor(durations: Histogram<"route">) {
    this.durations = durations;
  }

  /** `consumer`: a consumer or API key name from the config, else "-". */
  record(route: string, method: string, status: number, consumer: string | undefined, seconds: number): void {
    const i = this.pending++;
    this.routes[i] = route;
    this.methods[i] = method;
    this.statuses[i] = status;
    this.consumers[i] = consumer ?? "-";
    this.seconds[i] = seconds;
    if (this.pending === PENDING_REQUESTS) this.apply();
  }

  /** Applies what is waiting; every reader calls this first. */
  apply(): void {
    for (let i = 0; i < this.pending; i++) {
      const route = this.routes[i]!;
      this.count(route, this.methods[i]!, this.statuses[i]!, this.consumers[i]!);
      this.durations.observe(this.labelsOf(route), this.seconds[i]!);
    }
    this.pending = 0;
  }

  private count(route: string, method: string, status: number, consumer: string): void {
    let byStatus = this.byRoute.get(route);
    if (byStatus === undefined) {
      byStatus = new Map();
      this.byRoute.set(route, byStatus);
    }
    let byMethod = byStatus.get(status);
    if (byMethod === undefined) {
      byMethod = new Map();
      byStatus.set(status, byMethod);
    }
    let byConsumer = byMethod.get(method);
    if (byConsumer === undefined) {
      byConsumer = new Map();
      byMethod.set(method, byConsumer);
    }
    byConsumer.set(consumer, (byConsumer.get(consumer) ?? 0) + 1);
  }

  private labelsOf(route: string): { route: string } {
    let labels = this.routeLabels.get(route);
    if (labels === undefined) {
      labels = { route };
      // Route labels come from the config (and "unmatched"), so they are few; a bound keeps reloads from growing the map.
      if (this.routeLabels.size >= 1024) this.routeLabels.clear();
      this.routeLabels.set(route, labels);
    }
    return labels;
  }

  /** Requests answered and how many of them were 5xx, per route (for the status page). */
  perRoute(): Map<string, { requests: number; serverErrors: number }> {
    this.apply();
    const out = new Map<string, { requests: number; serverErrors: number }>();
    for (const [route, byStatus] of this.byRoute) {
      const totals = { requests: 0, serverErrors: 0 };
      for (const [status, byMethod] of byStatus) {
        for (const byConsumer of byMethod.values()) {
          for (const count of byConsumer.values()) {
            totals.requests += count;
            if (status >= 500) totals.serverErrors += count;
          }
        }
      }
      out.set(route, totals);
    }
    return out;
  }

  /** The request counts by label set (call apply first). */
  *entries(): Iterable<[{ route: string; method: string; status: string; consumer: string }, number]> {
    for (const [route, byStatus] of this.byRoute) {
      for (const [status, byMethod] of byStatus) {
        for (const [method, byConsumer] of byMethod) {
          for (const [consumer, count] of byConsumer) {
            yield [{ route, method, status: String(status), consumer }, count];
          }
        }
      }
    }
  }
}
