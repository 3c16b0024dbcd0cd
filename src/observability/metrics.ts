// Every metric the proxy exports, defined once (design.md "Metrics"). Label values are bounded:
// route prefixes and identity names from the config, never paths, users, addresses or tokens.
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Metric, Registry } from "prom-client";

export interface ExpirySample {
  identity: string;
  scope: string;
  secondsToExpiry: number;
}

export interface ProxyMetrics {
  registry: Registry;
  tokenRefreshes: Counter<"identity" | "scope" | "result" | "trigger" | "error">;
  tokenRefreshDuration: Histogram<"identity" | "scope">;
  upstream401: Counter<"route">;
  /** entra_proxy_requests_total: counted by `requests.add`, exposed through prom-client on scrape. */
  requests: RequestCounts;
  /** entra_proxy_request_duration_seconds: observed by `requestDuration.observe`, read on scrape. */
  requestDuration: RouteDurations;
  upstreamErrors: Counter<"route" | "code">;
  accessDenied: Counter<"route" | "reason">;
  configReloads: Counter<"result">;
  linkRewrites: Counter<"route" | "result">;
}

/** One registry per running proxy (tests run several in one process). */
export function createMetrics(
  expirySamples: () => ExpirySample[],
  options: { defaultMetrics?: boolean } = {},
) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const requests = new RequestCounts();
  const requestDuration = new RouteDurations(
    "entra_proxy_request_duration_seconds",
    "Time from request to the end of the response, by route.",
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  registry.registerMetric(requestDuration as unknown as Metric);
  new Counter({
    name: "entra_proxy_requests_total",
    help: "Requests answered, by route, method and status.",
    labelNames: ["route", "method", "status"],
    registers,
    collect() {
      this.reset();
      for (const [labels, count] of requests.entries()) this.inc(labels, count);
    },
  });
  const metrics: ProxyMetrics = {
    registry,
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
    requestDuration,
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
  return metrics;
}

/**
 * Requests answered, by route, method and status, in plain numbers: the request path adds one with two
 * map lookups, where prom-client's labelled `inc` validates and hashes the label object on every call.
 * The counter above reads these totals when /metrics is scraped.
 */
export class RequestCounts {
  private readonly byRoute = new Map<string, Map<number, Map<string, number>>>();

  add(route: string, method: string, status: number): void {
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
    byMethod.set(method, (byMethod.get(method) ?? 0) + 1);
  }

  *entries(): Iterable<[{ route: string; method: string; status: string }, number]> {
    for (const [route, byStatus] of this.byRoute) {
      for (const [status, byMethod] of byStatus) {
        for (const [method, count] of byMethod) yield [{ route, method, status: String(status) }, count];
      }
    }
  }
}

/** What the prom-client registry reads from a metric to render it (its runtime shape). */
interface ExportedMetric {
  name: string;
  help: string;
  type: "histogram";
  aggregator: "sum";
  values: Array<{ metricName: string; labels: Record<string, string | number>; value: number }>;
}

interface DurationRecord {
  /** Observations per bucket (not cumulative); the last slot counts those above every bound. */
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * A histogram by route whose observation is a bucket search and three additions on a per-route record,
 * where prom-client's labelled `observe` validates and hashes the label object and allocates on every
 * call. It is registered in the prom-client registry like any metric: `get()` returns its values in
 * prom-client's format (cumulative `_bucket` series with `le`, then `_sum` and `_count`), and the
 * registry renders them with everything else.
 */
export class RouteDurations {
  readonly type = "histogram";
  readonly aggregator = "sum";
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  private readonly byRoute = new Map<string, DurationRecord>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = bounds;
  }

  observe(route: string, seconds: number): void {
    let record = this.byRoute.get(route);
    if (record === undefined) {
      record = { buckets: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 };
      this.byRoute.set(route, record);
    }
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    record.buckets[i]!++;
    record.sum += seconds;
    record.count++;
  }

  async get(): Promise<ExportedMetric> {
    const values: ExportedMetric["values"] = [];
    for (const [route, record] of this.byRoute) {
      let cumulative = 0;
      for (const [i, bound] of this.bounds.entries()) {
        cumulative += record.buckets[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le: bound, route }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { le: "+Inf", route }, value: record.count });
      values.push({ metricName: `${this.name}_sum`, labels: { route }, value: record.sum });
      values.push({ metricName: `${this.name}_count`, labels: { route }, value: record.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.byRoute.clear();
  }
}
