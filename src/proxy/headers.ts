// Header hygiene both ways (design.md "Forwarding rules").
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from "node:http";

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus proxy-specific ones; transfer-encoding is re-applied by Node. */
const HOP_BY_HOP = ["connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"];

/** Inbound credentials that belong to the caller↔proxy hop and must never reach Microsoft. */
const CALLER_CREDENTIALS = ["authorization", "cookie", "proxy-authorization", "x-api-key"];

function removeConnectionListed(headers: IncomingHttpHeaders): void {
  const connection = headers.connection;
  if (typeof connection !== "string") return;
  for (const name of connection.split(",")) {
    const n = name.trim().toLowerCase();
    if (n && n !== "transfer-encoding" && n !== "host") delete headers[n];
  }
}

export interface ForwardedFor {
  clientPeer: string;
  trustedPeer: boolean;
  proto: "http" | "https";
}

/** Cleans the caller's headers in place before they are copied to the upstream request. */
export function prepareRequestHeaders(headers: IncomingHttpHeaders, fwd: ForwardedFor): void {
  removeConnectionListed(headers);
  for (const name of HOP_BY_HOP) delete headers[name];
  for (const name of CALLER_CREDENTIALS) delete headers[name];
  const host = headers.host ?? "";
  delete headers.host; // http-proxy-3 sets the upstream's (changeOrigin)
  if (fwd.trustedPeer) {
    const prior = headers["x-forwarded-for"];
    headers["x-forwarded-for"] = prior ? `${prior}, ${fwd.clientPeer}` : fwd.clientPeer;
    headers["x-forwarded-proto"] ??= fwd.proto;
    headers["x-forwarded-host"] ??= host;
  } else {
    headers["x-forwarded-for"] = fwd.clientPeer;
    headers["x-forwarded-proto"] = fwd.proto;
    headers["x-forwarded-host"] = host;
  }
}

/** The upstream response headers a caller may see. */
export function responseHeaders(upstream: IncomingMessage, upstreamHost: string): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ...upstream.headers };
  removeConnectionListed(headers as IncomingHttpHeaders);
  for (const name of HOP_BY_HOP) delete headers[name];
  const cookies = upstream.headers["set-cookie"];
  if (cookies) {
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
  return typeof incoming === "string" && REQUEST_ID.test(incoming) ? incoming : crypto.randomUUID();
}
