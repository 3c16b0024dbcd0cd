// Builds a running proxy from a validated ProxyConfig: token providers, access checks, router,
// front door on listen.port and the admin app on listen.adminPort. Used by serve, demo and tests.
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import net, { type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createSecureContext, type SecureContextOptions } from "node:tls";
import { compileAccessCheck } from "../access/check.ts";
import { ClientIpResolver } from "../access/client-ip.ts";
import { createTokenSource, preflightCredential, type TokenSource } from "../auth/credentials.ts";
import { type AcquisitionEvent, type BackoffPolicy, TokenManager, TokenProvider } from "../auth/tokens.ts";
import { describeAccess } from "../config/describe.ts";
import type { ProxyConfig } from "../config/types.ts";
import { ProxyError } from "../errors.ts";
import { Limits } from "../limits/limits.ts";
import { createAdminApp, type ReadinessItem, type StatusSnapshot } from "../observability/admin.ts";
import type { Logger } from "../observability/logger.ts";
import { createMetrics, type ProxyMetrics } from "../observability/metrics.ts";
import { RecentEvents } from "../observability/recent-events.ts";
import { Forwarder } from "../proxy/forward.ts";
import { Router } from "../proxy/router.ts";
import { createFrontDoor, type Routing } from "./front-door.ts";
import { rawProblem } from "./problem.ts";
import { RouteStates, routeRuntime } from "./route-runtime.ts";

/** How long a keep-alive connection may stay idle during the drain before it is closed. */
const IDLE_GRACE_MS = 1_000;

/** How long a connection refused by the parser may linger, so its peer can read the answer. */
const REFUSED_LINGER_MS = 1_000;

/**
 * Mozilla's "intermediate" TLS configuration: TLS 1.2 and 1.3 with forward-secret AEAD suites only,
 * and the client's order of preference (none of them is weak).
 */
const TLS_POLICY = {
  minVersion: "TLSv1.2",
  ciphers: [
    "TLS_AES_128_GCM_SHA256",
    "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256",
    "ECDHE-ECDSA-AES128-GCM-SHA256",
    "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384",
    "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305",
    "ECDHE-RSA-CHACHA20-POLY1305",
  ].join(":"),
  honorCipherOrder: false,
} as const satisfies SecureContextOptions;

export interface StartOptions {
  logger: Logger;
  now?: () => number;
  env?: NodeJS.ProcessEnv;
  /** Replaces msal-node token sources (unit tests of the pipeline). */
  tokenSource?: (identity: string, scope: string) => TokenSource;
  /** Overrides listen.port / adminPort (tests use 0). */
  ports?: { proxy?: number; admin?: number };
  defaultMetrics?: boolean;
  /** Token back-off policy (tests shorten it). */
  backoff?: BackoffPolicy;
  /** At most one 401-triggered renewal per identity and scope in this interval (default 30 s). */
  rejectionRenewalIntervalMs?: number;
}

export interface RunningProxy {
  proxyUrl: string;
  adminUrl: string;
  metrics: ProxyMetrics;
  tokens: TokenManager;
  /** Swaps in a new validated config (routes, access, identities); throws and keeps the old one if unservable. */
  reload(next: ProxyConfig): Promise<void>;
  /** Stops accepting, waits for in-flight requests up to drainMs, then closes everything. */
  close(drainMs?: number): Promise<void>;
}

/** Problems that would make the config fail at the first request: unreadable credential files etc. */
export async function preflight(config: ProxyConfig, env: NodeJS.ProcessEnv): Promise<string[]> {
  const used = new Set(config.routes.map((r) => r.identity));
  const identities = Object.values(config.identities).filter((i) => used.has(i.name));
  return (await Promise.all(identities.map((i) => preflightCredential(i, env)))).flat();
}

export class PreflightError extends Error {
  readonly code = "preflight_failed";
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join("\n"));
    this.name = "PreflightError";
    this.problems = problems;
  }
}

export async function startProxy(config: ProxyConfig, options: StartOptions): Promise<RunningProxy> {
  const problems = await preflight(config, options.env ?? process.env);
  if (problems.length > 0) throw new PreflightError(problems);
  const { logger } = options;
  const now = options.now ?? Date.now;
  let accepting = true;
  /** The config in force; replaced by reload(). */
  let active = config;

  const tokens: TokenManager = new TokenManager(
    (identityName, scope) =>
      new TokenProvider({
        identity: identityName,
        scope,
        now,
        source:
          options.tokenSource?.(identityName, scope) ??
          createTokenSource(active.identities[identityName]!, active.cloud, scope, {
            env: options.env ?? process.env,
          }),
        onAcquisition: (e) => onAcquisition(e),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.rejectionRenewalIntervalMs !== undefined
          ? { rejectionRenewalIntervalMs: options.rejectionRenewalIntervalMs }
          : {}),
      }),
  );
  /** In-flight counts and flow status URLs per prefix, carried across reloads. */
  const routeStates = new RouteStates();
  const metrics = createMetrics(
    () =>
      tokens.all().flatMap((p) => {
        const s = p.secondsToExpiry();
        return s === undefined ? [] : [{ identity: p.identity, scope: p.scope, secondsToExpiry: s }];
      }),
    {
      defaultMetrics: options.defaultMetrics ?? true,
      inFlight: () => routeStates.all().map(([route, state]) => ({ route, count: state.inFlight })),
      keyExpiry: () => keyExpirySamples(active, now()),
    },
  );
  /** Caller budgets, identity queues and upstream pauses, carried across reloads. */
  const limits = new Limits({
    now,
    onWaited: (identity, seconds) => metrics.limitWait.observe({ identity }, seconds),
  });

  const events = new RecentEvents(200, now);

  function onAcquisition(e: AcquisitionEvent): void {
    if (e.result === "failure") events.record("refresh_failure", e.identity, e.error);
    metrics.tokenRefreshes.inc({
      identity: e.identity,
      scope: e.scope,
      result: e.result,
      trigger: e.trigger,
      error: e.error,
    });
    metrics.tokenRefreshDuration.observe({ identity: e.identity, scope: e.scope }, e.durationSeconds);
    const line = {
      msg: "token acquisition",
      identity: e.identity,
      scope: e.scope,
      trigger: e.trigger,
      result: e.result,
      aadsts: e.failure?.aadsts ? `AADSTS${e.failure.aadsts}` : undefined,
      error: e.error || undefined,
      expiresAt: e.expiresOn ? new Date(e.expiresOn).toISOString() : undefined,
      durationMs: Math.round(e.durationSeconds * 1000),
    };
    if (e.result === "success") logger.info(line);
    else logger.warn({ ...line, reason: e.failure?.message, hint: e.failure?.hint });
  }

  const buildRouting = (cfg: ProxyConfig): Routing => {
    const states = routeStates.forConfig(cfg.routes.map((r) => r.prefix));
    limits.configure(cfg.identities);
    const routes = cfg.routes.map((route) =>
      routeRuntime(
        route,
        compileAccessCheck(route.access, now),
        tokens.provider(route.identity, route.scope),
        states.get(route.prefix)!,
        limits.forRoute(route, cfg.identities[route.identity]?.limits),
      ),
    );
    return {
      router: new Router(routes),
      clientIp: new ClientIpResolver(cfg.listen.trustProxy),
      publicUrl: cfg.listen.publicUrl,
      publicHosts: new Set(cfg.listen.publicHosts),
    };
  };
  let routing = buildRouting(config);
  const forwarder = new Forwarder();
  const frontDoor = createFrontDoor({ routing: () => routing, forwarder, metrics, logger, events });

  const serverOptions: http.ServerOptions = {
    headersTimeout: 20_000,
    requestTimeout: 0, // long uploads are bounded by per-route limits, not a global clock
    keepAliveTimeout: 65_000, // longer than common load balancers' idle timeout
    maxHeaderSize: 32 * 1024,
  };
  const tls = config.listen.tls;
  const drain = closeConnectionsWhenDraining(frontDoor);
  const proxyServer = tls
    ? https.createServer({ ...serverOptions, ...(await listenerSecureContext(tls)) }, drain.listener)
    : http.createServer(serverOptions, drain.listener);
  proxyServer.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // Node's parser refused the request (smuggling attempts, obs-fold, bad chunking, huge headers).
    // A response already being written on this socket must not get a second one inside its body.
    if (!socket.writable || drain.responding(socket)) {
      socket.destroy();
      return;
    }
    const problem =
      err.code === "HPE_HEADER_OVERFLOW"
        ? new ProxyError("headers_too_large", "request headers exceed the limit")
        : new ProxyError("bad_request", "malformed HTTP request");
    socket.end(rawProblem(problem, crypto.randomUUID()));
    // A peer that neither reads nor closes would otherwise keep the half-closed descriptor.
    const linger = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
    socket.once("close", () => clearTimeout(linger));
  });

  const readiness = (): ReadinessItem[] =>
    tokens.all().map((p) => {
      const s = p.state();
      const ready = s.valid || s.lastResult === "success" || (!active.warmup && s.lastResult === undefined);
      const reason = ready
        ? "token valid"
        : s.lastError
          ? `${s.lastError.error}: ${s.lastError.message}`
          : "no token acquired yet";
      return { identity: p.identity, scope: p.scope, ready, reason };
    });
  const HOUR = 3_600_000;
  const status = (): StatusSnapshot => {
    const inFlightOf = new Map(routeStates.all().map(([prefix, state]) => [prefix, state.inFlight]));
    return {
      ready: accepting && readiness().every((r) => r.ready),
      generatedAt: new Date(now()).toISOString(),
      routes: active.routes.map((r) => ({
        prefix: r.prefix,
        upstream: r.upstream,
        identity: r.identity,
        scope: r.scope,
        access: describeAccess(r.access),
        upstream401LastHour: events.count("upstream_401", r.prefix, HOUR),
        inFlight: inFlightOf.get(r.prefix) ?? 0,
      })),
      tokens: tokens.all().map((p) => {
        const s = p.state();
        const t: StatusSnapshot["tokens"][number] = {
          identity: s.identity,
          kind: active.identities[s.identity]?.credential.kind ?? "unknown",
          scope: s.scope,
          valid: s.valid,
        };
        if (s.expiresOn) {
          t.expiresAt = new Date(s.expiresOn).toISOString();
          t.expiresInSeconds = Math.round((s.expiresOn - now()) / 1000);
        }
        if (s.lastResult) t.lastResult = s.lastResult;
        if (s.lastAttemptAt !== undefined) t.lastAttemptAt = new Date(s.lastAttemptAt).toISOString();
        if (s.lastError) t.lastError = s.lastError;
        return t;
      }),
      recentEvents: events.list(HOUR).map((ev) => ({ ...ev, at: new Date(ev.at).toISOString() })),
      limits: {
        consumers: Object.values(active.consumers).map((c) => ({
          name: c.name,
          routes: active.routes.filter((r) => r.access.consumers?.includes(c.name)).map((r) => r.prefix),
          ...(c.rateLimit
            ? {
                rateLimit: {
                  requests: c.rateLimit.requests,
                  perSeconds: c.rateLimit.perMs / 1000,
                  burst: c.rateLimit.burst,
                },
              }
            : {}),
        })),
        // Callers known by IP or token are counted, not listed: the page names only configured callers.
        callers: limits.callers().filter((c) => !c.caller.includes(":")),
        otherCallersLimited: limits.callers().filter((c) => c.caller.includes(":")).length,
        identities: limits.identities(),
      },
    };
  };
  const adminServer = http.createServer(
    createAdminApp({ registry: metrics.registry, readiness, accepting: () => accepting, status }),
  );

  const host = config.listen.host;
  await listen(proxyServer, options.ports?.proxy ?? config.listen.port, host);
  await listen(adminServer, options.ports?.admin ?? config.listen.adminPort, host);
  const proxyUrl = urlOf(proxyServer, tls ? "https" : "http");
  const adminUrl = urlOf(adminServer, "http");
  auditConfig(logger, "config loaded", config);
  metrics.configLoaded(now());
  logger.info({ msg: "listening", proxy: proxyUrl, admin: adminUrl });

  const warmUp = () => {
    tokens.warmAll().then((results) => {
      logger.info({ msg: "warm-up finished", ready: results.filter(Boolean).length, total: results.length });
    });
  };
  if (config.warmup) warmUp();

  return {
    proxyUrl,
    adminUrl,
    metrics,
    tokens,
    async reload(next: ProxyConfig): Promise<void> {
      const nextProblems = await preflight(next, options.env ?? process.env);
      if (nextProblems.length > 0) throw new PreflightError(nextProblems);
      // Read and checked before anything changes: a missing or broken pair rejects the whole reload.
      const secureContext = tls && next.listen.tls ? await listenerSecureContext(next.listen.tls) : undefined;
      const sameCredentials = (name: string) =>
        JSON.stringify(active.identities[name]) === JSON.stringify(next.identities[name]) &&
        JSON.stringify(active.cloud) === JSON.stringify(next.cloud);
      const used = new Set(next.routes.map((r) => `${r.identity}\u0000${r.scope}`));
      // Token caches of unchanged identities survive; the rest are dropped and acquired afresh.
      tokens.retain((p) => sameCredentials(p.identity) && used.has(`${p.identity}\u0000${p.scope}`));
      active = next;
      routing = buildRouting(next);
      // New connections get the pair read now (cert-manager rotates it in place); open ones keep theirs.
      if (secureContext) (proxyServer as https.Server).setSecureContext(secureContext);
      const restartBound = (l: ProxyConfig["listen"]) => JSON.stringify({ ...l, tls: l.tls !== undefined });
      if (restartBound(next.listen) !== restartBound(config.listen)) {
        logger.warn({
          msg: "listen settings changed: ports, host and turning TLS on or off take effect after a restart",
        });
      }
      auditConfig(logger, "config reloaded", next);
      metrics.configLoaded(now());
      if (next.warmup) warmUp();
    },
    async close(drainMs = active.listen.drainTimeoutMs) {
      accepting = false;
      drain.start();
      // http.Server's close() would also destroy every connection that looks idle at this instant,
      // among them busy callers' whose next request is on its way; net.Server's only stops listening.
      const proxyClosed = new Promise<void>((resolve) =>
        net.Server.prototype.close.call(proxyServer, () => resolve()),
      );
      // By the first sweep busy callers have sent their next request (answered with Connection: close),
      // so a connection idle then is not about to be used.
      const idleSweep = setInterval(() => proxyServer.closeIdleConnections(), IDLE_GRACE_MS);
      const drained = await Promise.race([
        proxyClosed.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), drainMs).unref()),
      ]);
      clearInterval(idleSweep);
      if (!drained) proxyServer.closeAllConnections();
      proxyServer.close(); // http.Server's own part: stops its header and request timeout checks
      adminServer.closeAllConnections();
      await new Promise<void>((resolve) => adminServer.close(() => resolve()));
      tokens.close();
      limits.close();
      forwarder.close();
    },
  };
}

/**
 * Wraps the proxy's request listener so that, once draining starts, every response whose head is not
 * written yet says `Connection: close`: Node then closes the socket after it, and busy keep-alive
 * callers move to another replica instead of being reset at the drain timeout.
 */
function closeConnectionsWhenDraining(listener: http.RequestListener): {
  listener: http.RequestListener;
  start(): void;
  /** Whether a response has started and not finished on this socket (rare path: a linear scan). */
  responding(socket: Duplex): boolean;
} {
  let draining = false;
  // An array with swap-removal, not a Set: a Set's replaced hash tables in the old generation would keep
  // finished responses alive through young collections (see Forwarder.inFlight).
  const open: Array<{ res: http.ServerResponse; slot: number }> = [];
  const untrack = (entry: { slot: number }) => {
    const last = open.pop()!;
    if (last !== entry) {
      open[entry.slot] = last;
      last.slot = entry.slot;
    }
  };
  return {
    listener(req, res) {
      if (draining) {
        res.setHeader("connection", "close");
      } else {
        const entry = { res, slot: open.length };
        open.push(entry);
        // `on`, not `once`: close is emitted once, and once() wraps every listener.
        res.on("close", () => {
          if (!draining) untrack(entry);
        });
      }
      listener(req, res);
    },
    responding(socket) {
      return open.some((entry) => entry.res.socket === socket && entry.res.headersSent);
    },
    start() {
      draining = true;
      // writeHead merges headers set earlier, so the front door's own head keeps this one.
      for (const { res } of open) if (!res.headersSent) res.setHeader("connection", "close");
      open.length = 0;
    },
  };
}

/** The TLS listener's options for a certificate and key pair; throws if either is missing or they do not match. */
async function listenerSecureContext(files: {
  certFile: string;
  keyFile: string;
}): Promise<SecureContextOptions> {
  try {
    const [cert, key] = await Promise.all([readFile(files.certFile), readFile(files.keyFile)]);
    const context: SecureContextOptions = { ...TLS_POLICY, cert, key };
    createSecureContext(context); // checks the pair before the server is handed it
    return context;
  } catch (err) {
    throw new Error(`listen.tls: ${(err as Error).message}`);
  }
}

/** The audit line: what is configured, never a secret. */
function auditConfig(logger: Logger, msg: string, config: ProxyConfig): void {
  logger.info({
    msg,
    file: config.file,
    routes: config.routes.map((r) => ({
      prefix: r.prefix,
      upstream: r.upstream,
      identity: r.identity,
      access: describeAccess(r.access),
    })),
    identities: Object.values(config.identities).map((i) => ({ name: i.name, kind: i.credential.kind })),
  });
}

/** Every API key with an expiry date, under its consumer (or its own name for a route's own key). */
function keyExpirySamples(config: ProxyConfig, nowMs: number) {
  const seen = new Set<string>();
  const samples: Array<{ consumer: string; key: string; secondsToExpiry: number }> = [];
  const add = (consumer: string, key: { name: string; expires?: Date }) => {
    if (!key.expires || seen.has(`${consumer}\u0000${key.name}`)) return;
    seen.add(`${consumer}\u0000${key.name}`);
    samples.push({ consumer, key: key.name, secondsToExpiry: (key.expires.getTime() - nowMs) / 1000 });
  };
  for (const c of Object.values(config.consumers)) for (const k of c.apiKeys) add(c.name, k);
  for (const r of config.routes) for (const k of r.access.apiKeys ?? []) add(k.consumer ?? k.name, k);
  return samples;
}

function listen(server: http.Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function urlOf(server: http.Server, scheme: string): string {
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const shown = host === "0.0.0.0" ? "127.0.0.1" : host === "[::]" ? "[::1]" : host;
  return `${scheme}://${shown}:${address.port}`;
}
