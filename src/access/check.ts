// Inbound access control per route (design.md "access"): every listed condition must hold.
// API keys are compared as SHA-256 digests in constant time; nothing says which condition failed.
import { hash, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import type { AccessConfig } from "../config/types.ts";
import { buildBlockList, contains } from "./client-ip.ts";
import { bearerToken, compileJwtCheck, type JwtDecision, type VerifiedCaller } from "./jwt.ts";

export type { VerifiedCaller } from "./jwt.ts";

export type AccessDecision =
  | {
      allowed: true;
      principal: string;
      /** The verified inbound JWT's caller, on routes that check one (on-behalf-of exchanges it). */
      caller?: VerifiedCaller;
      /** The caller's consumer name, else its API key's name; undefined without a key. Bounded by the config. */
      consumer?: string;
    }
  | {
      allowed: false;
      /** unauthenticated → 401, access_denied → 403, jwks_unavailable → 503 (src/errors.ts). */
      code: "unauthenticated" | "access_denied" | "jwks_unavailable";
      /** Why, for the access-denied metric and the log: one of a few fixed words, never caller data. */
      reason: AccessDenialReason;
      /** The WWW-Authenticate value to send with a 401. */
      challenge?: string;
      /** Seconds, for Retry-After with a 503 jwks_unavailable. */
      retryAfter?: number;
    };

export type AccessDenialReason =
  | "cidr"
  | "no_credential"
  | "invalid_key"
  | "expired_key"
  | Exclude<JwtDecision, { ok: true }>["reason"];

/** Synchronous unless the route checks inbound JWTs (signature verification is async). */
export type AccessCheck = (
  headers: IncomingHttpHeaders,
  clientIp: string,
) => AccessDecision | Promise<AccessDecision>;

/** The key a caller presented: X-Api-Key, or the password of HTTP Basic. */
export function presentedApiKey(headers: IncomingHttpHeaders): string | undefined {
  const header = headers["x-api-key"];
  if (typeof header === "string" && header !== "") return header;
  const auth = headers.authorization;
  if (auth && auth.length > 6 && auth.slice(0, 6).toLowerCase() === "basic ") {
    const decoded = Buffer.from(auth.slice(6).trim(), "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon !== -1 && colon < decoded.length - 1) return decoded.slice(colon + 1);
  }
  return undefined;
}

const bearerChallenge = 'Bearer realm="entra-auth-proxy"';
/** RFC 6750: a token that is malformed, expired or otherwise not acceptable. */
const invalidTokenChallenge = 'Bearer error="invalid_token"';

export interface AccessCheckOptions {
  /** On-behalf-of routes: the principal logged names no user (their oid stays out of the logs). */
  onBehalfOf?: boolean;
}

export function compileAccessCheck(
  access: AccessConfig,
  now: () => number = Date.now,
  options: AccessCheckOptions = {},
): AccessCheck {
  if (access.anonymous) return () => ({ allowed: true, principal: "anonymous" });
  const checkKeysAndCidrs = compileKeysAndCidrs(access, now);
  if (!access.jwt) return checkKeysAndCidrs;
  const verifyJwt = compileJwtCheck(access.jwt, { now });
  return async (headers, clientIp) => {
    const first = checkKeysAndCidrs(headers, clientIp);
    if (!first.allowed) return first;
    const token = bearerToken(headers.authorization);
    if (token === undefined) {
      return { allowed: false, code: "unauthenticated", reason: "no_credential", challenge: bearerChallenge };
    }
    const verdict = await verifyJwt(token);
    if (!verdict.ok) return jwtDenial(verdict);
    const principal = options.onBehalfOf ? "jwt:on_behalf_of" : verdict.principal;
    const allowed: AccessDecision = {
      allowed: true,
      principal: first.principal === "any" ? principal : `${first.principal},${principal}`,
      caller: verdict.caller,
    };
    if (first.consumer !== undefined) allowed.consumer = first.consumer;
    return allowed;
  };
}

function jwtDenial(verdict: Exclude<JwtDecision, { ok: true }>): AccessDecision {
  switch (verdict.reason) {
    case "jwt_invalid":
    case "jwt_expired":
      return {
        allowed: false,
        code: "unauthenticated",
        reason: verdict.reason,
        challenge: invalidTokenChallenge,
      };
    case "jwks_unavailable":
      return {
        allowed: false,
        code: "jwks_unavailable",
        reason: verdict.reason,
        retryAfter: Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)),
      };
    default:
      return { allowed: false, code: "access_denied", reason: verdict.reason };
  }
}

function compileKeysAndCidrs(
  access: AccessConfig,
  now: () => number,
): (headers: IncomingHttpHeaders, clientIp: string) => AccessDecision {
  const keys = (access.apiKeys ?? []).map((k) => ({
    digest: Buffer.from(k.sha256, "hex"),
    expiresAt: k.expires?.getTime(),
    allowed: { allowed: true, principal: `key:${k.name}`, consumer: k.consumer ?? k.name } as const,
  }));
  const cidrs = access.cidrs && access.cidrs.length > 0 ? buildBlockList(access.cidrs) : undefined;
  const digest = Buffer.alloc(32);
  const challenge = keys.length > 0 ? 'Basic realm="entra-auth-proxy", charset="UTF-8"' : undefined;

  return (headers, clientIp) => {
    if (cidrs && !contains(cidrs, clientIp)) {
      return { allowed: false, code: "access_denied", reason: "cidr" };
    }
    if (keys.length === 0) return { allowed: true, principal: cidrs ? "ip:allowed" : "any" };

    const presented = presentedApiKey(headers);
    if (presented === undefined) {
      const denial: AccessDecision = { allowed: false, code: "unauthenticated", reason: "no_credential" };
      if (challenge) denial.challenge = challenge;
      return denial;
    }
    // Only digests are held (design.md): the presented key is hashed on every request, never kept.
    // A hex digest written into a reused buffer costs less than a new Buffer from `hash`.
    digest.write(hash("sha256", presented, "hex"), "hex");
    let matched: (typeof keys)[number] | undefined;
    // Compare against every key, without stopping early, so timing does not reveal which matched.
    for (const key of keys) {
      if (timingSafeEqual(digest, key.digest) && matched === undefined) matched = key;
    }
    if (!matched) return { allowed: false, code: "access_denied", reason: "invalid_key" };
    if (matched.expiresAt !== undefined && now() >= matched.expiresAt) {
      return { allowed: false, code: "access_denied", reason: "expired_key" };
    }
    return matched.allowed;
  };
}
