// The only module that imports http-proxy-3. Streams one request to one upstream URL with a bearer
// token over keep-alive agents, and hands the upstream response (or a classified error) back to the
// caller, which decides what the client sees (pass through, or retry after a 401).
import type http from "node:http";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import type https from "node:https";
import { Readable } from "node:stream";
import { createProxyServer, type ProxyServer } from "http-proxy-3";
import type { EgressConfig } from "../config/types.ts";
import { EgressAgents } from "../egress/agents.ts";
import { ProxyError } from "../errors.ts";

/** The body sent upstream, framed by the proxy: none, bytes held in memory, or a stream of known or unknown length. */
export type OutgoingBody =
  | { kind: "none" }
  | { kind: "buffered"; bytes: Buffer }
  | { kind: "stream"; stream: Readable; length: number | undefined };

/** Everything one upstream request is made of, decided by the caller of `forward`. */
export interface UpstreamRequest {
  method: string;
  /** Absolute upstream URL with path and query. */
  url: URL;
  /** The headers to send, already cleaned of the caller's credentials and hop-by-hop headers. */
  headers: OutgoingHttpHeaders;
  bearer: string;
  body: OutgoingBody;
  /** Upstream response timeout (no response headers, or an idle body, for this long → 504). */
  timeoutMs: number;
}

export interface UpstreamHandlers {
  onResponse(upstream: IncomingMessage): void;
  /**
   * The upstream response closed (`upstream.complete` tells whether its body arrived whole; `timedOut`,
   * whether the idle sweep cut it).
   */
  onClose?(upstream: IncomingMessage, timedOut: boolean): void;
  onError(error: ProxyError): void;
}

interface Context {
  handlers: UpstreamHandlers;
  timeoutMs: number;
  /** Index in Forwarder.inFlight, or -1 when not in it. */
  slot: number;
  timedOut: boolean;
  aborted: boolean;
  upstreamRequest: http.ClientRequest | undefined;
  response: IncomingMessage | undefined;
  /** Bytes read + written on the upstream socket at the last sweep, and when that last changed. */
  activity: number;
  activeAt: number;
}

const CONTEXT = Symbol("entra-auth-proxy.attempt");
type ServerOptions = Parameters<ProxyServer["web"]>[2];
type WithContext = { [CONTEXT]?: Context };

const CONNECT_TIMEOUT_MS = 10_000;
/**
 * How often in-flight upstream requests are checked for idleness: an idle request is cut between
 * timeoutMs and timeoutMs + 2 sweeps. One sweep for all requests is much cheaper on the hot path
 * than a socket timer per request.
 */
const SWEEP_MS = 100;

const UNREACHABLE_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ECONNRESET",
  "EPIPE",
  "CERT_HAS_EXPIRED",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "ERR_TLS_CERT_ALTNAME_INVALID",
]);

function activityOf(request: http.ClientRequest): number {
  const socket = request.socket;
  return socket ? socket.bytesRead + socket.bytesWritten : 0;
}

export class Forwarder {
  private readonly proxy: ProxyServer;
  /** Keep-alive pools: direct, or through the corporate egress proxy. */
  private readonly agents: EgressAgents;
  /**
   * Upstream requests waiting for, or receiving, their response: an array with swap-removal (each
   * context knows its slot), not a Set. A Set that takes and drops thousands of entries a second
   * rehashes into a new table every few dozen of them, and V8 leaves the replaced table holding its
   * entries and a pointer to its successor. Once a table is in the old generation (any major GC under
   * load puts it there), young-generation collections cannot tell that it is dead: they keep what it
   * points to alive — the next table, and every context with its whole request — so each request was
   * promoted, the old generation filled in seconds, and the proxy ran a major GC every 1.5–2 s, with
   * 13–17 ms young collections in between, until it restarted (docs/performance.md, "Young
   * generation"). Array slots hold only requests still in flight.
   */
  private readonly inFlight: Context[] = [];
  private readonly authorizations = new Map<string, string>();
  private readonly sweeper = setInterval(() => this.sweep(), SWEEP_MS).unref();

  constructor(options: { maxSockets?: number; egress?: EgressConfig | undefined } = {}) {
    const agentOptions: https.AgentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? 512,
      scheduling: "lifo",
    };
    this.agents = new EgressAgents(options.egress, agentOptions);
    this.proxy = createProxyServer({ selfHandleResponse: true, xfwd: false, changeOrigin: true });
    // Each attempt's context travels in the options it was started with, which http-proxy-3 hands
    // to its proxyReq event; the response is then taken from that upstream request itself.
    this.proxy.on("proxyReq", (proxyReq, _req, _res, options) => {
      const ctx = (options as WithContext)[CONTEXT];
      if (!ctx) return;
      ctx.upstreamRequest = proxyReq;
      if (ctx.aborted) {
        proxyReq.destroy();
        return;
      }
      // The first sweep records the socket's byte count (reading it here would cost every request).
      ctx.activity = -1;
      this.track(ctx);
      proxyReq.on("response", (upstream) => this.responded(ctx, upstream));
    });
  }

  private responded(ctx: Context, upstream: IncomingMessage): void {
    ctx.response = upstream;
    // Leave the list as soon as the body is over, so the context is garbage while still young.
    // (`on`, not `once`: close is emitted once, and once() wraps every listener.)
    upstream.on("close", () => {
      this.untrack(ctx);
      ctx.handlers.onClose?.(upstream, ctx.timedOut);
    });
    ctx.handlers.onResponse(upstream);
  }

  /**
   * Sends `request` upstream for the caller's `req`, answering through `handlers`; the returned
   * function aborts it (e.g. the caller's body turned out too large). The body is framed exactly as
   * `request.body` says, whatever the caller declared.
   */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    request: UpstreamRequest,
    handlers: UpstreamHandlers,
  ): () => void {
    const ctx: Context = {
      handlers,
      timeoutMs: request.timeoutMs,
      slot: -1,
      timedOut: false,
      aborted: false,
      upstreamRequest: undefined,
      response: undefined,
      activity: 0,
      activeAt: 0,
    };
    const headers = request.headers;
    headers.authorization = this.authorization(request.bearer);
    const body = request.body;
    if (body.kind === "buffered") headers["content-length"] = String(body.bytes.length);
    else if (body.kind === "stream") {
      if (body.length === undefined) headers["transfer-encoding"] = "chunked";
      else headers["content-length"] = String(body.length);
    }
    // http-proxy-3 builds the upstream request's headers from the request it is handed (its public
    // contract): the complete outgoing set replaces the caller's there, and nothing else of it is read
    // but the method — the path comes from `target` (ignorePath) and the body from `buffer`.
    req.headers = headers as IncomingHttpHeaders;
    const proxyOptions: ServerOptions & WithContext = {
      [CONTEXT]: ctx,
      target: request.url,
      ignorePath: true,
      method: request.method,
      agent: this.agents.agentFor(request.url),
      // A dead host should fail fast (502), well before the response timeout (504).
      connectTimeout: Math.min(request.timeoutMs, CONNECT_TIMEOUT_MS),
      buffer: bodyStream(body),
    };
    this.proxy.web(req, res, proxyOptions, (err) => {
      const e = err as NodeJS.ErrnoException;
      this.untrack(ctx);
      if (ctx.aborted) return;
      if (ctx.timedOut) {
        handlers.onError(
          new ProxyError("upstream_timeout", `upstream did not answer within ${request.timeoutMs} ms`),
        );
      } else {
        const what = e.code && UNREACHABLE_CODES.has(e.code) ? e.code : "connection failed";
        const detail = this.agents.proxyFailure(request.url, e) ?? `upstream could not be reached (${what})`;
        handlers.onError(new ProxyError("upstream_unreachable", detail));
      }
    });
    return () => {
      ctx.aborted = true;
      ctx.upstreamRequest?.destroy();
    };
  }

  /**
   * "Bearer <token>", built once per token: rebuilding a header value of one or two kilobytes per
   * request costs an allocation, a copy and a flattening (for header validation) every time.
   */
  private authorization(bearer: string): string {
    let value = this.authorizations.get(bearer);
    if (value === undefined) {
      // A handful of routes' current tokens; renewed tokens replace old ones over time.
      if (this.authorizations.size >= 64) this.authorizations.clear();
      value = `Bearer ${bearer}`;
      this.authorizations.set(bearer, value);
    }
    return value;
  }

  /** Upstream requests being tracked for the timeout (for tests). */
  get inFlightCount(): number {
    return this.inFlight.length;
  }

  private track(ctx: Context): void {
    if (ctx.slot !== -1) return;
    ctx.slot = this.inFlight.length;
    this.inFlight.push(ctx);
  }

  /** Moves the last context into ctx's slot. */
  private untrack(ctx: Context): void {
    const slot = ctx.slot;
    if (slot === -1) return;
    ctx.slot = -1;
    const last = this.inFlight.pop()!;
    if (last !== ctx) {
      this.inFlight[slot] = last;
      last.slot = slot;
    }
  }

  /** Upstream timeout: a request whose socket moved no byte for timeoutMs is destroyed (→ 504). */
  private sweep(): void {
    const now = Date.now();
    // Backwards: untracking moves the last context, already visited, into the current slot.
    for (let i = this.inFlight.length - 1; i >= 0; i--) {
      const ctx = this.inFlight[i];
      if (ctx === undefined) continue; // the list shrank under a destroy() below
      const request = ctx.upstreamRequest!;
      if (request.destroyed || ctx.response?.complete) {
        this.untrack(ctx);
        continue;
      }
      const activity = activityOf(request);
      if (activity !== ctx.activity) {
        ctx.activity = activity;
        ctx.activeAt = now;
      } else if (now - ctx.activeAt >= ctx.timeoutMs) {
        this.untrack(ctx);
        ctx.timedOut = true;
        request.destroy(new Error("upstream timeout"));
      }
    }
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const ctx of this.inFlight) ctx.slot = -1;
    this.inFlight.length = 0;
    this.authorizations.clear();
    this.agents.destroy();
    this.proxy.close();
  }
}

/**
 * An empty body. http-proxy-3 pipes `buffer` into the upstream request; piping an empty stream only
 * ends its destination, so this one does exactly that — without a stream's per-pipe listeners and
 * ticks on every bodyless request, and without state, so one instance serves every request.
 */
class EmptyBody extends Readable {
  override _read(): void {
    this.push(null);
  }

  override pipe<T extends NodeJS.WritableStream>(destination: T): T {
    destination.end();
    return destination;
  }
}
const EMPTY_BODY = new EmptyBody();

/** What http-proxy-3 pipes into the upstream request: never the caller's request itself. */
function bodyStream(body: OutgoingBody): Readable {
  if (body.kind === "none") return EMPTY_BODY;
  if (body.kind === "stream") return body.stream;
  // A plain readable holding the bytes: cheaper per request than Readable.from's iterator.
  const held = new Readable({ read() {} });
  held.push(body.bytes);
  held.push(null);
  return held;
}
