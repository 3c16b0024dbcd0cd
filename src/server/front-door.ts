// The request path, in order: route → checkAccess → admit → chargeCaller → readBody → attachToken → forward → record.
// One Exchange per request carries what the steps learn; the forwarder is handed an explicit upstream
// request (URL, headers, body framing, token). Responses the proxy makes itself go through problem.ts.
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import type { AccessDecision, VerifiedCaller } from "../access/check.ts";
import type { ClientIpResolver } from "../access/client-ip.ts";
import { normaliseIp } from "../access/client-ip.ts";
import type { BearerTokens } from "../auth/tokens.ts";
import { ProxyError } from "../errors.ts";
import { LeftQueue, NO_TICKET, type Ticket } from "../limits/identity-gate.ts";
import { mayBeThrottled } from "../limits/limits.ts";
import { LimitRefusal } from "../limits/refusal.ts";
import type { Logger } from "../observability/logger.ts";
import { loggedError, requestLogger, safePath } from "../observability/logger.ts";
import type { ProxyMetrics } from "../observability/metrics.ts";
import type { RecentEvents } from "../observability/recent-events.ts";
import type { RequestTrace, Tracing } from "../observability/tracing.ts";
import type { Forwarder, OutgoingBody } from "../proxy/forward.ts";
import { pickRequestId, requestHeadersFor, responseHeaders } from "../proxy/headers.ts";
import { sendWithLinkRewrite } from "../proxy/link-rewrite.ts";
import { relay } from "../proxy/relay.ts";
import {
  REWRITTEN_HEADERS,
  rewriteLocationHeaders,
  type UrlMapping,
  WORKFLOW_SEGMENT,
} from "../proxy/rewrite.ts";
import type { Router } from "../proxy/router.ts";
import { accessRefusal, upstreamFor } from "./admission.ts";
import { writeProblem } from "./problem.ts";
import { declaresBody, isReplayable, NO_BODY, readBody } from "./request-body.ts";
import { type RouteRuntime, workflowPathOf } from "./route-runtime.ts";

/** What a config reload swaps in one assignment, so a request sees either the old or the new set. */
export interface Routing {
  router: Router<RouteRuntime>;
  clientIp: ClientIpResolver;
  publicUrl: string | undefined;
  /** Host values believed for rewritten URLs when there is no publicUrl (lower case). */
  publicHosts: ReadonlySet<string>;
}

export interface FrontDoorDeps {
  routing: () => Routing;
  forwarder: Forwarder;
  metrics: ProxyMetrics;
  logger: Logger;
  events: RecentEvents;
  /** True from SIGTERM on: every response then says Connection: close. */
  draining: () => boolean;
  /** Present only when an OTLP endpoint is configured. */
  tracing?: Tracing | undefined;
}

export interface FrontDoor {
  handle(req: IncomingMessage, res: ServerResponse): void;
  /**
   * Whether a parse error on this socket may be answered with a 400: only when the answer cannot be taken
   * for another request's, i.e. no request is open there, or the one open request is the one whose body
   * broke and nothing of its response has been written. Otherwise the connection must just be cut.
   */
  mayAnswerParseError(socket: Duplex): boolean;
}

/** How long a connection whose body was refused unread may linger before it is destroyed. */
const UNREAD_BODY_LINGER_MS = 1_000;
const KNOWN_METHODS = new Set(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);

/** Everything the steps learn about one request. */
interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The caller's headers as received (the forwarder hands http-proxy-3 a cleaned copy). */
  readonly headers: IncomingHttpHeaders;
  readonly requestId: string;
  readonly started: number;
  readonly method: string;
  readonly routing: Routing;
  /** The socket peer's address (IPv4-mapped IPv6 shown as IPv4), and whether it is a trusted proxy. */
  readonly peer: string;
  readonly trustedPeer: boolean;
  route: RouteRuntime | undefined;
  /** Where the request goes upstream, decided by the route step. */
  upstreamUrl: URL | undefined;
  /** What every upstream attempt sends, decided once before the first (the token may change between them). */
  upstreamHeaders: OutgoingHttpHeaders | undefined;
  body: OutgoingBody | undefined;
  principal: string | undefined;
  /** On-behalf-of: the caller its verified inbound JWT names, and that token. */
  caller: VerifiedCaller | undefined;
  /** On-behalf-of: the caller's tokens, used for the 401 renewal too. */
  tokens: BearerTokens | undefined;
  /** Consumer or API key name (a bounded label), when the caller presented a key. */
  consumer: string | undefined;
  /** Why access was refused (a bounded label, e.g. invalid_key). */
  accessReason: string | undefined;
  /** The caller's address (X-Forwarded-For believed from trusted peers only). */
  clientIp: string | undefined;
  bytesIn: number;
  bytesOut: number | undefined;
  /** The problem code the caller got, or what went wrong after the response started. */
  error: string | undefined;
  upstreamStatus: number | undefined;
  upstreamStarted: number | undefined;
  upstreamMs: number | undefined;
  retried: boolean;
  /** The caller's connection closed before its response was complete. */
  callerGone: boolean;
  /** Aborts the upstream attempt in progress. */
  abortUpstream: (() => void) | undefined;
  /** The upstream response being relayed to the caller. */
  relayed: IncomingMessage | undefined;
  trace: RequestTrace | undefined;
}

/** A socket's requests whose responses have not closed, and the latest request (while open). */
interface SocketRequests {
  open: number;
  latest: Exchange | undefined;
  /** The latest request, when it was answered before its body had all arrived: a break in that body is not answered. */
  answeredEarly: IncomingMessage | undefined;
}

/** Where one upstream attempt reports: the response head, or why there is none. */
interface AttemptOutcome {
  answer(upstream: IncomingMessage): void;
  failure(err: unknown): void;
}

/** The caller left before the request was sent upstream: nothing is sent, the log says 499. */
class CallerGone extends Error {
  readonly code = "caller_gone";
}

export function createFrontDoor(deps: FrontDoorDeps): FrontDoor {
  const { forwarder, metrics, logger, events } = deps;
  /** Per socket: its requests whose responses have not closed (pipelined ones queue up), and the latest. */
  const sockets = new WeakMap<Duplex, SocketRequests>();
  const requestLog = requestLogger(logger);

  // Step 1: the route, and whether this method and path may use it.
  function route(x: Exchange): RouteRuntime {
    const match = x.routing.router.match(x.req.url ?? "");
    const r = match.route;
    x.route = r;
    r.state.inFlight++;
    x.upstreamUrl = upstreamFor(match, x.method, x.headers);
    return r;
  }

  // Step 2: the caller's credentials.
  function checkAccess(x: Exchange, r: RouteRuntime): void | Promise<void> {
    const clientIp = x.routing.clientIp.clientOf(x.peer, x.trustedPeer, x.headers["x-forwarded-for"]);
    x.clientIp = clientIp;
    const verdict = r.checkAccess(x.headers, clientIp);
    return verdict instanceof Promise
      ? verdict.then((d) => admitOrRefuse(x, r, d))
      : admitOrRefuse(x, r, verdict);
  }

  function admitOrRefuse(x: Exchange, r: RouteRuntime, decision: AccessDecision): void {
    if (decision.allowed) {
      x.principal = decision.principal;
      x.caller = decision.caller;
      x.consumer = decision.consumer;
      return;
    }
    x.accessReason = decision.reason;
    metrics.accessDenied.inc({ route: r.label, reason: decision.reason });
    throw accessRefusal(decision);
  }

  // Step 3: room on the route.
  function admit(r: RouteRuntime): void {
    if (r.state.inFlight > r.config.maxConcurrent) {
      throw new ProxyError("overloaded", "too many requests in flight on this route", {
        headers: { "retry-after": "1" },
      });
    }
  }

  // Step 3b (limits): the caller's own budget on this route; refused callers never reach the upstream.
  function chargeCaller(x: Exchange, r: RouteRuntime): void {
    if (r.limits.callers === undefined) return;
    // The client address the access step resolved (X-Forwarded-For believed from trusted peers only).
    r.limits.chargeCaller(x.consumer, x.principal, x.clientIp!);
  }

  // Step 4: the body, in the form it is forwarded in.
  function takeBody(x: Exchange, r: RouteRuntime): OutgoingBody | Promise<OutgoingBody> {
    if (!declaresBody(x.req)) return NO_BODY;
    const limits = {
      maxBytes: r.config.maxBodyBytes,
      idleMs: r.config.timeoutMs,
      onBytes: (total: number) => {
        x.bytesIn = total;
      },
    };
    return readBody(x.req, limits, (error) => {
      x.abortUpstream?.();
      fail(x, error);
    });
  }

  // Step 5: the route's token, or on an on-behalf-of route the caller's own (synchronously when cached).
  function attachToken(x: Exchange, r: RouteRuntime): string | Promise<string> {
    if (r.obo !== undefined) x.tokens = r.obo.forCaller(x.caller);
    const tokens = x.tokens ?? r.tokens;
    return tokens.peek() ?? tokens.get();
  }

  // Step 6: upstream. An ordinary answer goes straight to the caller; a 401 or a throttling answer gets a
  // second look first (token renewal, replay, back-off).
  function forward(x: Exchange, r: RouteRuntime, body: OutgoingBody, bearer: string): void {
    x.body = body;
    x.upstreamHeaders = upstreamHeaders(x);
    attempt(x, r, bearer, {
      answer: (upstream) => answered(x, r, bearer, upstream),
      failure: (err) => fail(x, err),
    });
  }

  /**
   * The first attempt's answer. It runs inside the upstream response's event, so a fault here is turned
   * into the caller's 500 rather than left to escape.
   */
  function answered(x: Exchange, r: RouteRuntime, bearer: string, upstream: IncomingMessage): void {
    try {
      if (upstream.statusCode === 401 || mayBeThrottled(upstream.statusCode)) {
        secondLook(x, r, bearer, upstream)
          .then((final) => passThrough(x, r, final))
          .catch((err: unknown) => fail(x, err));
      } else {
        passThrough(x, r, upstream);
      }
    } catch (err) {
      fail(x, err);
    }
  }

  /** A 401 renews the token and replays a replayable request once; throttling answers are absorbed. */
  async function secondLook(
    x: Exchange,
    r: RouteRuntime,
    bearer: string,
    first: IncomingMessage,
  ): Promise<IncomingMessage> {
    let upstream = first;
    if (mayBeThrottled(upstream.statusCode)) upstream = await absorbThrottling(x, r, bearer, upstream);
    if (upstream.statusCode !== 401) return upstream;
    count401(r, false);
    // The token was refused (revoked, rotated, stale roles): renew it, and retry a replayable request.
    const fresh = await (x.tokens ?? r.tokens).renewAfterRejection(bearer).catch((err: unknown) => {
      upstream.resume();
      throw err;
    });
    if (!isReplayable(x.body!) || fresh === bearer) return upstream;
    upstream.resume();
    x.retried = true;
    upstream = await attemptAgain(x, r, fresh);
    if (upstream.statusCode === 401) count401(r, true);
    if (mayBeThrottled(upstream.statusCode)) upstream = await absorbThrottling(x, r, fresh, upstream);
    return upstream;
  }

  // ── limits: an upstream 429 (or 503 with Retry-After) pauses the identity for that host; with
  // retryThrottled a replayable request that got 429 is sent again after the pause (src/limits). ──
  async function absorbThrottling(
    x: Exchange,
    r: RouteRuntime,
    bearer: string,
    first: IncomingMessage,
  ): Promise<IncomingMessage> {
    let upstream = first;
    const since = r.limits.now();
    for (let replays = 0; ; replays++) {
      if (upstream.statusCode === 429) metrics.upstreamThrottled.inc({ route: r.label });
      const waitBudget = r.limits.afterThrottled(upstream, isReplayable(x.body!), since, replays);
      if (waitBudget === undefined) return upstream;
      upstream.resume();
      x.retried = true;
      upstream = await attemptAgain(x, r, bearer, waitBudget);
      if (!mayBeThrottled(upstream.statusCode)) return upstream;
    }
  }

  function count401(r: RouteRuntime, afterRetry: boolean): void {
    metrics.upstream401.inc({ route: r.label });
    events.record("upstream_401", r.label, afterRetry ? "after retry with a new token" : "");
  }

  function upstreamHeaders(x: Exchange): OutgoingHttpHeaders {
    return requestHeadersFor(x.headers, {
      clientPeer: x.peer,
      trustedPeer: x.trustedPeer,
      proto: (x.req.socket as TLSSocket).encrypted ? "https" : "http",
      requestId: x.requestId,
    });
  }

  /** A second or later attempt, awaited by the retry paths. */
  function attemptAgain(
    x: Exchange,
    r: RouteRuntime,
    bearer: string,
    maxWaitMs?: number,
  ): Promise<IncomingMessage> {
    return new Promise((answer, failure) => attempt(x, r, bearer, { answer, failure }, maxWaitMs));
  }

  /**
   * One upstream attempt, once there is room under the identity's limits (waiting at most `maxWaitMs`,
   * default the identity's); `outcome` gets the response head, or why there is none. Never sent for a
   * caller that has gone. The first attempt of every request runs through here without a promise.
   */
  function attempt(
    x: Exchange,
    r: RouteRuntime,
    bearer: string,
    outcome: AttemptOutcome,
    maxWaitMs?: number,
  ): void {
    // The caller left, or was already answered (its body was refused while the token was fetched).
    if (x.callerGone || x.error !== undefined) {
      outcome.failure(new CallerGone("the caller left or was answered before the request was sent"));
      return;
    }
    // ── limits: room under the identity's limits and pauses (a shared no-op ticket when none apply) ──
    let room: Ticket | Promise<Ticket>;
    try {
      room = r.limits.enter(x.res, maxWaitMs);
    } catch (err) {
      outcome.failure(err);
      return;
    }
    if (!(room instanceof Promise)) {
      send(x, r, bearer, room, outcome);
      return;
    }
    room.then(
      (ticket) => {
        if (x.callerGone || x.error !== undefined) {
          ticket.done();
          outcome.failure(new CallerGone("the caller left or was answered while waiting for room"));
          return;
        }
        send(x, r, bearer, ticket, outcome);
      },
      (err: unknown) => outcome.failure(err instanceof LeftQueue ? new CallerGone(err.message) : err),
    );
  }

  /** Sends one attempt; a fault before the request left gives the room back and fails the attempt. */
  function send(x: Exchange, r: RouteRuntime, bearer: string, ticket: Ticket, outcome: AttemptOutcome): void {
    try {
      start(x, r, bearer, ticket, outcome);
    } catch (err) {
      ticket.done();
      outcome.failure(err);
    }
  }

  /**
   * The outcome is told once: an error after the response head (a reset, or the idle sweep cutting a
   * stalled body) is the response's own business — onClose below — not the attempt's.
   */
  function start(
    x: Exchange,
    r: RouteRuntime,
    bearer: string,
    ticket: Ticket,
    outcome: AttemptOutcome,
  ): void {
    const headers = x.upstreamHeaders!;
    let answered = false;
    x.upstreamStarted = performance.now();
    const span = x.trace?.startUpstream(x.method, x.upstreamUrl!, headers);
    const abort = forwarder.forward(
      x.req,
      x.res,
      {
        method: x.method,
        url: x.upstreamUrl!,
        headers,
        bearer,
        body: x.body!,
        timeoutMs: r.config.timeoutMs,
      },
      {
        onResponse(upstream) {
          x.upstreamStatus = upstream.statusCode ?? 502;
          // Until the body has been relayed too (see passThrough), the time to the response head.
          x.upstreamMs = performance.now() - x.upstreamStarted!;
          answered = true;
          outcome.answer(upstream);
        },
        onClose(upstream, timedOut) {
          span?.end(upstream.statusCode);
          ticket.done();
          // A 401 answer dropped for the retry closes later; only the relayed response counts. A
          // response the proxy ended itself (the caller's body refused), or whose caller left, is done.
          if (upstream !== x.relayed || upstream.complete || x.res.writableEnded || x.res.destroyed) return;
          // An upstream that dies mid-body must not leave the caller with a short body that looks
          // complete, nor with no answer at all while a body held for link rewriting was arriving.
          if (x.res.headersSent) {
            x.error = "upstream_reset";
            x.res.destroy();
          } else {
            fail(x, brokenOff(timedOut, r.config.timeoutMs));
          }
        },
        onError(error) {
          span?.end(undefined, error.code);
          ticket.done();
          if (!answered) outcome.failure(error);
        },
      },
    );
    // An attempt aborted before any answer gets no callback: the abort gives its room back.
    x.abortUpstream =
      ticket === NO_TICKET
        ? abort
        : () => {
            ticket.done();
            abort();
          };
  }

  // Step 7: the upstream's response to the caller, its URLs pointing back through the proxy.
  function passThrough(x: Exchange, r: RouteRuntime, upstream: IncomingMessage): void {
    // The caller left, or was answered while a retry was prepared (its upload refused).
    if (x.callerGone || x.res.headersSent || x.res.destroyed) {
      upstream.resume();
      return;
    }
    x.relayed = upstream;
    const headers = responseHeaders(upstream, r.target.hostname);
    headers["x-request-id"] = x.requestId;
    if (deps.draining()) headers.connection = "close";
    const needsMappings = r.config.rewriteLinks || hasRewritableHeader(headers);
    const mappings = needsMappings ? urlMappings(x, r) : [];
    if (needsMappings) {
      if (r.workflowRoot) rememberStatusUrls(r, headers);
      rewriteLocationHeaders(headers, mappings);
    }
    const status = upstream.statusCode ?? 502;
    if (r.config.rewriteLinks) {
      sendWithLinkRewrite(
        upstream,
        x.res,
        status,
        headers,
        mappings,
        (result) => metrics.linkRewrites.inc({ route: r.label, result }),
        { method: x.method },
      );
      return;
    }
    x.res.writeHead(status, upstream.statusMessage, headers);
    relay(upstream, x.res, (bytes) => {
      x.bytesOut = bytes;
      x.upstreamMs = performance.now() - x.upstreamStarted!;
    });
  }

  /** Where callers reach this route: publicUrl, else a Host in publicHosts, else this listener's address. */
  function urlMappings(x: Exchange, r: RouteRuntime): UrlMapping[] {
    const prefix = r.prefix === "/" ? "" : r.prefix;
    const base = proxyBaseFor(x) + prefix;
    const mappings: UrlMapping[] = [[r.target, base]];
    if (r.workflowRoot) mappings.push([r.workflowRoot, base + WORKFLOW_SEGMENT]);
    return mappings;
  }

  function proxyBaseFor(x: Exchange): string {
    const { publicUrl, publicHosts } = x.routing;
    if (publicUrl) return publicUrl.replace(/\/$/, "");
    const socket = x.req.socket as TLSSocket;
    const trusted = x.trustedPeer;
    const ownProto = socket.encrypted ? "https" : "http";
    const forwardedHost = trusted ? firstValue(x.headers["x-forwarded-host"]) : undefined;
    const host = (forwardedHost ?? x.headers.host ?? "").toLowerCase();
    if (host && publicHosts.has(host)) {
      const proto = (trusted ? firstValue(x.headers["x-forwarded-proto"]) : undefined) ?? ownProto;
      return `${proto === "https" ? "https" : "http"}://${host}`;
    }
    const address = socket.localAddress ?? "127.0.0.1";
    const shown = address.includes(":") ? `[${address}]` : address;
    return `${ownProto}://${shown}:${socket.localPort}`;
  }

  function fail(x: Exchange, err: unknown): void {
    if (err instanceof CallerGone) return;
    let problem: ProxyError;
    if (err instanceof ProxyError) {
      problem = err;
    } else {
      problem = new ProxyError("internal_error", "the proxy failed to handle this request");
      logger.error({ msg: "internal error", requestId: x.requestId, err: loggedError(err) });
    }
    x.error = problem.code;
    if (problem instanceof LimitRefusal && x.route) {
      metrics.rateLimited.inc({ route: x.route.label, consumer: x.consumer ?? "-", limit: problem.limit });
    }
    const upstreamFault = problem.status >= 500 && problem.code !== "internal_error";
    if (x.route && upstreamFault) metrics.upstreamErrors.inc({ route: x.route.label, code: problem.code });
    const { req, res } = x;
    if (res.headersSent || res.destroyed) {
      res.destroy(); // mid-body failure: the caller must see a broken response, not a short one
      return;
    }
    if (deps.draining()) res.setHeader("connection", "close");
    // A body left unread (too large, stalled, refused before it was read) ends the connection. A request
    // without a body keeps it, even when answered before Node has seen the end of its message.
    const unreadBody = !req.complete && declaresBody(req);
    if (unreadBody) {
      // Node ends the connection after this response; destroying it only after a linger lets a caller
      // still uploading read the answer instead of a reset.
      res.setHeader("connection", "close");
      res.once("finish", () => setTimeout(() => req.socket.destroy(), UNREAD_BODY_LINGER_MS).unref());
    }
    writeProblem(res, problem, x.requestId);
  }

  function record(x: Exchange): void {
    const { req, res } = x;
    const label = x.route?.label ?? "unmatched";
    const method = KNOWN_METHODS.has(x.method) ? x.method : "OTHER";
    const seconds = (performance.now() - x.started) / 1000;
    // 499 (as nginx logs it): the caller closed its connection before any response.
    const status = res.headersSent ? res.statusCode : 499;
    metrics.requests.record(label, method, status, x.consumer, seconds);
    if (x.route) x.route.state.inFlight--;
    const onSocket = sockets.get(req.socket)!;
    onSocket.open--;
    if (onSocket.latest === x) {
      onSocket.latest = undefined;
      onSocket.answeredEarly = req.complete ? undefined : req;
    }
    x.trace?.end(label, status, x.error);
    const target = req.url ?? "";
    requestLog({
      requestId: x.requestId,
      route: label,
      method: req.method,
      // Only an origin-form target is logged, without its query; anything else may carry userinfo.
      path: target.startsWith("/") ? safePath(target) : "(not a path)",
      status,
      upstreamStatus: x.upstreamStatus,
      durationMs: Math.round(seconds * 1e4) / 10,
      upstreamMs: x.upstreamMs === undefined ? undefined : Math.round(x.upstreamMs * 10) / 10,
      identity: x.route?.config.identity,
      principal: x.principal,
      clientIp: x.clientIp ?? x.peer,
      bytesIn: x.bytesIn,
      bytesOut: x.bytesOut,
      consumer: x.consumer,
      retried: x.retried,
      // For a refusal: the problem code, and why access was refused.
      error: x.error,
      reason: x.accessReason,
    });
  }

  /**
   * The steps in order. A step that must wait (an inbound JWT's keys, a body, a cold token) returns a
   * promise; the others return at once, so a request with a cached token runs straight to `forward`.
   */
  function run(x: Exchange): void | Promise<void> {
    const r = route(x);
    return after(checkAccess(x, r), () => {
      admit(r);
      chargeCaller(x, r);
      return after(takeBody(x, r), (body) =>
        after(attachToken(x, r), (bearer) => forward(x, r, body, bearer)),
      );
    });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const routing = deps.routing();
    const peer = normaliseIp(req.socket.remoteAddress ?? "");
    const x: Exchange = {
      req,
      res,
      headers: req.headers,
      requestId: pickRequestId(req.headers["x-request-id"]),
      started: performance.now(),
      method: req.method ?? "GET",
      routing,
      peer,
      trustedPeer: routing.clientIp.isTrusted(peer),
      route: undefined,
      upstreamUrl: undefined,
      upstreamHeaders: undefined,
      body: undefined,
      principal: undefined,
      caller: undefined,
      tokens: undefined,
      consumer: undefined,
      accessReason: undefined,
      clientIp: undefined,
      bytesIn: 0,
      bytesOut: undefined,
      error: undefined,
      upstreamStatus: undefined,
      upstreamStarted: undefined,
      upstreamMs: undefined,
      retried: false,
      callerGone: false,
      abortUpstream: undefined,
      relayed: undefined,
      trace: deps.tracing?.startRequest(req.method ?? "GET", req.headers),
    };
    let onSocket = sockets.get(req.socket);
    if (onSocket === undefined) {
      onSocket = { open: 0, latest: undefined, answeredEarly: undefined };
      sockets.set(req.socket, onSocket);
    }
    onSocket.open++;
    onSocket.latest = x;
    onSocket.answeredEarly = undefined;
    res.on("close", () => {
      if (!res.writableFinished) x.callerGone = true;
      record(x);
    });
    try {
      run(x)?.catch((err: unknown) => fail(x, err));
    } catch (err) {
      fail(x, err);
    }
  }

  function mayAnswerParseError(socket: Duplex): boolean {
    const onSocket = sockets.get(socket);
    if (onSocket === undefined) return true;
    // Once the early-answered body is all in, the error is in the next request's head.
    if (onSocket.open === 0) return onSocket.answeredEarly?.complete !== false;
    // The parser reads requests in order, so a broken body is the latest request's.
    const x = onSocket.latest;
    return onSocket.open === 1 && x !== undefined && !x.req.complete && !x.res.headersSent;
  }

  return { handle, mayAnswerParseError };
}

/** Calls `next` with a step's result, at once when the step did not have to wait. */
function after<T, U>(step: T | Promise<T>, next: (value: T) => U | Promise<U>): U | Promise<U> {
  return step instanceof Promise ? step.then(next) : next(step);
}

function rememberStatusUrls(r: RouteRuntime, headers: OutgoingHttpHeaders): void {
  for (const name of REWRITTEN_HEADERS) {
    const value = headers[name];
    if (typeof value !== "string") continue;
    const path = workflowPathOf(r, value);
    if (path !== undefined) r.state.rememberStatusUrl(path);
  }
}

function hasRewritableHeader(headers: OutgoingHttpHeaders): boolean {
  return (
    headers.location !== undefined ||
    headers["operation-location"] !== undefined ||
    headers["azure-asyncoperation"] !== undefined
  );
}

/** Why an upstream response whose head had arrived ended before its body did. */
function brokenOff(timedOut: boolean, timeoutMs: number): ProxyError {
  return timedOut
    ? new ProxyError("upstream_timeout", `the upstream's body stalled for ${timeoutMs} ms`)
    : new ProxyError("upstream_unreachable", "the upstream's response broke off before it was complete");
}

function firstValue(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  const first = value?.split(",")[0]?.trim();
  return first || undefined;
}
