// The forward-auth listener (design.md "Gateway integration (forward auth)"): a gateway in front asks
// whether a request may pass, and gets the route's token to attach; the bytes never flow through here.
// Only trusted peers are answered, since an allowed answer carries a raw bearer token.
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import { buildBlockList, ClientIpResolver, contains } from "../access/client-ip.ts";
import type { ForwardAuthConfig } from "../config/types.ts";
import { ProxyError } from "../errors.ts";
import { LimitRefusal } from "../limits/refusal.ts";
import type { Logger } from "../observability/logger.ts";
import { loggedError, requestLogger, safePath } from "../observability/logger.ts";
import type { ProxyMetrics } from "../observability/metrics.ts";
import { pickRequestId } from "../proxy/headers.ts";
import { accessRefusal, upstreamFor } from "../server/admission.ts";
import type { Routing } from "../server/front-door.ts";
import { writeProblem } from "../server/problem.ts";
import type { RouteRuntime } from "../server/route-runtime.ts";

export interface ForwardAuthDeps {
  /** The routing in force; a config reload swaps it. */
  routing: () => Routing;
  settings: ForwardAuthConfig;
  metrics: ProxyMetrics;
  logger: Logger;
}

/** The request the gateway is asking about. */
export interface OriginalRequest {
  method: string;
  /** Origin-form target: path and query. */
  target: string;
}

const METHOD = /^[A-Za-z]{1,20}$/;

/**
 * The original request, from the first of: X-Original-URI + X-Original-Method (nginx), X-Forwarded-Uri +
 * X-Forwarded-Method (Traefik), the request's own method and path minus `pathPrefix` (Envoy ext_authz).
 * More than one of them at once is refused: a caller could have added the others' headers.
 */
export function originalRequest(req: IncomingMessage, pathPrefix: string | undefined): OriginalRequest {
  const headers = req.headersDistinct;
  const url = req.url ?? "";
  const underPrefix = pathPrefix !== undefined && url.startsWith(`${pathPrefix}/`);
  const styles: Array<{ uri: string; method: string } | "envoy"> = [];
  if (headers["x-original-uri"]) styles.push({ uri: "x-original-uri", method: "x-original-method" });
  if (headers["x-forwarded-uri"]) styles.push({ uri: "x-forwarded-uri", method: "x-forwarded-method" });
  if (underPrefix) styles.push("envoy");
  if (styles.length > 1) {
    throw new ProxyError("bad_request", "the original request is given in more than one way");
  }
  const style = styles[0];
  if (style === undefined || style === "envoy") {
    if (pathPrefix !== undefined && !underPrefix) {
      throw new ProxyError("route_not_found", "the original request is not given");
    }
    return { method: req.method ?? "GET", target: underPrefix ? url.slice(pathPrefix!.length) : url };
  }
  const target = single(headers[style.uri], style.uri);
  const method = single(headers[style.method], style.method);
  if (!METHOD.test(method)) throw new ProxyError("bad_request", `${style.method} is not an HTTP method`);
  return { method, target };
}

function namesRoute(routing: Routing, target: string): boolean {
  try {
    routing.router.match(target);
    return true;
  } catch {
    return false;
  }
}

function single(values: string[] | undefined, name: string): string {
  if (values?.length !== 1) throw new ProxyError("bad_request", `${name} must be sent exactly once`);
  return values[0]!;
}

export function createForwardAuth(deps: ForwardAuthDeps): RequestListener {
  const { settings, metrics, logger } = deps;
  const peers = buildBlockList(settings.trustedPeers);
  // The gateways are the peers whose X-Forwarded-For is believed for `cidrs` access.
  const clientIp = new ClientIpResolver(settings.trustedPeers);
  const requestLog = requestLogger(logger);

  /** Resolves with the token for an allowed request; throws ProxyError for a refused one. */
  async function decide(req: IncomingMessage, peer: string, seen: Seen): Promise<string> {
    const original = originalRequest(req, settings.pathPrefix);
    const routing = deps.routing();
    // Without pathPrefix a request whose own path names a route, and whose headers name another
    // original request, could have that header added by a caller: which one the gateway sends on is unknown.
    if (
      settings.pathPrefix === undefined &&
      original.target !== req.url &&
      namesRoute(routing, req.url ?? "")
    ) {
      throw new ProxyError(
        "bad_request",
        "the original request is given in more than one way (send auth requests to a path that is no route, or set forwardAuth.pathPrefix)",
      );
    }
    seen.method = original.method;
    seen.path = original.target.startsWith("/") ? safePath(original.target) : "(not a path)";
    const match = routing.router.match(original.target);
    const r = match.route;
    if (!r.config.forwardAuth) {
      throw new ProxyError("route_not_found", "this route does not answer forward-auth requests");
    }
    seen.route = r;
    upstreamFor(match, original.method, req.headers);
    const client = clientIp.resolve(peer, req.headers["x-forwarded-for"]);
    const decision = await r.checkAccess(req.headers, client);
    if (!decision.allowed) {
      seen.error = decision.reason;
      metrics.accessDenied.inc({ route: r.label, reason: decision.reason });
      throw accessRefusal(decision);
    }
    seen.principal = decision.principal;
    seen.consumer = decision.consumer;
    // The caller's budget on the route, shared with the proxy port (LimitRefusal → 429).
    r.limits.chargeCaller(decision.consumer, decision.principal, client);
    return r.tokens.peek() ?? (await r.tokens.get());
  }

  return function handle(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const requestId = pickRequestId(req.headers["x-request-id"]);
    const seen: Seen = {
      route: undefined,
      method: undefined,
      path: undefined,
      principal: undefined,
      consumer: undefined,
      error: undefined,
    };
    // Whatever body a gateway sends along is not needed.
    req.resume();
    res.on("close", () => {
      const r = seen.route;
      requestLog({
        requestId,
        listener: "forward-auth",
        route: r?.label ?? "unmatched",
        method: seen.method,
        path: seen.path,
        status: res.headersSent ? res.statusCode : 499,
        durationMs: Math.round(performance.now() - started),
        identity: r?.config.identity,
        principal: seen.principal,
        consumer: seen.consumer,
        error: seen.error,
      });
    });
    const peer = req.socket.remoteAddress ?? "";
    if (!contains(peers, peer)) {
      seen.error = "untrusted_peer";
      writeProblem(res, new ProxyError("access_denied", "this peer may not ask for forward auth"), requestId);
      return;
    }
    decide(req, peer, seen).then(
      (bearer) => {
        res.writeHead(200, {
          authorization: `Bearer ${bearer}`,
          "x-entra-proxy-route": seen.route!.prefix,
          "cache-control": "no-store",
          "content-length": 0,
          "x-request-id": requestId,
        });
        res.end();
      },
      (err: unknown) => {
        let problem: ProxyError;
        if (err instanceof ProxyError) problem = err;
        else {
          problem = new ProxyError("internal_error", "the proxy failed to handle this request");
          logger.error({ msg: "internal error", requestId, err: loggedError(err) });
        }
        seen.error ??= problem.code;
        if (problem instanceof LimitRefusal && seen.route) {
          metrics.rateLimited.inc({
            route: seen.route.label,
            consumer: seen.consumer ?? "-",
            limit: problem.limit,
          });
        }
        if (!res.headersSent && !res.destroyed) writeProblem(res, problem, requestId);
      },
    );
  };
}

/** What the log line says about one forward-auth request: never its token. */
interface Seen {
  route: RouteRuntime | undefined;
  method: string | undefined;
  path: string | undefined;
  principal: string | undefined;
  /** Consumer or API key name (a bounded label), when the caller presented a key. */
  consumer: string | undefined;
  error: string | undefined;
}
