/**
 * What Entra decides at the token endpoint, without the HTTP: which app and tenant, whether the client
 * and user authenticated, which resource the scope names, and the token response — or an AadstsError.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createLocalJWKSet, type JWTPayload, errors as joseErrors, jwtVerify } from "jose";
import { aadsts } from "./aadsts-errors.ts";
import { authenticateClient, type ClientAuthMethod } from "./client-auth.ts";
import type { AppRegistration, Directory, ManagedIdentity, User } from "./directory.ts";
import {
  appAccessTokenClaims,
  type ClientAuthClass,
  clientCredentialsResource,
  clientInfo,
  type DelegatedGrant,
  delegatedGrant,
  idTokenClaims,
  type TokenTimes,
  tokenTimes,
  userAccessTokenClaims,
  v1Issuer,
} from "./token-claims.ts";
import type { TokenSigner } from "./token-signer.ts";

/** The grant type of on-behalf-of (with requested_token_use=on_behalf_of). */
export const JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/** The conditional access policy id the emulator's MFA claims challenge names. */
const MFA_POLICY_ID = "c1a2b3d4-0000-4000-8000-00000000cafe";

export interface TokenServiceDeps {
  directory: Directory;
  signer: TokenSigner;
  /** `https://localhost:<port>` — token endpoint and id_token issuer URLs are built from it. */
  baseUrl: string;
  now: () => number;
  lifetimeSec: () => number;
  refreshInSec: number | undefined;
}

interface RefreshGrant {
  tenantId: string;
  clientId: string;
  userObjectId: string;
}

export type TokenResponse = Record<string, unknown>;

export class TokenService {
  readonly #deps: TokenServiceDeps;
  readonly #refreshTokens = new Map<string, RefreshGrant>();

  constructor(deps: TokenServiceDeps) {
    this.#deps = deps;
  }

  /** One POST to `/{tenant}/oauth2/v2.0/token`. Throws AadstsError. */
  async grant(tenant: string, form: URLSearchParams): Promise<TokenResponse> {
    const { directory } = this.#deps;
    if (!directory.hasTenant(tenant)) throw aadsts.tenantNotFound(tenant);
    const grantType = form.get("grant_type");
    if (!grantType) throw aadsts.missingParameter("grant_type");
    const clientId = form.get("client_id");
    if (!clientId) throw aadsts.missingParameter("client_id");
    const app = directory.findApp(tenant, clientId);
    if (!app) throw aadsts.appNotFound(clientId, tenant);

    switch (grantType) {
      case "client_credentials":
        return this.#clientCredentials(app, form, tenant);
      case "password":
        return this.#password(app, form, tenant);
      case "refresh_token":
        return this.#refreshToken(app, form, tenant);
      case JWT_BEARER_GRANT:
        return this.#onBehalfOf(app, form, tenant);
      default:
        throw aadsts.unsupportedGrantType(grantType);
    }
  }

  /** The access token a managed identity gets for `audience`, and its expiry (epoch seconds). */
  async managedIdentityToken(
    identity: ManagedIdentity,
    audience: string,
  ): Promise<{ token: string; exp: number }> {
    const times = this.#times();
    const token = await this.#deps.signer.sign(
      appAccessTokenClaims({
        tenantId: identity.tenantId,
        audience,
        clientId: identity.clientId,
        objectId: identity.objectId,
        roles: identity.roles,
        appidacr: "2",
        times,
      }),
    );
    return { token, exp: times.exp };
  }

  async #clientCredentials(
    app: AppRegistration,
    form: URLSearchParams,
    tenant: string,
  ): Promise<TokenResponse> {
    const method = await this.#authenticate(app, form, tenant);
    if (method === "none") throw aadsts.credentialRequired();
    const resource = clientCredentialsResource(form.get("scope"));
    this.#requireResource(resource, tenant);
    const claims = appAccessTokenClaims({
      tenantId: app.tenantId,
      audience: resource,
      clientId: app.clientId,
      objectId: app.objectId,
      roles: app.roles,
      appidacr: authClass(method),
      appDisplayName: app.displayName,
      times: this.#times(),
    });
    return this.#accessTokenResponse(await this.#deps.signer.sign(claims));
  }

  async #password(app: AppRegistration, form: URLSearchParams, tenant: string): Promise<TokenResponse> {
    const method = await this.#authenticate(app, form, tenant);
    if (method === "none" && !app.publicClient) throw aadsts.credentialRequired();
    const username = form.get("username");
    const password = form.get("password");
    if (!username) throw aadsts.missingParameter("username");
    if (password === null) throw aadsts.missingParameter("password");
    const user = this.#deps.directory.findUser(tenant, username);
    if (!user || !sameSecret(user.password, password)) throw aadsts.badCredentials();
    const grant = delegatedGrant(form.get("scope"));
    this.#requireResource(grant.resource, tenant);
    requireConsent(user, app);
    if (user.mfaRequired) throw aadsts.mfaRequired(grant.resource);
    return this.#userTokenResponse(app, user, method, grant);
  }

  /** Every refresh token issued so far stops working (password changed, sessions revoked). */
  revokeRefreshTokens(): void {
    this.#refreshTokens.clear();
  }

  async #refreshToken(app: AppRegistration, form: URLSearchParams, tenant: string): Promise<TokenResponse> {
    const method = await this.#authenticate(app, form, tenant);
    if (method === "none" && !app.publicClient) throw aadsts.credentialRequired();
    const refreshToken = form.get("refresh_token");
    if (!refreshToken) throw aadsts.missingParameter("refresh_token");
    const stored = this.#refreshTokens.get(refreshToken);
    if (!stored || stored.tenantId !== app.tenantId) throw aadsts.invalidRefreshToken();
    if (stored.clientId !== app.clientId) throw aadsts.refreshTokenClientMismatch();
    const user = this.#deps.directory.findUserByObjectId(stored.tenantId, stored.userObjectId);
    if (!user) throw aadsts.invalidRefreshToken();
    const grant = delegatedGrant(form.get("scope"));
    this.#requireResource(grant.resource, tenant);
    requireConsent(user, app);
    return this.#userTokenResponse(app, user, method, grant);
  }

  /**
   * On-behalf-of: a confidential client (the web API) exchanges a user's token issued for it — checked
   * for signature, issuer, expiry and audience (its client id or api:// URI) — for one of another API.
   */
  async #onBehalfOf(app: AppRegistration, form: URLSearchParams, tenant: string): Promise<TokenResponse> {
    const method = await this.#authenticate(app, form, tenant);
    if (method === "none") throw aadsts.credentialRequired();
    if (form.get("requested_token_use") !== "on_behalf_of") throw aadsts.oboTokenUseInvalid();
    const assertion = form.get("assertion");
    if (!assertion) throw aadsts.missingParameter("assertion");
    const payload = await this.#verifyUserAssertion(assertion, app);
    const user =
      typeof payload.oid === "string"
        ? this.#deps.directory.findUserByObjectId(app.tenantId, payload.oid)
        : undefined;
    if (!user) throw aadsts.oboAssertionInvalid("the assertion names no user of this tenant");
    const grant = delegatedGrant(form.get("scope"));
    this.#requireResource(grant.resource, tenant);
    requireConsent(user, app);
    const amr = Array.isArray(payload.amr) ? payload.amr : [];
    if (user.mfaRequired && !amr.includes("mfa")) {
      const claims = JSON.stringify({
        access_token: { capolids: { essential: true, values: [MFA_POLICY_ID] } },
      });
      throw aadsts.oboInteractionRequired(grant.resource, claims);
    }
    return this.#userTokenResponse(app, user, method, grant);
  }

  async #verifyUserAssertion(assertion: string, app: AppRegistration): Promise<JWTPayload> {
    try {
      const { payload } = await jwtVerify(assertion, createLocalJWKSet(this.#deps.signer.publicJwks()), {
        issuer: [v1Issuer(app.tenantId), `${this.#deps.baseUrl}/${app.tenantId}/v2.0`],
        audience: [app.clientId, `api://${app.clientId}`],
        requiredClaims: ["exp"],
        currentDate: new Date(this.#deps.now()),
      });
      return payload;
    } catch (e) {
      if (e instanceof joseErrors.JWTExpired) throw aadsts.oboAssertionExpired();
      throw aadsts.oboAssertionInvalid(e instanceof Error ? e.message : "invalid assertion");
    }
  }

  /** A user's access token for `audience`, as a client app would get it by signing the user in. */
  async userAccessToken(options: {
    user: User;
    audience: string;
    clientId: string;
    scp: string;
    mfa?: boolean;
    lifetimeSec?: number;
  }): Promise<string> {
    return this.#deps.signer.sign(
      userAccessTokenClaims({
        tenantId: options.user.tenantId,
        audience: options.audience,
        clientId: options.clientId,
        appidacr: "0",
        user: options.user,
        scp: options.scp,
        mfa: options.mfa ?? false,
        times: tokenTimes(this.#deps.now(), options.lifetimeSec ?? this.#deps.lifetimeSec()),
      }),
    );
  }

  #authenticate(app: AppRegistration, form: URLSearchParams, tenant: string): Promise<ClientAuthMethod> {
    const { baseUrl } = this.#deps;
    return authenticateClient({
      app,
      form,
      now: this.#deps.now(),
      // msal-node uses the discovered token endpoint; Entra also accepts the issuer.
      assertionAudiences: [
        `${baseUrl}/${tenant}/oauth2/v2.0/token`,
        `${baseUrl}/${app.tenantId}/oauth2/v2.0/token`,
        `${baseUrl}/${tenant}/v2.0`,
      ],
    });
  }

  #requireResource(resource: string, tenant: string): void {
    if (!this.#deps.directory.isKnownResource(resource)) throw aadsts.resourceNotFound(resource, tenant);
  }

  async #userTokenResponse(
    app: AppRegistration,
    user: User,
    method: ClientAuthMethod,
    grant: DelegatedGrant,
  ): Promise<TokenResponse> {
    const { signer, baseUrl } = this.#deps;
    const times = this.#times();
    const accessToken = await signer.sign(
      userAccessTokenClaims({
        tenantId: user.tenantId,
        audience: grant.resource,
        clientId: app.clientId,
        appidacr: authClass(method),
        appDisplayName: app.displayName,
        user,
        scp: grant.scp,
        mfa: false,
        times,
      }),
    );
    const body: TokenResponse = { ...this.#accessTokenResponse(accessToken), scope: grant.responseScope };
    // As in Entra: a refresh token only with offline_access, an id_token and client_info only with openid.
    if (grant.offlineAccess) {
      const refreshToken = `0.A${randomBytes(48).toString("base64url")}`;
      this.#refreshTokens.set(refreshToken, {
        tenantId: user.tenantId,
        clientId: app.clientId,
        userObjectId: user.objectId,
      });
      body["refresh_token"] = refreshToken;
    }
    if (grant.openid) {
      const issuer = `${baseUrl}/${user.tenantId}/v2.0`;
      body["id_token"] = await signer.sign(
        idTokenClaims({ issuer, tenantId: user.tenantId, clientId: app.clientId, user, times }),
      );
      body["client_info"] = clientInfo(user);
    }
    return body;
  }

  #accessTokenResponse(accessToken: string): TokenResponse {
    const lifetime = this.#deps.lifetimeSec();
    const refreshIn = this.#deps.refreshInSec ?? (lifetime >= 7200 ? Math.floor(lifetime / 2) : undefined);
    return {
      token_type: "Bearer",
      expires_in: lifetime,
      ext_expires_in: lifetime,
      ...(refreshIn === undefined ? {} : { refresh_in: refreshIn }),
      access_token: accessToken,
    };
  }

  #times(): TokenTimes {
    return tokenTimes(this.#deps.now(), this.#deps.lifetimeSec());
  }
}

function requireConsent(user: User, app: AppRegistration): void {
  if (user.consentedClientIds && !user.consentedClientIds.includes(app.clientId)) {
    throw aadsts.consentRequired(app.clientId, app.displayName);
  }
}

function authClass(method: ClientAuthMethod): ClientAuthClass {
  if (method === "secret") return "1";
  if (method === "none") return "0";
  return "2";
}

/** Constant-time string comparison (length may leak; fine for an emulator). */
export function sameSecret(expected: string, presented: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}
