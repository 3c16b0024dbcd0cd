// The only module that imports http-proxy-3. Streams one request to one upstream URL with a bearer
// token over keep-alive agents, and hands the upstream response (or a classified error) back to the
// caller, which decides what the client sees (pass through, or retry after a 401).
import http, { type IncomingMessage, type ServerResponse } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { createProxyServer, type ProxyServer } from "http-proxy-3";
import { ProxyError } from "../errors.ts";

export interface ForwardOptions {
  /** Upstream base URL; its path is the prefix of every forwarded path. */
  target: URL;
  /** Appended to the target's path: "" or "/rest", followed by "?query" if any. */
  path: string;
  bearer: string;
  /** Upstream response timeout (no response headers, or an idle body, for this long → 504). */
  timeoutMs: number;
  /** Replayable body to send instead of the request stream. */
  body?: Readable;
  onResponse(upstream: IncomingMessage): void;
  /** The upstream response closed (`upstream.complete` tells whether its body arrived whole). */
  onClose?(upstream: IncomingMessage): void;
  onError(error: ProxyError): void;
}

interface Context {
  options: ForwardOptions;
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

/**
 * The body of a request that has none. http-proxy-3 pipes `buffer` (or else the caller's request) into
 * the upstream request, and only ever calls `pipe` on it: ending the upstream request at once spares
 * piping a request that has already ended (listeners added and removed, on every GET). Node's server
 * discards the unread end of the caller's request when the response finishes.
 */
export const NO_BODY = {
  pipe<T extends NodeJS.WritableStream>(destination: T): T {
    destination.end();
    return destination;
  },
} as unknown as Readable;

const CONNECT_TIMEOUT_MS = 10_000;
/**
 * How often in-flight upstream requests are checked for idleness: an idle request is cut between
 * timeoutMs and timeoutMs + 2 sweeps. One sweep for all requests is much cheaper on the hot path
 * than a socket timer per request.
 */
const SWEEP_MS = 100;
const CONTEXT = Symbol("entra-auth-proxy.forward");
type WithContext = IncomingMessage & { [CONTEXT]?: Context };

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
  private readonly agents: { http: http.Agent; https: https.Agent };
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

  constructor(options: { maxSockets?: number } = {}) {
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets ?? 512,
      scheduling: "lifo" as const,
    };
    this.agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };
    this.proxy = createProxyServer({ selfHandleResponse: true, xfwd: false, changeOrigin: true });
    this.proxy.on("proxyReq", (proxyReq, req) => {
      const ctx = (req as WithContext)[CONTEXT];
      if (!ctx) return;
      ctx.upstreamRequest = proxyReq;
      if (ctx.aborted) {
        proxyReq.destroy();
        return;
      }
      // The first sweep records the socket's byte count (reading it here would cost every request).
      ctx.activity = -1;
      this.track(ctx);
    });
    this.proxy.on("proxyRes", (upstream, req) => {
      const ctx = (req as WithContext)[CONTEXT];
      if (!ctx) return;
      ctx.response = upstream;
      // Leave the list as soon as the body is over, so the context is garbage while still young.
      // (`on`, not `once`: close is emitted once, and once() wraps every listener.)
      upstream.on("close", () => {
        this.untrack(ctx);
        ctx.options.onClose?.(upstream);
      });
      ctx.options.onResponse(upstream);
    });
  }

  /**
   * Starts the upstream request with `req.headers` as they are (the caller cleans them first) plus the
   * bearer; the returned function aborts it (e.g. the caller sent too much).
   */
  forward(req: IncomingMessage, res: ServerResponse, options: ForwardOptions): () => void {
    const ctx: Context = {
      options,
      slot: -1,
      timedOut: false,
      aborted: false,
      upstreamRequest: undefined,
      response: undefined,
      activity: 0,
      activeAt: 0,
    };
    (req as WithContext)[CONTEXT] = ctx;
    req.url = options.path;
    // Set on the request's own (already cleaned) headers rather than through http-proxy-3's `headers`
    // option, which would copy every header a second time.
    req.headers.authorization = this.authorization(options.bearer);
    const proxyOptions: Parameters<ProxyServer["web"]>[2] = {
      target: options.target,
      agent: options.target.protocol === "https:" ? this.agents.https : this.agents.http,
      // A dead host should fail fast (502), well before the response timeout (504).
      connectTimeout: Math.min(options.timeoutMs, CONNECT_TIMEOUT_MS),
    };
    if (options.body) proxyOptions.buffer = options.body;
    this.proxy.web(req, res, proxyOptions, (err) => {
      const e = err as NodeJS.ErrnoException;
      this.untrack(ctx);
      if (ctx.aborted) return;
      if (ctx.timedOut) {
        options.onError(
          new ProxyError("upstream_timeout", `upstream did not answer within ${options.timeoutMs} ms`),
        );
      } else {
        const what = e.code && UNREACHABLE_CODES.has(e.code) ? e.code : "connection failed";
        options.onError(new ProxyError("upstream_unreachable", `upstream could not be reached (${what})`));
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
      } else if (now - ctx.activeAt >= ctx.options.timeoutMs) {
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
    this.agents.http.destroy();
    this.agents.https.destroy();
    this.proxy.close();
  }
}
