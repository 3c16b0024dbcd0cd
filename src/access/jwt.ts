// Inbound bearer tokens (Entra or any OIDC issuer): signature against the issuer's JWKS, issuer,
// audience, a required expiry (RFC 9068), and optional roles / scopes / object ids. The inbound token
// is only checked — the front door never forwards it (the outbound token replaces it).
import { errors, jwtVerify } from "jose";
import type { JwtAccessConfig } from "../config/types.ts";
import { JwksKeySource, type JwksOptions, JwksUnavailable } from "./jwks.ts";

/** The caller a verified token names, and the token itself: what an on-behalf-of exchange needs. */
export interface VerifiedCaller {
  /** Issuer and `oid` of the token ("" without an oid): the key of the caller's on-behalf-of tokens. */
  user: string;
  /** The verified token, exchanged as the assertion of on-behalf-of; never logged or forwarded. */
  assertion: string;
  /** Epoch ms of its `exp`. */
  expiresAt: number;
}

export type JwtDecision =
  | { ok: true; principal: string; caller: VerifiedCaller }
  /** The token is not acceptable at all (401): bad signature, issuer, audience, no `exp`, malformed. */
  | { ok: false; reason: "jwt_invalid" | "jwt_expired" }
  /** A valid token that lacks what the route requires (403). */
  | { ok: false; reason: "jwt_role" | "jwt_scope" | "jwt_object_id" }
  /** No key to check it can be had (503); `retryAfterMs` until the next fetch of the JWKS. */
  | { ok: false; reason: "jwks_unavailable"; retryAfterMs: number };

/** Asymmetric algorithms only: "none" and HMAC (a shared secret anyone with the JWKS could forge) are refused. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

export function compileJwtCheck(
  config: JwtAccessConfig,
  options: JwksOptions = {},
): (token: string) => Promise<JwtDecision> {
  const now = options.now ?? Date.now;
  const keys = new JwksKeySource(new URL(config.jwksUri), options);
  return async (token) => {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys.getKey, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: ALGORITHMS,
        requiredClaims: ["exp"],
        clockTolerance: 60,
        currentDate: new Date(now()),
      }));
    } catch (err) {
      if (err instanceof JwksUnavailable)
        return { ok: false, reason: "jwks_unavailable", retryAfterMs: err.retryAfterMs };
      if (err instanceof errors.JWTExpired) return { ok: false, reason: "jwt_expired" };
      return { ok: false, reason: "jwt_invalid" };
    }
    const roles = Array.isArray(payload.roles) ? payload.roles.map(String) : [];
    if (config.requiredRoles && !config.requiredRoles.every((r) => roles.includes(r))) {
      return { ok: false, reason: "jwt_role" };
    }
    const scopes = typeof payload.scp === "string" ? payload.scp.split(" ") : [];
    if (config.requiredScopes && !config.requiredScopes.every((s) => scopes.includes(s))) {
      return { ok: false, reason: "jwt_scope" };
    }
    const oid =
      typeof payload.oid === "string" ? payload.oid : typeof payload.sub === "string" ? payload.sub : "";
    if (config.allowedObjectIds && !config.allowedObjectIds.includes(oid)) {
      return { ok: false, reason: "jwt_object_id" };
    }
    // The key of the caller's on-behalf-of tokens: issuer and object id, so that no other claim (a sub
    // from another issuer) can name someone else's cached token; without an oid there is none.
    const user =
      typeof payload.oid === "string" && payload.oid !== "" ? `${payload.iss}\u0000${payload.oid}` : "";
    return {
      ok: true,
      principal: `jwt:${oid || "unknown"}`,
      caller: { user, assertion: token, expiresAt: (payload.exp as number) * 1000 },
    };
  };
}

/** The token of an `Authorization: Bearer …` header, if that is what was sent. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.length < 8) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = authorization.slice(7).trim();
  return token === "" ? undefined : token;
}
