// Inbound bearer tokens (Entra or any OIDC issuer): signature against a cached, rotating JWKS,
// issuer, audience, expiry, and optional roles / scopes / object ids. The inbound token is only
// checked — the front door never forwards it (the outbound token replaces it).
import { createRemoteJWKSet, errors, jwtVerify } from "jose";
import type { JwtAccessConfig } from "../config/types.ts";

export type JwtDecision =
  | { ok: true; principal: string }
  | {
      ok: false;
      reason: "jwt_invalid" | "jwt_expired" | "jwt_role" | "jwt_scope" | "jwt_object_id" | "jwt_unavailable";
    };

/** Asymmetric algorithms only: "none" and HMAC (a shared secret anyone with the JWKS could forge) are refused. */
const ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"];

export function compileJwtCheck(config: JwtAccessConfig): (token: string) => Promise<JwtDecision> {
  const jwks = createRemoteJWKSet(new URL(config.jwksUri), {
    cooldownDuration: 30_000,
    cacheMaxAge: 600_000,
  });
  return async (token) => {
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, jwks, {
        issuer: config.issuer,
        audience: config.audience,
        algorithms: ALGORITHMS,
        clockTolerance: 60,
      }));
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: "jwt_expired" };
      if (
        err instanceof errors.JWKSTimeout ||
        (err instanceof Error && /fetch failed|ECONNREFUSED/.test(err.message))
      ) {
        return { ok: false, reason: "jwt_unavailable" };
      }
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
    return { ok: true, principal: `jwt:${oid || "unknown"}` };
  };
}

/** The token of an `Authorization: Bearer …` header, if that is what was sent. */
export function bearerToken(authorization: string | undefined): string | undefined {
  if (!authorization || authorization.length < 8) return undefined;
  if (authorization.slice(0, 7).toLowerCase() !== "bearer ") return undefined;
  const token = authorization.slice(7).trim();
  return token === "" ? undefined : token;
}
