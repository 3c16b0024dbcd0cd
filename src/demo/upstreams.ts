/**
 * Mock Microsoft APIs (Power Platform, PowerApps, Power Automate, LCS). Each one verifies the bearer
 * token as the real service would — RS256 signature against the emulator's keys, exact `aud`, `exp`/`nbf`
 * — records what it received (bodies are streamed and hashed, never held), and echoes it back.
 */
import { createHash } from "node:crypto";
import {
  createServer as createHttpServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTPayload, jwtVerify } from "jose";
import { closeServer, type HttpServer, listen, origin, sendJson } from "./http-util.ts";

export interface MockUpstreamOptions {
  name: string;
  /** The exact `aud` the service accepts. */
  audience: string;
  /** Keys that may sign tokens — the emulator's `publicJwks()`. */
  jwks: JSONWebKeySet;
  /** ms clock for exp/nbf checks; default Date.now. */
  now?: () => number;
  /** Like a flow shared with "specific users": other callers (by token `oid`) get 403. */
  allowedObjectIds?: string[];
  /** default 127.0.0.1 */
  host?: string;
  /** Serve HTTPS with this certificate; plain HTTP by default. */
  tls?: { cert: string; key: string };
  /** Answer like Dataverse's service protection limits (see ServiceProtection). */
  serviceProtection?: ServiceProtection;
}

/**
 * Service protection limits as Dataverse applies them, per token subject (`oid`, else `sub`): at most
 * `requests` per sliding window of `perMs` and `concurrent` at once; beyond them 429 with Retry-After,
 * and every request of that subject until the Retry-After has passed gets 429 as well.
 */
export interface ServiceProtection {
  requests: number;
  perMs: number;
  concurrent: number;
}

/** What service protection saw of one token subject. */
export interface SubjectLoad {
  inFlight: number;
  /** The most requests of this subject ever in flight at once. */
  maxInFlight: number;
  /** Start times of the requests admitted in the current window. */
  starts: number[];
  /** Each 429 period: when it began and ended, and when requests arrived (were received) during it. */
  pauses: Array<{ from: number; until: number; arrivals: number[] }>;
  throttled: number;
}

export interface ReceivedRequest {
  method: string;
  /** The raw request path as received (no normalisation, no query). */
  path: string;
  /** The raw query string without `?` ("" when none). */
  query: string;
  /** All received headers, unredacted (tests assert on them). */
  headers: IncomingHttpHeaders;
  bodyBytes: number;
  bodySha256: string;
  /** Verified token claims; null when the token was missing or rejected. */
  claims: JWTPayload | null;
  /** The status the mock answered. */
  status: number;
  /** ms, from the injected clock */
  at: number;
}

type Verification = { ok: true; claims: JWTPayload } | { ok: false; reason: string };

const CHUNK_SIZE = 64 * 1024;
/** Byte i of every `/bytes/<n>` response is `i % 256`; a chunk is a whole number of periods. */
const PATTERN_CHUNK = Buffer.from(Array.from({ length: CHUNK_SIZE }, (_, i) => i % 256));
const RETRY_AFTER_SEC = "7";

const MAX_RECORDED = 5_000;

export class MockUpstream {
  readonly name: string;
  readonly audience: string;
  /** e.g. `http://127.0.0.1:PORT` */
  readonly url: string;
  /** The most recent requests (at most MAX_RECORDED, so a long demo or soak does not grow memory). */
  readonly requests: ReceivedRequest[] = [];
  /** Every request ever received. */
  received = 0;
  /** Mutable: set to restrict callers by object id, `undefined` to allow everyone. */
  allowedObjectIds: string[] | undefined;
  /** Mutable: service protection limits (Dataverse-like), `undefined` for none. */
  serviceProtection: ServiceProtection | undefined;
  /** Per token subject, what service protection saw. */
  readonly load = new Map<string, SubjectLoad>();

  readonly #server: HttpServer;
  readonly #jwks: ReturnType<typeof createLocalJWKSet>;
  readonly #now: () => number;
  readonly #closing = new AbortController();
  /** Tokens this mock has accepted, and those revoked by revokeSeenTokens(). */
  readonly #seenTokens = new Set<string>();
  readonly #revokedTokens = new Set<string>();

  private constructor(server: HttpServer, url: string, opts: MockUpstreamOptions) {
    this.#server = server;
    this.url = url;
    this.name = opts.name;
    this.audience = opts.audience;
    this.allowedObjectIds = opts.allowedObjectIds;
    this.serviceProtection = opts.serviceProtection;
    this.#jwks = createLocalJWKSet(opts.jwks);
    this.#now = opts.now ?? Date.now;
  }

  static async start(opts: MockUpstreamOptions): Promise<MockUpstream> {
    const server: HttpServer = opts.tls
      ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key })
      : createHttpServer();
    const host = opts.host ?? "127.0.0.1";
    const port = await listen(server, host, 0);
    const mock = new MockUpstream(server, origin(opts.tls ? "https" : "http", host, port), opts);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      mock.#handle(req, res).catch(() => {
        if (!res.headersSent)
          sendJson(res, 500, { error: { code: "InternalServerError", message: "mock failed" } });
        else res.destroy();
      });
    });
    return mock;
  }

  reset(): void {
    this.requests.length = 0;
    this.received = 0;
    this.load.clear();
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await closeServer(this.#server);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = this.#now();
    const rawUrl = req.url ?? "/";
    const queryAt = rawUrl.indexOf("?");
    const path = queryAt === -1 ? rawUrl : rawUrl.slice(0, queryAt);
    const query = queryAt === -1 ? "" : rawUrl.slice(queryAt + 1);
    const [verification, body] = await Promise.all([this.#verify(req.headers.authorization), hashBody(req)]);
    const claims = verification.ok ? verification.claims : null;
    const record = (status: number) => {
      this.received++;
      if (this.requests.length >= MAX_RECORDED)
        this.requests.splice(0, this.requests.length - MAX_RECORDED + 1);
      this.requests.push({
        method: req.method ?? "",
        path,
        query,
        headers: { ...req.headers },
        ...body,
        claims,
        status,
        at,
      });
    };

    if (!verification.ok) {
      record(401);
      return this.#invalidToken(res, verification.reason);
    }
    if (this.allowedObjectIds && !this.allowedObjectIds.includes(String(verification.claims.oid))) {
      record(403);
      return sendJson(res, 403, {
        error: {
          code: "MisMatchingOAuthClaims",
          message:
            "One or more claims either missing or does not match with the open authentication access control policy.",
        },
      });
    }

    if (this.serviceProtection) {
      const subject = String(verification.claims.oid ?? verification.claims.sub ?? "");
      const retryAfter = this.#protect(subject, this.serviceProtection, res, at);
      if (retryAfter !== undefined) {
        record(429);
        return sendJson(
          res,
          429,
          {
            error: {
              code: "0x80072322",
              message: "Number of requests exceeded the limit over the time window.",
            },
          },
          { "retry-after": String(retryAfter) },
        );
      }
    }

    const segments = path.split("/").filter(Boolean);
    const last = segments.at(-1) ?? "";
    const previous = segments.at(-2) ?? "";
    const basePath = (drop: number) =>
      segments.length > drop ? `/${segments.slice(0, -drop).join("/")}` : "";
    const echo = () => ({
      service: this.name,
      method: req.method,
      path,
      query,
      headers: redactAuthorization(req.headers),
      ...body,
      token: tokenSummary(verification.claims),
    });

    if (previous === "status" && /^[2-5]\d\d$/.test(last)) {
      const status = Number(last);
      record(status);
      return this.#status(res, status);
    }
    if (previous === "slow" && /^\d+$/.test(last)) {
      record(200);
      await sleep(Number(last), undefined, { signal: abortOnClose(res, this.#closing.signal) }).catch(
        () => {},
      );
      return sendJson(res, 200, echo());
    }
    if (previous === "bytes" && /^\d+$/.test(last)) {
      record(200);
      return streamBytes(res, Number(last));
    }
    if (last === "async") {
      record(202);
      // A flow trigger answers with a run operation under the workflow, not under the trigger.
      const trigger = path.indexOf("/triggers/");
      const operation =
        trigger === -1
          ? `${this.url}${basePath(1)}/operations/123`
          : `${this.url}${path.slice(0, trigger)}/runs/08584715957153021785/operations/123?api-version=1`;
      return sendJson(res, 202, echo(), {
        location: operation,
        "operation-location": operation,
        "azure-asyncoperation": operation,
        "retry-after": "1",
      });
    }
    if (previous === "operations") {
      record(200);
      return sendJson(res, 200, { id: last, status: "Succeeded" });
    }
    if (last === "always401") {
      record(401);
      return this.#invalidToken(res, "The token is not accepted for this operation.");
    }
    if (last === "redirect") {
      record(302);
      res.writeHead(302, { location: `${this.url}${basePath(1)}/redirected`, "content-length": 0 });
      return void res.end();
    }
    if (last === "set-cookie") {
      record(200);
      return sendJson(res, 200, echo(), {
        "set-cookie": ["ARRAffinity=abc123; Path=/; HttpOnly", "tracking=1; Domain=partner.example; Path=/"],
      });
    }
    if (last === "paged") {
      record(200);
      return sendJson(res, 200, this.#page(path, query));
    }
    record(200);
    sendJson(res, 200, echo());
  }

  /**
   * Every token accepted so far is refused from now on (as after a credential reset or a role
   * change), so the next request with it gets 401 until the caller brings a new token.
   */
  revokeSeenTokens(): void {
    for (const token of this.#seenTokens) this.#revokedTokens.add(token);
    this.#seenTokens.clear();
  }

  /**
   * Counts the request (arrived at `arrivedAt`, before its token was verified) against its subject;
   * the Retry-After seconds when it is over a limit.
   */
  #protect(
    subject: string,
    limits: ServiceProtection,
    res: ServerResponse,
    arrivedAt: number,
  ): number | undefined {
    const now = this.#now();
    let load = this.load.get(subject);
    if (load === undefined) {
      load = { inFlight: 0, maxInFlight: 0, starts: [], pauses: [], throttled: 0 };
      this.load.set(subject, load);
    }
    const subjectLoad = load;
    subjectLoad.inFlight++;
    subjectLoad.maxInFlight = Math.max(subjectLoad.maxInFlight, subjectLoad.inFlight);
    let counted = true;
    const done = () => {
      if (counted) subjectLoad.inFlight--;
      counted = false;
    };
    // "finish": the last byte is handed to the socket, before the client can see the response end.
    res.once("finish", done);
    res.once("close", done);
    const pause = load.pauses.at(-1);
    if (pause && now < pause.until) {
      if (arrivedAt >= pause.from) pause.arrivals.push(arrivedAt);
      load.throttled++;
      return Math.max(1, Math.ceil((pause.until - now) / 1000));
    }
    while (load.starts.length > 0 && now - load.starts[0]! >= limits.perMs) load.starts.shift();
    let until: number | undefined;
    if (load.inFlight > limits.concurrent) until = now + 1000;
    else if (load.starts.length >= limits.requests) until = load.starts[0]! + limits.perMs;
    if (until === undefined) {
      load.starts.push(now);
      return undefined;
    }
    const seconds = Math.max(1, Math.ceil((until - now) / 1000));
    load.pauses.push({ from: now, until: now + seconds * 1000, arrivals: [] });
    load.throttled++;
    return seconds;
  }

  async #verify(authorization: string | undefined): Promise<Verification> {
    const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
    if (!match) return { ok: false, reason: "The access token is missing." };
    if (this.#revokedTokens.has(match[1]!))
      return { ok: false, reason: "The access token has been revoked." };
    try {
      const { payload } = await jwtVerify(match[1]!, this.#jwks, {
        algorithms: ["RS256"],
        audience: this.audience,
        currentDate: new Date(this.#now()),
      });
      // jose accepts an aud array containing ours; Microsoft APIs compare the single aud string.
      if (payload.aud !== this.audience)
        return { ok: false, reason: invalidAudience(payload.aud, this.audience) };
      this.#seenTokens.add(match[1]!);
      return { ok: true, claims: payload };
    } catch (e) {
      return { ok: false, reason: describeTokenError(e, this.audience) };
    }
  }

  #invalidToken(res: ServerResponse, reason: string): void {
    sendJson(
      res,
      401,
      { error: { code: "InvalidAuthenticationToken", message: reason } },
      {
        "www-authenticate": `Bearer error="invalid_token", error_description="${reason.replaceAll('"', "'")}"`,
      },
    );
  }

  #status(res: ServerResponse, status: number): void {
    const headers: Record<string, string> = {};
    if (status === 429 || status === 503) headers["retry-after"] = RETRY_AFTER_SEC;
    if (status === 401) headers["www-authenticate"] = 'Bearer error="invalid_token"';
    if (status === 204 || status === 304) {
      res.writeHead(status, headers);
      return void res.end();
    }
    sendJson(
      res,
      status,
      { error: { code: `Http${status}`, message: `Mock ${this.name} answered ${status}.` } },
      headers,
    );
  }

  /** Three pages linked by absolute `@odata.nextLink` / `nextLink` URLs on this mock. */
  #page(path: string, query: string): Record<string, unknown> {
    const page = Number(new URLSearchParams(query).get("page") ?? "1");
    const next = page < 3 ? `${this.url}${path}?page=${page + 1}` : undefined;
    return {
      value: [{ id: `${this.name}-${page}` }],
      ...(next ? { "@odata.nextLink": next, nextLink: next } : {}),
    };
  }
}

export type MicrosoftService = "powerplatform" | "powerapps" | "flow" | "lcs";

/** Token audiences of the four services: the `aud` the emulator issues for each documented scope. */
export const MICROSOFT_API_AUDIENCES: Record<MicrosoftService, string> = {
  powerplatform: "https://api.powerplatform.com",
  powerapps: "https://service.powerapps.com/",
  flow: "https://service.flow.microsoft.com/",
  lcs: "https://lcsapi.lcs.dynamics.com/",
};

/** Path of a Power Automate HTTP trigger (append `?api-version=1`). */
export function flowTriggerPath(workflowId: string): string {
  return `/powerautomate/automations/direct/workflows/${workflowId}/triggers/manual/paths/invoke`;
}

export interface MockMicrosoftApisOptions {
  now?: () => number;
  host?: string;
  tls?: { cert: string; key: string };
  /** Restrict the flow mock to these callers ("specific users"). */
  flowAllowedObjectIds?: string[];
}

/** Starts one mock per service, trusting the emulator's signing keys. */
export async function startMockMicrosoftApis(
  emulator: { publicJwks(): JSONWebKeySet },
  opts: MockMicrosoftApisOptions = {},
): Promise<Record<MicrosoftService, MockUpstream>> {
  const jwks = emulator.publicJwks();
  const start = (name: MicrosoftService) =>
    MockUpstream.start({
      name,
      audience: MICROSOFT_API_AUDIENCES[name],
      jwks,
      ...(opts.now ? { now: opts.now } : {}),
      ...(opts.host ? { host: opts.host } : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      ...(name === "flow" && opts.flowAllowedObjectIds
        ? { allowedObjectIds: opts.flowAllowedObjectIds }
        : {}),
    });
  const [powerplatform, powerapps, flow, lcs] = await Promise.all([
    start("powerplatform"),
    start("powerapps"),
    start("flow"),
    start("lcs"),
  ]);
  return { powerplatform, powerapps, flow, lcs };
}

async function hashBody(req: IncomingMessage): Promise<{ bodyBytes: number; bodySha256: string }> {
  const hash = createHash("sha256");
  let bodyBytes = 0;
  for await (const chunk of req) {
    bodyBytes += (chunk as Buffer).length;
    hash.update(chunk as Buffer);
  }
  return { bodyBytes, bodySha256: hash.digest("hex") };
}

async function streamBytes(res: ServerResponse, total: number): Promise<void> {
  res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
  async function* chunks() {
    for (let sent = 0; sent < total; sent += CHUNK_SIZE) {
      yield total - sent >= CHUNK_SIZE ? PATTERN_CHUNK : PATTERN_CHUNK.subarray(0, total - sent);
    }
  }
  await pipeline(Readable.from(chunks()), res).catch(() => {});
}

function abortOnClose(res: ServerResponse, closing: AbortSignal): AbortSignal {
  const controller = new AbortController();
  res.once("close", () => controller.abort());
  return AbortSignal.any([controller.signal, closing]);
}

function redactAuthorization(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  return headers.authorization === undefined ? { ...headers } : { ...headers, authorization: "<redacted>" };
}

function tokenSummary(claims: JWTPayload): Record<string, unknown> {
  const pick = ["aud", "appid", "oid", "tid", "exp", "idtyp", "scp", "roles", "upn"] as const;
  return Object.fromEntries(pick.filter((k) => claims[k] !== undefined).map((k) => [k, claims[k]]));
}

function invalidAudience(aud: unknown, expected: string): string {
  return `The audience '${String(aud)}' is invalid; expected '${expected}'.`;
}

function describeTokenError(e: unknown, expected: string): string {
  if (e instanceof errors.JWTExpired) return "The access token has expired.";
  if (e instanceof errors.JWTClaimValidationFailed) {
    if (e.claim === "aud") return invalidAudience(e.payload.aud, expected);
    if (e.claim === "nbf") return "The access token is not yet valid.";
    return `The access token claim '${e.claim}' is invalid.`;
  }
  if (e instanceof errors.JWSSignatureVerificationFailed) return "The token signature is invalid.";
  if (e instanceof errors.JWKSNoMatchingKey) return "The token signing key was not found.";
  if (e instanceof errors.JOSEAlgNotAllowed) return "The token signing algorithm is not allowed.";
  return "The access token is malformed.";
}
