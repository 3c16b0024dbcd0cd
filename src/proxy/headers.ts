// Header hygiene both ways (design.md "Forwarding rules").
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus proxy-specific ones; transfer-encoding is re-applied by Node. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/** Inbound credentials that belong to the caller↔proxy hop and must never reach Microsoft. */
const CALLER_CREDENTIALS = ["authorization", "cookie", "proxy-authorization", "x-api-key"];

/**
 * Request headers never copied upstream: http-proxy-3 sets the upstream's Host (changeOrigin), Node has
 * already answered the caller's `Expect: 100-continue` on the caller↔proxy hop, and the body's framing
 * (Content-Length or chunked) is decided by the proxy for the body it actually sends.
 */
const DROPPED_REQUEST_HEADERS = new Set([
  ...HOP_BY_HOP,
  ...CALLER_CREDENTIALS,
  "host",
  "expect",
  "content-length",
  "transfer-encoding",
  "x-request-id",
]);

/**
 * Headers that claim who the caller is or which URL it asked for, as a fronting proxy or App Service
 * authentication would set them: believed only from peers in `trustProxy`.
 */
const CLAIMED_BY_FRONT_PROXIES = [
  "forwarded",
  "x-real-ip",
  "true-client-ip",
  "x-client-ip",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-forwarded-uri",
  "x-forwarded-method",
  "x-original-host",
  "x-ms-client-principal",
  "x-ms-client-principal-id",
  "x-ms-client-principal-name",
  "x-ms-client-principal-idp",
  "x-original-url",
  "x-rewrite-url",
  // Client certificates and addresses as TLS-terminating fronts and CDNs (Envoy, App Service, Front Door,
  // Traefik, nginx, Cloudflare, Fastly) pass them on.
  "x-forwarded-client-cert",
  "x-arr-clientcert",
  "x-client-cert",
  "x-ssl-client-cert",
  "x-envoy-external-address",
  "x-original-forwarded-for",
  "client-cert",
  "client-cert-chain",
  "x-forwarded-tls-client-cert",
  "x-forwarded-tls-client-cert-info",
  "x-amzn-mtls-clientcert",
  "x-amzn-mtls-clientcert-leaf",
  "ssl-client-cert",
  "x-ssl-cert",
  "x-ssl-client-verify",
  "x-ssl-client-s-dn",
  "x-client-verify",
  "x-client-dn",
  "x-client-cert-chain",
  "x-arr-ssl",
  "x-azure-clientip",
  "x-azure-socketip",
  "x-azure-fdid",
  "cf-connecting-ip",
  "fastly-client-ip",
  "x-cluster-client-ip",
];
const DROPPED_FROM_UNTRUSTED = new Set([...DROPPED_REQUEST_HEADERS, ...CLAIMED_BY_FRONT_PROXIES]);
/** App Service authentication's token headers (x-ms-token-aad-access-token …) never go upstream. */
const APP_SERVICE_TOKENS = "x-ms-token-";

/**
 * Request headers never copied besides the named ones: App Service's tokens, and any name with an
 * underscore, as nginx drops them by default: CGI-style servers read X_Real_IP as X-Real-IP, which
 * would get past every name dropped here.
 */
const isUnforwardable = (name: string) => name.includes("_") || name.startsWith(APP_SERVICE_TOKENS);
const DROPPED_RESPONSE_HEADERS = new Set(HOP_BY_HOP);

/** Extra hop-by-hop names a `Connection` header lists (never transfer-encoding or host). */
function connectionListed(connection: string | string[] | undefined): Set<string> | undefined {
  if (typeof connection !== "string") return undefined;
  // The usual values name no other header (and both are hop-by-hop themselves).
  if (connection === "keep-alive" || connection === "close") return undefined;
  const names = new Set<string>();
  for (const name of connection.split(",")) {
    const n = name.trim().toLowerCase();
    if (n && n !== "transfer-encoding" && n !== "host") names.add(n);
  }
  return names;
}

/**
 * A copy of `headers` without the dropped and connection-listed names. Copying (rather than deleting
 * in place) keeps the object in V8's fast mode for the spreads http-proxy-3 and Node do next.
 */
function copyWithout<T extends Record<string, unknown>>(
  headers: T,
  dropped: ReadonlySet<string>,
  alsoDropped?: (name: string) => boolean,
): T {
  const listed = connectionListed(headers.connection as string | string[] | undefined);
  const out: Record<string, unknown> = {};
  for (const name in headers) {
    if (dropped.has(name) || listed?.has(name)) continue;
    if (alsoDropped?.(name)) continue;
    out[name] = headers[name];
  }
  return out as T;
}

export interface ForwardedFor {
  clientPeer: string;
  trustedPeer: boolean;
  proto: "http" | "https";
  /** The id the proxy logs for this request, sent upstream so both sides' logs can be joined. */
  requestId: string;
}

/**
 * The caller's headers as they go upstream: hygiene of design.md plus X-Forwarded-* and X-Request-Id.
 * Framing and Authorization are added by the caller of this function for the body and token it sends.
 */
export function requestHeadersFor(headers: IncomingHttpHeaders, fwd: ForwardedFor): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = copyWithout(
    headers,
    fwd.trustedPeer ? DROPPED_REQUEST_HEADERS : DROPPED_FROM_UNTRUSTED,
    isUnforwardable,
  );
  out["x-request-id"] = fwd.requestId;
  const host = headers.host ?? "";
  if (fwd.trustedPeer) {
    const prior = out["x-forwarded-for"];
    out["x-forwarded-for"] = typeof prior === "string" ? `${prior}, ${fwd.clientPeer}` : fwd.clientPeer;
    out["x-forwarded-proto"] ??= fwd.proto;
    out["x-forwarded-host"] ??= host;
  } else {
    out["x-forwarded-for"] = fwd.clientPeer;
    out["x-forwarded-proto"] = fwd.proto;
    out["x-forwarded-host"] = host;
  }
  return out;
}

/** The upstream response headers a caller may see. */
export function responseHeaders(upstream: IncomingMessage, upstreamHost: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = copyWithout(upstream.headers, DROPPED_RESPONSE_HEADERS);
  const cookies = upstream.headers["set-cookie"];
  if (cookies && headers["set-cookie"]) {
    // Cookies of the upstream's own domain belong to the proxy↔Microsoft hop (callers' cookies are
    // never forwarded, so they could not come back anyway).
    const kept = cookies.filter((c) => !isCookieForHost(c, upstreamHost));
    if (kept.length > 0) headers["set-cookie"] = kept;
    else delete headers["set-cookie"];
  }
  return headers;
}

function isCookieForHost(cookie: string, host: string): boolean {
  const domain = /;\s*domain=\.?([^;]+)/i.exec(cookie)?.[1]?.trim().toLowerCase();
  if (!domain) return true; // host-only cookie: set by (and for) the upstream
  const h = host.toLowerCase();
  return h === domain || h.endsWith(`.${domain}`);
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Keeps the caller's X-Request-Id when well-formed, else makes one. */
export function pickRequestId(incoming: string | string[] | undefined): string {
  return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : randomUUID();
}
