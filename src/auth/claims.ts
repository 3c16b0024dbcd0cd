// A token's claims, summarised for people (check --online, token): never the token itself; and the
// times a token carries, which decide how long the cache may serve it.
import { decodeJwt } from "jose";

export interface ClaimsSummary {
  aud: string;
  tid?: string;
  /** appid/azp for app tokens. */
  appid?: string;
  /** upn / unique_name for user tokens. */
  upn?: string;
  oid?: string;
  roles?: string[];
  scp?: string;
  expires: string;
  kind: "app" | "user" | "unknown";
}

export function summariseToken(accessToken: string): ClaimsSummary {
  const claims = decodeJwt(accessToken) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const aud = Array.isArray(claims.aud) ? claims.aud.join(" ") : (str(claims.aud) ?? "");
  const summary: ClaimsSummary = {
    aud,
    expires: typeof claims.exp === "number" ? new Date(claims.exp * 1000).toISOString() : "unknown",
    kind:
      claims.idtyp === "user" || claims.scp
        ? "user"
        : claims.idtyp === "app" || claims.roles
          ? "app"
          : "unknown",
  };
  const tid = str(claims.tid);
  const appid = str(claims.appid) ?? str(claims.azp);
  const upn = str(claims.upn) ?? str(claims.unique_name) ?? str(claims.preferred_username);
  const oid = str(claims.oid);
  const scp = str(claims.scp);
  if (tid) summary.tid = tid;
  if (appid) summary.appid = appid;
  if (upn) summary.upn = upn;
  if (oid) summary.oid = oid;
  if (Array.isArray(claims.roles)) summary.roles = claims.roles.map(String);
  if (scp) summary.scp = scp;
  return summary;
}

/** The audience a scope asks for: the scope without its "/.default" suffix. */
export function audienceOfScope(scope: string): string {
  return scope.endsWith("/.default") ? scope.slice(0, -"/.default".length) : scope;
}

export function formatSummary(s: ClaimsSummary): string {
  const who = s.kind === "user" ? `upn ${s.upn ?? "?"}` : `appid ${s.appid ?? "?"}`;
  const grants = s.roles ? `roles [${s.roles.join(", ")}]` : s.scp ? `scp "${s.scp}"` : "no roles/scp";
  return `aud ${s.aud} · tid ${s.tid ?? "?"} · ${who} · oid ${s.oid ?? "?"} · ${grants} · expires ${s.expires}`;
}

/** A one-line verdict comparing the token's audience to what the route's scope asks for. */
export function audienceVerdict(
  s: ClaimsSummary,
  scope: string,
  prefix: string,
): { ok: boolean; text: string } {
  const expected = audienceOfScope(scope);
  const ok = s.aud === expected || s.aud.replace(/\/$/, "") === expected.replace(/\/$/, "");
  return {
    ok,
    text: ok
      ? `aud is ${s.aud} — matches route ${prefix}`
      : `aud is ${s.aud}, but route ${prefix} asks for ${expected}: check the route's scope`,
  };
}

export interface TokenValidity {
  /** Epoch ms of the `exp` claim. */
  expiresOn: number;
  /** Epoch ms of `iat`, else `nbf`, when present. */
  issuedAt?: number;
}

/** The token's own `exp` (and `iat`/`nbf`), unverified; undefined for an opaque token or one without `exp`. */
export function validityOf(accessToken: string): TokenValidity | undefined {
  let claims: Record<string, unknown>;
  try {
    claims = decodeJwt(accessToken) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const ms = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v * 1000 : undefined);
  const expiresOn = ms(claims.exp);
  if (expiresOn === undefined) return undefined;
  const issuedAt = ms(claims.iat) ?? ms(claims.nbf);
  return issuedAt === undefined ? { expiresOn } : { expiresOn, issuedAt };
}
