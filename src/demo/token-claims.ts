/**
 * Claims of the tokens the emulator issues — shaped like Microsoft v1.0 access tokens (what Power Platform,
 * PowerApps, Flow and LCS receive) and v2.0 ID tokens — and the scope rules that pick the audience.
 */
import { createHash, randomBytes } from "node:crypto";
import type { JWTPayload } from "jose";
import { aadsts } from "./aadsts-errors.ts";
import type { User } from "./directory.ts";

const OIDC_SCOPES = new Set(["openid", "profile", "offline_access", "email"]);
const GRAPH = "https://graph.microsoft.com";

export interface TokenTimes {
  iat: number;
  nbf: number;
  exp: number;
}

export function tokenTimes(nowMs: number, lifetimeSec: number): TokenTimes {
  const iat = Math.floor(nowMs / 1000);
  return { iat, nbf: iat, exp: iat + lifetimeSec };
}

/** `appidacr`: 0 public client, 1 client secret, 2 certificate or federated assertion. */
export type ClientAuthClass = "0" | "1" | "2";

interface CommonClaims {
  tenantId: string;
  audience: string;
  clientId: string;
  times: TokenTimes;
  appidacr: ClientAuthClass;
  appDisplayName?: string | undefined;
}

export function appAccessTokenClaims(c: CommonClaims & { objectId: string; roles: string[] }): JWTPayload {
  return {
    ...baseClaims(c),
    oid: c.objectId,
    sub: c.objectId,
    idtyp: "app",
    ...(c.roles.length > 0 ? { roles: c.roles } : {}),
  };
}

export function userAccessTokenClaims(
  c: CommonClaims & { user: User; scp: string; mfa: boolean },
): JWTPayload {
  return {
    ...baseClaims(c),
    oid: c.user.objectId,
    sub: pairwiseSubject(c.user.objectId, c.clientId),
    idtyp: "user",
    scp: c.scp,
    upn: c.user.username,
    unique_name: c.user.username,
    name: c.user.displayName,
    amr: c.mfa ? ["pwd", "mfa"] : ["pwd"],
  };
}

export function idTokenClaims(c: {
  issuer: string;
  tenantId: string;
  clientId: string;
  user: User;
  times: TokenTimes;
}): JWTPayload {
  return {
    aud: c.clientId,
    iss: c.issuer,
    iat: c.times.iat,
    nbf: c.times.nbf,
    exp: c.times.exp,
    name: c.user.displayName,
    oid: c.user.objectId,
    preferred_username: c.user.username,
    sub: pairwiseSubject(c.user.objectId, c.clientId),
    tid: c.tenantId,
    uti: uti(),
    ver: "2.0",
  };
}

/** `client_info` of a token response: base64url JSON `{uid, utid}` — msal-node builds the account id from it. */
export function clientInfo(user: User): string {
  return Buffer.from(JSON.stringify({ uid: user.objectId, utid: user.tenantId })).toString("base64url");
}

function baseClaims(c: CommonClaims): JWTPayload {
  return {
    aud: c.audience,
    iss: v1Issuer(c.tenantId),
    iat: c.times.iat,
    nbf: c.times.nbf,
    exp: c.times.exp,
    ...(c.appDisplayName ? { app_displayname: c.appDisplayName } : {}),
    appid: c.clientId,
    appidacr: c.appidacr,
    azp: c.clientId,
    tid: c.tenantId,
    uti: uti(),
    ver: "1.0",
  };
}

export function v1Issuer(tenantId: string): string {
  return `https://sts.windows.net/${tenantId}/`;
}

/**
 * The `aud` Entra issues for a requested resource: the resource itself — only `/.default` was
 * stripped from the scope, so `https://service.powerapps.com//.default` gives
 * `https://service.powerapps.com/` and a scope written with a single slash yields a different
 * audience that the mock APIs reject, as the real services do.
 */
export function audienceFor(resource: string): string {
  return resource;
}

/** Resource of a scope: `X/.default` → `X` (only the suffix goes, so `https://host//.default` → `https://host/`). */
export function splitScope(scope: string): { resource: string; permission: string } {
  const cut = scope.lastIndexOf("/");
  if (cut <= 0) return { resource: scope, permission: "" };
  return { resource: scope.slice(0, cut), permission: scope.slice(cut + 1) };
}

/** Client credentials: exactly one `<resource>/.default`. Returns the token's `aud`. */
export function clientCredentialsResource(scopeParam: string | null): string {
  if (!scopeParam?.trim()) throw aadsts.missingParameter("scope");
  const scopes = scopeParam.trim().split(/\s+/);
  const invalid = scopes.find((s) => !s.endsWith("/.default"));
  if (invalid !== undefined) throw aadsts.invalidScopeForClientCredentials(invalid);
  const resources = new Set(scopes.map((s) => splitScope(s).resource));
  if (resources.size > 1) throw aadsts.multipleResources();
  return audienceFor(splitScope(scopes[0]!).resource);
}

export interface DelegatedGrant {
  /** The token's `aud`. */
  resource: string;
  /** The `scp` claim. */
  scp: string;
  /** The `scope` of the token response. */
  responseScope: string;
  openid: boolean;
  offlineAccess: boolean;
}

/**
 * Delegated flows: at most one resource among the non-OIDC scopes; `.default` grants the app's
 * configured permission, which for the Microsoft APIs here is `user_impersonation`.
 */
export function delegatedGrant(scopeParam: string | null): DelegatedGrant {
  const scopes = (scopeParam ?? "").trim().split(/\s+/).filter(Boolean);
  const resourceScopes = scopes.filter((s) => !OIDC_SCOPES.has(s));
  const resources = new Set(resourceScopes.map((s) => splitScope(s).resource));
  if (resources.size > 1) throw aadsts.multipleResources();
  const openid = scopes.includes("openid");
  const offlineAccess = scopes.includes("offline_access");
  const [first] = resourceScopes;
  if (first === undefined) {
    return {
      resource: GRAPH,
      scp: "openid profile email",
      responseScope: scopes.join(" "),
      openid,
      offlineAccess,
    };
  }
  const { resource } = splitScope(first);
  const permissions = resourceScopes.map((s) => splitScope(s).permission);
  const granted = [...new Set(permissions.map((p) => (p === ".default" ? "user_impersonation" : p)))];
  const responseScope = [
    ...granted.map((p) => `${resource}/${p}`),
    ...(permissions.includes(".default") ? [`${resource}/.default`] : []),
  ].join(" ");
  return { resource: audienceFor(resource), scp: granted.join(" "), responseScope, openid, offlineAccess };
}

/** User `sub` is pairwise per app in Microsoft tokens. */
function pairwiseSubject(objectId: string, clientId: string): string {
  return createHash("sha256").update(`${objectId}:${clientId}`).digest("base64url").slice(0, 43);
}

function uti(): string {
  return randomBytes(16).toString("base64url");
}
