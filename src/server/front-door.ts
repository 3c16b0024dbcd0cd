// The request path, in order: route → checkAccess → attachToken → forward → record.
// Kept free of per-request middleware: express (with helmet) only renders the responses the proxy
// itself generates (errors), never the forwarded ones.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { Readable } from "node:stream";
import type { TLSSocket } from "node:tls";
import express from "express";
import helmet from "helmet";
import type { AccessCheck, AccessDecision } from "../access/check.ts";
import { type ClientIpResolver, normaliseIp } from "../access/client-ip.ts";
import type { TokenProvider } from "../auth/tokens.ts";
import type { RouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { requestLogger, safePath } from "../observability/logger.ts";
import type { ProxyMetrics } from "../observability/metrics.ts";
import type { RecentEvents } from "../observability/recent-events.ts";
import { type Forwarder, type ForwardOptions, NO_BODY } from "../proxy/forward.ts";
import { pickRequestId, requestHeadersFor, responseHeaders } from "../proxy/headers.ts";
import { sendWithLinkRewrite } from "../proxy/link-rewrite.ts";
import { relay } from "../proxy/relay.ts";
import {
  rewriteLocationHeaders,
  type UrlMapping,
  WORKFLOW_SEGMENT,
  withPinnedQuery,
  workflowRootOf,
} from "../proxy/rewrite.ts";
import { compilePathAllowlist, type RouteMatch, type Router } from "../proxy/router.ts";

/** A route with everything the hot path needs precomputed. */
export interface RouteRuntime {
  config: RouteConfig;
  prefix: string;
  /** Metric/log label: the prefix. */
  label: string;
  target: URL;
  /** flow routes: the workflow's root, reached through the WORKFLOW_SEGMENT sub-path. */
  workflowRoot: URL | undefined;
  methods: ReadonlySet<string>;
  allowPath: ((rest: string) => boolean) | undefined;
  checkAccess: AccessCheck;
  tokens: TokenProvider;
  inFlight: number;
}

export function routeRuntime(
  config: RouteConfig,
  checkAccess: AccessCheck,
  tokens: TokenProvider,
): RouteRuntime {
  return {
    config,
    prefix: config.prefix,
    label: config.prefix,
    target: new URL(config.upstream),
    workflowRoot: config.service === "flow" ? workflowRootOf(new URL(config.upstream)) : undefined,
    methods: new Set(config.methods),
    allowPath: compilePathAllowlist(config.paths),
    checkAccess,
    tokens,
    inFlight: 0,
  };
}

/** What a config reload swaps in one assignment, so a request sees either the old or the new set. */
export interface Routing {
  router: Router<RouteRuntime>;
  clientIp: ClientIpResolver;
  publicUrl: string | undefined;
}

export interface FrontDoorDeps {
  routing: () => Routing;
  forwarder: Forwarder;
  metrics: ProxyMetrics;
  logger: Logger;
  events: RecentEvents;
}

const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

interface Exchange {
  requestId: string;
  started: number;
  route: RouteRuntime | undefined;
  upstreamStatus: number | undefined;
  principal: string | undefined;
  error: string | undefined;
  retried: boolean;
}

/** What one upstream attempt needs; kept for the retry after a 401. */
interface Attempt {
  req: IncomingMessage;
  res: ServerResponse;
  x: Exchange;
  route: RouteRuntime;
  /** The route's target, or a flow's workflow root. */
  upstream: URL;
  /** Path after the upstream's base path, with the query. */
  path: string;
  publicUrl: string | undefined;
}

/** Bodies up to this size are held so the request can be replayed after an upstream 401. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;
const EMPTY_BODY = Buffer.alloc(0);

function isWorkflowPath(rest: string): boolean {
  return rest === WORKFLOW_SEGMENT || rest.startsWith(`${WORKFLOW_SEGMENT}/`);
}

/** Counts a chunked body as it streams (Content-Length bodies are checked before forwarding). */
function limitStreamingBody(req: IncomingMessage, maxBytes: number, onExceeded: () => void): void {
  let seen = 0;
  const count = (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > maxBytes) {
      req.off("data", count);
      onExceeded();
    }
  };
  req.on("data", count);
}

function tooLarge(route: RouteRuntime): ProxyError {
  return new ProxyError("payload_too_large", `request body exceeds ${route.config.maxBodyBytes} bytes`, {
    headers: { connection: "close" },
  });
}

function replayMode(req: IncomingMessage): "empty" | "small" | "stream" {
  if (req.headers["transfer-encoding"] !== undefined) return "stream";
  const length = req.headers["content-length"];
  if (length === undefined || length === "0") return "empty";
  return Number(length) <= REPLAY_LIMIT_BYTES ? "small" : "stream";
}

function readSmallBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
  });
}

export function createFrontDoor(deps: FrontDoorDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const { forwarder, metrics, logger } = deps;
  const requestLog = requestLogger(logger);
  const renderProblem = createProblemRenderer();

  function record(req: IncomingMessage, res: ServerResponse, x: Exchange): void {
    const route = x.route?.label ?? "unmatched";
    const method = KNOWN_METHODS.has(req.method ?? "") ? req.method! : "OTHER";
    const seconds = (performance.now() - x.started) / 1000;
    const status = res.headersSent ? res.statusCode : 0; // 0: connection closed before any response
    metrics.requests.add(route, method, status);
    metrics.requestDuration.observe(route, seconds);
    if (x.route) x.route.inFlight--;
    requestLog({
      requestId: x.requestId,
      route,
      method: req.method,
      path: safePath(req.originalUrl ?? ""),
      status,
      upstreamStatus: x.upstreamStatus,
      durationMs: Math.round(seconds * 1e4) / 10,
      identity: x.route?.config.identity,
      principal: x.principal,
      retried: x.retried,
      error: x.error,
    });
  }

  function fail(req: IncomingMessage, res: ServerResponse, x: Exchange, err: unknown): void {
    const problem =
      err instanceof ProxyError
        ? err
        : new ProxyError("upstream_unreachable", "internal error while forwarding");
    if (!(err instanceof ProxyError)) logger.error({ msg: "unexpected error", requestId: x.requestId, err });
    x.error = problem.code;
    if (x.route && problem.code !== "route_not_found" && problem.status >= 500) {
      metrics.upstreamErrors.inc({ route: x.route.label, code: problem.code });
    }
    if (res.headersSent) {
      res.destroy(); // mid-body failure: the caller must see a broken response, not a short one
      return;
    }
    renderProblem(req, res, problem, x.requestId);
  }

  /** Strips caller headers, then sends — buffering a small body first so a 401 can be retried. */
  function forward(
    req: IncomingMessage,
    res: ServerResponse,
    x: Exchange,
    routing: Routing,
    route: RouteRuntime,
    rest: string,
    query: string,
    bearer: string,
  ) {
    const { clientIp, publicUrl } = routing;
    const socket = req.socket as TLSSocket;
    const peer = socket.remoteAddress ?? "";
    req.headers = requestHeadersFor(req.headers, {
      clientPeer: normaliseIp(peer),
      trustedPeer: clientIp.isTrusted(peer),
      proto: socket.encrypted ? "https" : "http",
    });
    const pinned = route.config.pinnedQuery;
    const q = pinned ? withPinnedQuery(query, pinned) : query;
    const onWorkflow = route.workflowRoot !== undefined && isWorkflowPath(rest);
    const target: Attempt = {
      req,
      res,
      x,
      route,
      upstream: onWorkflow ? route.workflowRoot! : route.target,
      path: (onWorkflow ? rest.slice(WORKFLOW_SEGMENT.length) : rest) + q,
      publicUrl,
    };
    const mode = replayMode(req);
    if (mode === "small") {
      readSmallBody(req).then(
        (body) => send(target, bearer, body, false),
        () => fail(req, res, x, new ProxyError("bad_request", "request body could not be read")),
      );
    } else {
      send(target, bearer, mode === "empty" ? EMPTY_BODY : undefined, false);
    }
  }

  /**
   * One attempt upstream. `replay` is the body to send again (EMPTY_BODY for none), or undefined
   * when the request streams and so cannot be retried.
   */
  function send(t: Attempt, bearer: string, replay: Buffer | undefined, retried: boolean): void {
    const { req, res, x, route } = t;
    let passing = false;
    const passThrough = (upstream: IncomingMessage) => {
      passing = true;
      const headers = responseHeaders(upstream, route.target.hostname);
      headers["x-request-id"] = x.requestId;
      // Only responses that carry a URL to rewrite pay for building the proxy's own base URL.
      const needsMappings = route.config.rewriteLinks || hasRewritableHeader(headers);
      const mappings = needsMappings ? urlMappings(req, route, t.publicUrl) : [];
      if (needsMappings) rewriteLocationHeaders(headers, mappings);
      const status = upstream.statusCode ?? 502;
      if (route.config.rewriteLinks) {
        sendWithLinkRewrite(upstream, res, status, headers, mappings, (result) =>
          metrics.linkRewrites.inc({ route: route.label, result }),
        );
        return;
      }
      res.writeHead(status, upstream.statusMessage, headers);
      relay(upstream, res);
    };
    const options: ForwardOptions = {
      target: t.upstream,
      path: t.path,
      bearer,
      timeoutMs: route.config.timeoutMs,
      onResponse(upstream) {
        const status = upstream.statusCode ?? 502;
        x.upstreamStatus = status;
        if (status !== 401) {
          route.tokens.markAccepted(bearer);
          passThrough(upstream);
          return;
        }
        metrics.upstream401.inc({ route: route.label });
        deps.events.record("upstream_401", route.label, retried ? "after retry with a new token" : "");
        // The token was refused (revoked, rotated, stale roles): renew it. The 401 stays paused
        // meanwhile; a replayable request is retried once with the new token, anything else gets it.
        route.tokens.renewAfterRejection(bearer).then(
          (fresh) => {
            if (replay === undefined || retried || fresh === bearer) {
              passThrough(upstream);
              return;
            }
            upstream.resume();
            x.retried = true;
            send(t, fresh, replay, true);
          },
          (err) => {
            upstream.resume();
            fail(req, res, x, err);
          },
        );
      },
      onClose(upstream) {
        // An upstream that dies mid-body must not leave the caller waiting, or with a short body that
        // looks complete: break the caller's connection too.
        if (passing && !upstream.complete) {
          x.error = "upstream_reset";
          res.destroy();
        }
      },
      onError(error) {
        fail(req, res, x, error);
      },
    };
    // A streaming request is piped as it arrives; a buffered (or absent) body is sent from memory.
    if (replay === EMPTY_BODY) options.body = NO_BODY;
    else if (replay !== undefined) options.body = Readable.from([replay]);
    const abort = forwarder.forward(req, res, options);
    if (replay === undefined && req.headers["transfer-encoding"] !== undefined) {
      limitStreamingBody(req, route.config.maxBodyBytes, () => {
        abort();
        req.unpipe();
        fail(req, res, x, tooLarge(route));
        // The rest of the body is not read: close the connection once the 413 is out.
        res.once("finish", () => req.socket.destroy());
      });
    }
  }

  /** After access: body size, concurrency, then the token (synchronously when one is cached). */
  function admitted(
    req: IncomingMessage,
    res: ServerResponse,
    x: Exchange,
    routing: Routing,
    match: RouteMatch<RouteRuntime>,
    decision: AccessDecision,
  ): void {
    const { route, rest, query } = match;
    if (!decision.allowed) {
      metrics.accessDenied.inc({ route: route.label, reason: decision.reason });
      const message = decision.code === "unauthenticated" ? "credentials required" : "access denied";
      const headers = decision.challenge ? { "www-authenticate": decision.challenge } : undefined;
      fail(req, res, x, new ProxyError(decision.code, message, headers ? { headers } : {}));
      return;
    }
    x.principal = decision.principal;
    const length = Number(req.headers["content-length"] ?? 0);
    if (length > route.config.maxBodyBytes) {
      fail(req, res, x, tooLarge(route));
      return;
    }
    if (route.inFlight > route.config.maxConcurrent) {
      const error = new ProxyError("overloaded", "too many requests in flight on this route", {
        headers: { "retry-after": "1" },
      });
      fail(req, res, x, error);
      return;
    }
    const ready = route.tokens.peek();
    if (ready !== undefined) {
      forward(req, res, x, routing, route, rest, query, ready);
      return;
    }
    route.tokens.get().then(
      (token) => forward(req, res, x, routing, route, rest, query, token),
      (err) => fail(req, res, x, err),
    );
  }

  return function handle(req, res) {
    const x: Exchange = {
      requestId: pickRequestId(req.headers["x-request-id"]),
      started: performance.now(),
      route: undefined,
      upstreamStatus: undefined,
      principal: undefined,
      error: undefined,
      retried: false,
    };
    req.originalUrl = req.url;
    res.on("close", () => record(req, res, x));
    try {
      const routing = deps.routing();
      const match = routing.router.match(req.url ?? "");
      const { route } = match;
      x.route = route;
      route.inFlight++;
      const method = req.method ?? "GET";
      // Polling a flow run (the asynchronous response pattern's Location) is a GET, whatever the
      // trigger's own methods are.
      const flowPoll = method === "GET" && route.workflowRoot !== undefined && isWorkflowPath(match.rest);
      if (!route.methods.has(method) && !flowPoll) {
        throw new ProxyError("method_not_allowed", `${method} is not allowed on this route`, {
          headers: { allow: [...route.methods].join(", ") },
        });
      }
      if (route.allowPath && !route.allowPath(match.rest)) {
        throw new ProxyError("bad_path", "this path is not in the route's allowlist");
      }
      const clientIp = routing.clientIp.resolve(req.socket.remoteAddress, req.headers["x-forwarded-for"]);
      const decision = route.checkAccess(req.headers, clientIp);
      if (decision instanceof Promise) {
        decision.then(
          (d) => admitted(req, res, x, routing, match, d),
          (err) => fail(req, res, x, err),
        );
      } else {
        admitted(req, res, x, routing, match, decision);
      }
    } catch (err) {
      fail(req, res, x, err);
    }
  };
}

function hasRewritableHeader(headers: OutgoingHttpHeaders): boolean {
  return (
    headers.location !== undefined ||
    headers["operation-location"] !== undefined ||
    headers["azure-asyncoperation"] !== undefined
  );
}

/** Upstream base → proxy base, for this route (and a flow's workflow root). */
function urlMappings(req: IncomingMessage, route: RouteRuntime, publicUrl: string | undefined): UrlMapping[] {
  const proxyBase = proxyBaseFor(req, route, publicUrl);
  const mappings: UrlMapping[] = [[route.target, proxyBase]];
  if (route.workflowRoot) mappings.push([route.workflowRoot, proxyBase + WORKFLOW_SEGMENT]);
  return mappings;
}

/** Where callers reach this route: publicUrl, else trusted X-Forwarded-Proto/Host, else Host. */
function proxyBaseFor(req: IncomingMessage, route: RouteRuntime, publicUrl: string | undefined): string {
  const prefix = route.config.prefix === "/" ? "" : route.config.prefix;
  if (publicUrl) return publicUrl.replace(/\/$/, "") + prefix;
  const proto = (req.headers["x-forwarded-proto"] as string | undefined) ?? "http";
  const host = (req.headers["x-forwarded-host"] as string | undefined) ?? "";
  return `${proto.split(",")[0]!.trim()}://${host.split(",")[0]!.trim()}${prefix}`;
}

declare module "node:http" {
  interface IncomingMessage {
    originalUrl?: string;
  }
}

/** express + helmet render every response the proxy itself generates, as application/problem+json. */
export function createProblemRenderer(): (
  req: IncomingMessage,
  res: ServerResponse,
  problem: ProxyError,
  requestId: string,
) => void {
  const app = express();
  app.disable("x-powered-by");
  app.use(helmet());
  app.use((_req, res) => {
    const { problem, requestId } = res.locals as { problem: ProxyError; requestId: string };
    res.setHeader("x-request-id", requestId);
    for (const [name, value] of Object.entries(problem.headers)) res.setHeader(name, value);
    res
      .status(problem.status)
      .type("application/problem+json")
      .send(JSON.stringify(problem.toProblem(requestId)));
  });
  return (req, res, problem, requestId) => {
    // Drain what the caller is still sending so the connection can be reused (unless it is too big).
    if (problem.code !== "payload_too_large") req.resume();
    (res as express.Response).locals = { problem, requestId };
    app(req as express.Request, res as express.Response);
  };
}
