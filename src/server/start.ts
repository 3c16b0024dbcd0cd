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
import {
  createOnBehalfOfExchange,
  createTokenSource,
  preflightCredential,
  type TokenSource,
} from "../auth/credentials.ts";
import { OboTokenCache, OboTokenCaches } from "../auth/obo-tokens.ts";
import { type AcquisitionEvent, type BackoffPolicy, TokenManager, TokenProvider } from "../auth/tokens.ts";
import { describeAccess } from "../config/describe.ts";
import { describeEgress } from "../config/egress.ts";
import { tracingEnvironment } from "../config/environment.ts";
import type { ProxyConfig } from "../config/types.ts";
import { EgressAgents } from "../egress/agents.ts";
import { ProxyError } from "../errors.ts";
import { createForwardAuth } from "../gateway/forward-auth.ts";
import { Limits } from "../limits/limits.ts";
import {
  createAdminApp,
  decideReadiness,
  type ReadinessItem,
  type StatusSnapshot,
} from "../observability/admin.ts";
import type { Logger } from "../observability/logger.ts";
import { createMetrics, type ProxyMetrics, VERSION } from "../observability/metrics.ts";
import { RecentEvents } from "../observability/recent-events.ts";
import { createTracing } from "../observability/tracing.ts";
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
  /** Overrides listen.port / adminPort / forwardAuth.port (tests use 0). */
  ports?: { proxy?: number; admin?: number; forwardAuth?: number };
  defaultMetrics?: boolean;
  /** Token back-off policy (tests shorten it). */
  backoff?: BackoffPolicy;
  /** At most one 401-triggered renewal per identity and scope in this interval (default 30 s). */
  rejectionRenewalIntervalMs?: number;
  /** Users kept per on-behalf-of identity and scope (default 10,000). */
  maxOboUsers?: number;
}

export interface RunningProxy {
  proxyUrl: string;
  adminUrl: string;
  /** The forward-auth listener, when routes.yaml has a forwardAuth block. */
  forwardAuthUrl: string | undefined;
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
  const tracing = await createTracing(tracingEnvironment(options.env ?? process.env), VERSION);
  /** The config in force; replaced by reload(). */
  let active = config;
  /** Token requests leave through the egress proxy like forwarded traffic (one pool for every identity). */
  const tokenEgress = new EgressAgents(config.egress, { keepAlive: true });

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
            egress: tokenEgress,
          }),
        onAcquisition: (e) => onAcquisition(e),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.rejectionRenewalIntervalMs !== undefined
          ? { rejectionRenewalIntervalMs: options.rejectionRenewalIntervalMs }
          : {}),
      }),
  );
  const oboCaches = new OboTokenCaches(
    (identityName, scope) =>
      new OboTokenCache({
        identity: identityName,
        kind: active.identities[identityName]!.credential.kind,
        scope,
        now,
        exchange: (assertion) => exchanges(identityName, scope).exchange(assertion),
        onAcquisition: (e) => onAcquisition(e),
        ...(options.backoff ? { backoff: options.backoff } : {}),
        ...(options.maxOboUsers !== undefined ? { maxUsers: options.maxOboUsers } : {}),
      }),
  );
  /** One msal client per on-behalf-of identity and scope, built at its first exchange. */
  const oboClients = new Map<string, ReturnType<typeof createOnBehalfOfExchange>>();
  const exchanges = (identityName: string, scope: string) => {
    const key = `${identityName}\u0000${scope}`;
    let client = oboClients.get(key);
    if (!client) {
      client = createOnBehalfOfExchange(active.identities[identityName]!, active.cloud, scope, {
        env: options.env ?? process.env,
        egress: tokenEgress,
      });
      oboClients.set(key, client);
    }
    return client;
  };
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
    const endedAt = now();
    tracing?.recordTokenAcquisition({
      identity: e.identity,
      scope: e.scope,
      trigger: e.trigger,
      result: e.result,
      error: e.error,
      startedAt: endedAt - e.durationSeconds * 1000,
      endedAt,
    });
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
      routeRuntime(route, {
        checkAccess: compileAccessCheck(route.access, now, route.onBehalfOf ? { onBehalfOf: true } : {}),
        // An on-behalf-of route has no token of its own: each caller's is exchanged from its own token.
        tokens: route.onBehalfOf ? undefined : tokens.get(route.identity, route.scope),
        obo: route.onBehalfOf ? oboCaches.get(route.identity, route.scope) : undefined,
        state: states.get(route.prefix)!,
        limits: limits.forRoute(route, cfg.identities[route.identity]?.limits),
      }),
    );
    return {
      router: new Router(routes),
      clientIp: new ClientIpResolver(cfg.listen.trustProxy),
      publicUrl: cfg.listen.publicUrl,
      publicHosts: new Set(cfg.listen.publicHosts),
    };
  };
  let routing = buildRouting(config);
  const forwarder = new Forwarder({ egress: config.egress });
  /** From SIGTERM on, responses say Connection: close, so busy keep-alive callers move elsewhere. */
  let draining = false;
  const frontDoor = createFrontDoor({
    routing: () => routing,
    forwarder,
    metrics,
    logger,
    events,
    draining: () => draining,
    tracing,
  });

  const serverOptions: http.ServerOptions = {
    headersTimeout: 20_000,
    requestTimeout: 0, // long uploads are bounded by per-route limits, not a global clock
    keepAliveTimeout: 65_000, // longer than common load balancers' idle timeout
    maxHeaderSize: 32 * 1024,
    // A request that declares no body starts with its body stream already ended: no stream events for it.
    optimizeEmptyRequests: true,
  };
  const tls = config.listen.tls;
  const proxyServer = tls
    ? https.createServer({ ...serverOptions, ...(await listenerSecureContext(tls)) }, frontDoor.handle)
    : http.createServer(serverOptions, frontDoor.handle);
  proxyServer.on("clientError", (err: NodeJS.ErrnoException, socket) => {
    // Node's parser refused the request (smuggling attempts, obs-fold, bad chunking, huge headers).
    // An answer that could land inside another response, or be taken for another request's, is not given.
    if (!socket.writable || !frontDoor.mayAnswerParseError(socket)) {
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

  // Gateways ask here, on a port of its own; its settings are read once (a reload keeps them).
  const forwardAuthSettings = config.forwardAuth;
  const forwardAuth = forwardAuthSettings
    ? createForwardAuth({ routing: () => routing, settings: forwardAuthSettings, metrics, logger })
    : undefined;
  const forwardAuthServer = forwardAuth
    ? http.createServer(serverOptions, (req, res) => {
        // Its answers are immediate; during the drain they end the gateway's connection too.
        if (draining) res.setHeader("connection", "close");
        forwardAuth(req, res);
      })
    : undefined;
  // Gateways send well-formed requests; anything the parser refuses is simply dropped.
  forwardAuthServer?.on("clientError", (_err, socket: Duplex) => socket.destroy());

  const tokenHealth = (): ReadinessItem[] =>
    tokens.all().map((p) => {
      const s = p.state();
      const ready = s.valid || s.lastResult === "success" || (!active.warmup && s.lastResult === undefined);
      const reason = ready
        ? "token valid"
        : s.lastError
          ? s.lastError.message.startsWith(s.lastError.error)
            ? s.lastError.message // Entra's message already starts with its AADSTS code
            : `${s.lastError.error}: ${s.lastError.message}`
          : "no token acquired yet";
      return { identity: p.identity, scope: p.scope, ready, reason };
    });
  /** Set once the first warm-up has finished, whatever its result (reloads keep the process ready). */
  let warmedUp = !config.warmup;
  const readiness = () =>
    decideReadiness({
      accepting,
      warmedUp,
      mode: active.health.readiness,
      identities: tokenHealth(),
      routes: active.routes,
    });
  const HOUR = 3_600_000;
  const status = (): StatusSnapshot => {
    const inFlightOf = new Map(routeStates.all().map(([prefix, state]) => [prefix, state.inFlight]));
    const answered = metrics.requests.perRoute();
    return {
      ready: readiness().ready,
      generatedAt: new Date(now()).toISOString(),
      routes: active.routes.map((r) => ({
        prefix: r.prefix,
        upstream: r.upstream,
        identity: r.identity,
        scope: r.scope,
        access: describeAccess(r.access),
        upstream401LastHour: events.count("upstream_401", r.prefix, HOUR),
        inFlight: inFlightOf.get(r.prefix) ?? 0,
        requests: answered.get(r.prefix)?.requests ?? 0,
        serverErrors: answered.get(r.prefix)?.serverErrors ?? 0,
      })),
      apiKeys: active.routes.flatMap((r) =>
        (r.access.apiKeys ?? []).map((k) =>
          k.expires
            ? {
                route: r.prefix,
                name: k.name,
                expiresAt: k.expires.toISOString(),
                expiresInDays: Math.ceil((k.expires.getTime() - now()) / 86_400_000),
              }
            : { route: r.prefix, name: k.name },
        ),
      ),
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
      onBehalfOf: oboCaches.all().map((c) => ({
        identity: c.identity,
        scope: c.scope,
        cachedUsers: c.size,
        maxUsers: c.maxUsers,
      })),
      recentEvents: events.list(HOUR).map((ev) => ({ ...ev, at: new Date(ev.at).toISOString() })),
      egress: describeEgress(config.egress),
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
  const adminServer = http.createServer(createAdminApp({ registry: metrics.registry, readiness, status }));

  const host = config.listen.host;
  await listen(proxyServer, options.ports?.proxy ?? config.listen.port, host);
  await listen(adminServer, options.ports?.admin ?? config.listen.adminPort, host);
  if (forwardAuthServer && forwardAuthSettings) {
    await listen(forwardAuthServer, options.ports?.forwardAuth ?? forwardAuthSettings.port, host);
  }
  const proxyUrl = urlOf(proxyServer, tls ? "https" : "http");
  const adminUrl = urlOf(adminServer, "http");
  const forwardAuthUrl = forwardAuthServer ? urlOf(forwardAuthServer, "http") : undefined;
  auditConfig(logger, "config loaded", config);
  metrics.configLoaded(now());
  // The addresses actually bound (0.0.0.0 stays 0.0.0.0), not the loopback URL used to reach them.
  logger.info({
    msg: "listening",
    proxy: boundUrl(proxyServer, tls ? "https" : "http"),
    admin: boundUrl(adminServer, "http"),
    ...(forwardAuthServer ? { forwardAuth: boundUrl(forwardAuthServer, "http") } : {}),
  });
  if (forwardAuthUrl) {
    logger.info({
      msg: "forward auth listening",
      forwardAuth: boundUrl(forwardAuthServer!, "http"),
      trustedPeers: forwardAuthSettings?.trustedPeers,
      pathPrefix: forwardAuthSettings?.pathPrefix,
      routes: config.routes.filter((r) => r.forwardAuth).map((r) => r.prefix),
    });
  }

  const warmUp = () => {
    tokens.warmAll().then((results) => {
      warmedUp = true;
      logger.info({ msg: "warm-up finished", ready: results.filter(Boolean).length, total: results.length });
    });
  };
  if (config.warmup) warmUp();

  return {
    proxyUrl,
    adminUrl,
    forwardAuthUrl,
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
      oboCaches.retain((c) => sameCredentials(c.identity) && used.has(`${c.identity}\u0000${c.scope}`));
      for (const key of [...oboClients.keys()]) {
        if (!sameCredentials(key.split("\u0000")[0]!)) oboClients.delete(key);
      }
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
      if (JSON.stringify(next.egress) !== JSON.stringify(config.egress)) {
        logger.warn({ msg: "egress settings changed: they take effect after a restart" });
      }
      if (JSON.stringify(next.forwardAuth) !== JSON.stringify(config.forwardAuth)) {
        logger.warn({ msg: "forwardAuth settings changed: they take effect after a restart" });
      }
      auditConfig(logger, "config reloaded", next);
      metrics.configLoaded(now());
      if (next.warmup) warmUp();
    },
    async close(drainMs = active.listen.drainTimeoutMs) {
      accepting = false;
      draining = true;
      // http.Server's close() would also destroy every connection that looks idle at this instant,
      // among them busy callers' whose next request is on its way; net.Server's only stops listening.
      const stopListening = (server: http.Server | undefined) =>
        new Promise<void>((resolve) =>
          server ? net.Server.prototype.close.call(server, () => resolve()) : resolve(),
        );
      const proxyClosed = Promise.all([stopListening(proxyServer), stopListening(forwardAuthServer)]);
      // By the first sweep busy callers have sent their next request (answered with Connection: close),
      // so a connection idle then is not about to be used.
      const idleSweep = setInterval(() => {
        proxyServer.closeIdleConnections();
        forwardAuthServer?.closeIdleConnections();
      }, IDLE_GRACE_MS);
      const drained = await Promise.race([
        proxyClosed.then(() => true),
        new Promise<boolean>((resolve) => setTimeout(() => resolve(false), drainMs).unref()),
      ]);
      clearInterval(idleSweep);
      if (!drained) {
        proxyServer.closeAllConnections();
        forwardAuthServer?.closeAllConnections();
      }
      proxyServer.close(); // http.Server's own part: stops its header and request timeout checks
      forwardAuthServer?.close();
      adminServer.closeAllConnections();
      await new Promise<void>((resolve) => adminServer.close(() => resolve()));
      tokens.close();
      oboCaches.close();
      limits.close();
      await tracing?.shutdown();
      forwarder.close();
      tokenEgress.destroy();
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
    egress: describeEgress(config.egress),
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

/** A URL this host can use to reach the server: a wildcard address becomes loopback. */
function urlOf(server: http.Server, scheme: string): string {
  const bound = new URL(boundUrl(server, scheme));
  if (bound.hostname === "0.0.0.0") bound.hostname = "127.0.0.1";
  if (bound.hostname === "[::]") bound.hostname = "[::1]";
  return bound.origin;
}

/** The address and port the server is bound to, as a URL. */
export function boundUrl(server: net.Server, scheme: string): string {
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return `${scheme}://${host}:${address.port}`;
}
