/**
 * An HTTPS server shaped like Entra ID (login.microsoftonline.com) that real `@azure/msal-node` talks to:
 * OpenID discovery, JWKS, the v2.0 token endpoint (client credentials with secret / certificate /
 * workload identity assertion, ROPC, refresh token) and an App Service style managed identity endpoint.
 * It issues real RS256 JWTs, answers errors exactly as Entra does, and lets tests inject faults.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import type { JSONWebKeySet, JWTPayload } from "jose";
import { AadstsError, aadsts, aadstsErrorBody } from "./aadsts-errors.ts";
import {
  type AppRegistration,
  type AppRegistrationInput,
  Directory,
  type ManagedIdentity,
  type ManagedIdentityInput,
  type User,
  type UserInput,
} from "./directory.ts";
import { type Fault, FaultInjector, playFault } from "./faults.ts";
import { BodyTooLargeError, closeServer, listen, origin, readSmallBody, sendJson } from "./http-util.ts";
import { appAccessTokenClaims, audienceFor, tokenTimes } from "./token-claims.ts";
import { sameSecret, TokenService } from "./token-service.ts";
import { TokenSigner } from "./token-signer.ts";

export type { AppRegistrationInput, ManagedIdentityInput, UserInput } from "./directory.ts";
export type { Fault } from "./faults.ts";

export interface EntraEmulatorOptions {
  tls: { cert: string; key: string };
  /** Listen address; default 127.0.0.1. The URL always says `localhost` (what the certificate names). */
  host?: string;
  /** default 0 (any free port) */
  port?: number;
  /** Access token lifetime; default 3600. */
  tokenLifetimeSec?: number;
  /** Send `refresh_in` with this value (otherwise only for lifetimes of 2 h or more: half the lifetime). */
  refreshInSec?: number;
  /** Clock in ms for issued tokens and secret expiry; default Date.now. */
  now?: () => number;
}

export interface TokenRequestLogEntry {
  at: number;
  tenantId: string;
  clientId?: string;
  /** `client_credentials`, `password`, `refresh_token`, or `managed_identity` for the MSI endpoint. */
  grantType: string;
  scope?: string;
  outcome: "success" | "error" | "fault";
  /** `AADSTS<code>` for Entra errors; a short reason for managed identity endpoint errors. */
  error?: string;
  status?: number;
}

interface Answer {
  status: number;
  body: unknown;
  log: Pick<TokenRequestLogEntry, "outcome" | "error">;
}

const MSI_API_VERSION = "2019-08-01";
const FORM_LIMIT_BYTES = 1024 * 1024;
const DEFAULT_TENANT = "00000000-0000-0000-0000-000000000001";
const NO_CACHE = { "cache-control": "no-store, no-cache", pragma: "no-cache" };

export class EntraEmulator {
  /** `https://localhost:<port>` */
  readonly url: string;
  readonly port: number;
  /** The value `X-IDENTITY-HEADER` must carry at the managed identity endpoint (`IDENTITY_HEADER`). */
  readonly identityHeader: string;
  readonly tokenRequests: TokenRequestLogEntry[] = [];

  readonly #server: ReturnType<typeof createServer>;
  readonly #signer: TokenSigner;
  readonly #now: () => number;
  readonly #directory = new Directory();
  readonly #faults = new FaultInjector();
  readonly #tokens: TokenService;
  readonly #closing = new AbortController();
  #tokenLifetimeSec: number;

  private constructor(
    server: ReturnType<typeof createServer>,
    port: number,
    signer: TokenSigner,
    opts: EntraEmulatorOptions,
  ) {
    this.#server = server;
    this.port = port;
    this.url = origin("https", "localhost", port);
    this.identityHeader = randomBytes(16).toString("hex");
    this.#signer = signer;
    this.#now = opts.now ?? Date.now;
    this.#tokenLifetimeSec = opts.tokenLifetimeSec ?? 3600;
    this.#tokens = new TokenService({
      directory: this.#directory,
      signer,
      baseUrl: this.url,
      now: this.#now,
      lifetimeSec: () => this.#tokenLifetimeSec,
      refreshInSec: opts.refreshInSec,
    });
  }

  static async start(opts: EntraEmulatorOptions): Promise<EntraEmulator> {
    const signer = await TokenSigner.create();
    const server = createServer({ cert: opts.tls.cert, key: opts.tls.key });
    const port = await listen(server, opts.host ?? "127.0.0.1", opts.port ?? 0);
    const emulator = new EntraEmulator(server, port, signer, opts);
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      emulator.#handle(req, res).catch((e: unknown) => {
        if (!emulator.#closing.signal.aborted)
          sendJson(res, 500, { error: "server_error", error_description: String(e) });
      });
    });
    return emulator;
  }

  /** Same as `url`: what msal-node's `authority` starts with. */
  get authorityHost(): string {
    return this.url;
  }

  /** `localhost:<port>` — put it in msal-node's `knownAuthorities`. */
  get knownAuthority(): string {
    return `localhost:${this.port}`;
  }

  /** `IDENTITY_ENDPOINT` for msal-node's App Service managed identity source. */
  get msiEndpoint(): string {
    return `${this.url}/msi/token`;
  }

  authority(tenantId: string): string {
    return `${this.url}/${tenantId}`;
  }

  tokenEndpoint(tenantId: string): string {
    return `${this.url}/${tenantId}/oauth2/v2.0/token`;
  }

  addApp(app: AppRegistrationInput): AppRegistration {
    return this.#directory.addApp(app);
  }

  addUser(user: UserInput): User {
    return this.#directory.addUser(user);
  }

  addManagedIdentity(identity: ManagedIdentityInput): ManagedIdentity {
    return this.#directory.addManagedIdentity(identity);
  }

  /** Registers a known audience; once any is registered, unknown resources fail with AADSTS500011. */
  addResource(audience: string): void {
    this.#directory.addResource(audience);
  }

  setTokenLifetime(sec: number): void {
    this.#tokenLifetimeSec = sec;
  }

  /** Faults hit the token endpoint and the managed identity endpoint. Returns a remover. */
  inject(fault: Fault): () => void {
    return this.#faults.inject(fault);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  resetLog(): void {
    this.tokenRequests.length = 0;
  }

  /** Revokes every refresh token issued so far, as "revoke sessions" in Entra does. */
  revokeRefreshTokens(): void {
    this.#tokens.revokeRefreshTokens();
  }

  publicJwks(): JSONWebKeySet {
    return this.#signer.publicJwks();
  }

  /**
   * Mints an app access token directly (for upstream/inbound-JWT tests). Overrides replace defaults;
   * an override of `undefined` removes the claim (e.g. `{ exp: undefined }`).
   */
  issueToken(overrides: Record<string, unknown> = {}): Promise<string> {
    const tid = typeof overrides["tid"] === "string" ? overrides["tid"] : DEFAULT_TENANT;
    const clientId = typeof overrides["appid"] === "string" ? overrides["appid"] : randomUUID();
    const claims: Record<string, unknown> = {
      ...appAccessTokenClaims({
        tenantId: tid,
        audience: "https://api.powerplatform.com",
        clientId,
        objectId: randomUUID(),
        roles: [],
        appidacr: "1",
        times: tokenTimes(this.#now(), this.#tokenLifetimeSec),
      }),
      ...overrides,
    };
    for (const [name, value] of Object.entries(claims)) if (value === undefined) delete claims[name];
    return this.#signer.sign(claims as JWTPayload);
  }

  /**
   * Mints the token a client app (a web app, a Teams tab) holds after signing `username` in: issued for
   * `audience` (the web API's client id or api:// URI), as on-behalf-of exchanges it.
   */
  issueUserToken(
    tenantId: string,
    username: string,
    options: { audience: string; clientId?: string; scp?: string; mfa?: boolean; lifetimeSec?: number },
  ): Promise<string> {
    const user = this.#directory.findUser(tenantId, username);
    if (!user) throw new Error(`no user ${username} in tenant ${tenantId}`);
    return this.#tokens.userAccessToken({
      user,
      audience: options.audience,
      clientId: options.clientId ?? randomUUID(),
      scp: options.scp ?? "access_as_user",
      ...(options.mfa !== undefined ? { mfa: options.mfa } : {}),
      ...(options.lifetimeSec !== undefined ? { lifetimeSec: options.lifetimeSec } : {}),
    });
  }

  async close(): Promise<void> {
    this.#closing.abort();
    await closeServer(this.#server);
  }

  // ---- routing -------------------------------------------------------------------------------------

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", this.url);
    const segments = url.pathname.split("/").filter(Boolean);
    const route = segments.slice(1).join("/");
    const tenant = segments[0] ?? "";

    if (url.pathname === "/msi/token" && req.method === "GET") return this.#managedIdentity(req, res, url);
    if (
      req.method === "GET" &&
      (route === "v2.0/.well-known/openid-configuration" || route === ".well-known/openid-configuration")
    ) {
      return this.#openIdConfiguration(res, tenant);
    }
    if (req.method === "GET" && (route === "discovery/v2.0/keys" || route === "discovery/keys")) {
      return sendJson(res, 200, this.publicJwks());
    }
    if (route === "oauth2/v2.0/token") {
      if (req.method !== "POST") return sendJson(res, 405, { error: "invalid_request" }, { allow: "POST" });
      return this.#tokenEndpoint(req, res, tenant);
    }
    sendJson(res, 404, {
      error: "not_found",
      error_description: `no such endpoint: ${req.method} ${url.pathname}`,
    });
  }

  #openIdConfiguration(res: ServerResponse, tenant: string): void {
    if (!this.#directory.hasTenant(tenant)) {
      sendJson(res, 400, this.#errorBody(aadsts.tenantNotFound(tenant), randomUUID()));
      return;
    }
    sendJson(res, 200, openIdConfiguration(`${this.url}/${tenant}`, this.knownAuthority));
  }

  // ---- token endpoint ------------------------------------------------------------------------------

  async #tokenEndpoint(req: IncomingMessage, res: ServerResponse, tenant: string): Promise<void> {
    const correlationId = correlationIdOf(req);
    let form: URLSearchParams;
    try {
      form = new URLSearchParams(await readSmallBody(req, FORM_LIMIT_BYTES));
    } catch (e) {
      if (!(e instanceof BodyTooLargeError)) throw e;
      return sendJson(res, 413, { error: "invalid_request", error_description: e.message });
    }
    const entry: TokenRequestLogEntry = {
      at: this.#now(),
      tenantId: tenant,
      grantType: form.get("grant_type") ?? "",
      outcome: "success",
      ...optional("clientId", form.get("client_id")),
      ...optional("scope", form.get("scope")),
    };

    if (await this.#answeredByFault(entry, res, correlationId)) return;

    const answer = await this.#grant(tenant, form, correlationId);
    sendJson(res, answer.status, answer.body, {
      ...NO_CACHE,
      "client-request-id": correlationId,
      "x-ms-request-id": randomUUID(),
    });
    this.#log({ ...entry, ...answer.log, status: answer.status });
  }

  async #grant(tenant: string, form: URLSearchParams, correlationId: string): Promise<Answer> {
    try {
      const body = await this.#tokens.grant(tenant, form);
      return { status: 200, body, log: { outcome: "success" } };
    } catch (e) {
      if (!(e instanceof AadstsError)) throw e;
      return {
        status: e.status,
        body: this.#errorBody(e, correlationId),
        log: { outcome: "error", error: `AADSTS${e.code}` },
      };
    }
  }

  // ---- managed identity (App Service, api-version 2019-08-01) ----------------------------------------

  async #managedIdentity(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const q = url.searchParams;
    const resource = q.get("resource");
    const requestedClientId = q.get("client_id") ?? undefined;
    const objectId = q.get("object_id") ?? q.get("principal_id") ?? undefined;
    const identity = this.#directory.findManagedIdentity({
      ...optional("clientId", requestedClientId),
      ...optional("objectId", objectId),
    });
    const entry: TokenRequestLogEntry = {
      at: this.#now(),
      tenantId: identity?.tenantId ?? "",
      grantType: "managed_identity",
      outcome: "success",
      ...optional("clientId", identity?.clientId ?? requestedClientId),
      ...optional("scope", resource),
    };
    const correlationId = correlationIdOf(req);

    if (await this.#answeredByFault(entry, res, correlationId)) return;

    const fail = (status: number, reason: string, message: string) => {
      sendJson(res, status, { statusCode: status, message, correlationId });
      this.#log({ ...entry, outcome: "error", error: reason, status });
    };
    const header = req.headers["x-identity-header"];
    if (typeof header !== "string" || !sameSecret(header, this.identityHeader)) {
      return fail(
        401,
        "identity_header_mismatch",
        "The X-IDENTITY-HEADER header is missing or does not match.",
      );
    }
    if (q.get("api-version") !== MSI_API_VERSION) {
      return fail(400, "unsupported_api_version", `Only api-version ${MSI_API_VERSION} is supported.`);
    }
    if (!resource) return fail(400, "missing_resource", "Required query parameter 'resource' is missing.");
    if (!identity) return fail(400, "identity_not_found", "Unable to load the proper Managed Identity.");
    const audience = audienceFor(resource);
    if (!this.#directory.isKnownResource(audience)) {
      const e = aadsts.resourceNotFound(resource, identity.tenantId);
      return fail(400, `AADSTS${e.code}`, `AADSTS${e.code}: ${e.message}`);
    }

    const { token, exp } = await this.#tokens.managedIdentityToken(identity, audience);
    // App Service sends expires_on as a string of epoch seconds; msal-node turns it into expires_in.
    sendJson(res, 200, {
      access_token: token,
      expires_on: String(exp),
      resource,
      token_type: "Bearer",
      client_id: identity.clientId,
    });
    this.#log({ ...entry, status: 200 });
  }

  // ---- shared ---------------------------------------------------------------------------------------

  /** Plays the first matching fault; true when it produced the answer (logged as a fault). */
  async #answeredByFault(entry: TokenRequestLogEntry, res: ServerResponse, correlationId: string) {
    const fault = this.#faults.take({ clientId: entry.clientId, grantType: entry.grantType });
    if (!fault) return false;
    const defaultBody = () => this.#errorBody(aadsts.serviceError(), correlationId);
    const answered = await playFault(fault, res, defaultBody, this.#closing.signal).catch(() => true);
    if (answered) {
      const status = fault.drop ? null : (fault.status ?? 200);
      this.#log({ ...entry, outcome: "fault", ...optional("status", status) });
    }
    return answered;
  }

  #errorBody(e: AadstsError, correlationId: string): Record<string, unknown> {
    return aadstsErrorBody(e, { traceId: randomUUID(), correlationId, now: this.#now(), baseUrl: this.url });
  }

  #log(entry: TokenRequestLogEntry): void {
    this.tokenRequests.push(entry);
  }
}

/** Entra echoes the caller's `client-request-id` as the correlation id. */
function correlationIdOf(req: IncomingMessage): string {
  const given = req.headers["client-request-id"];
  return typeof given === "string" && /^[0-9a-f-]{36}$/i.test(given) ? given : randomUUID();
}

/** `{ [name]: value }` when the value is present, else `{}` (so optional fields are absent rather than undefined). */
function optional<K extends string, V>(name: K, value: V | null | undefined): Partial<Record<K, V>> {
  return value === null || value === undefined ? {} : ({ [name]: value } as Partial<Record<K, V>>);
}

/**
 * The v2.0 discovery document. msal-node requires authorization_endpoint, token_endpoint, issuer and
 * jwks_uri, and accepts the issuer because it has the authority's scheme, host and port.
 */
function openIdConfiguration(base: string, cloudInstance: string): Record<string, unknown> {
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ["client_secret_post", "private_key_jwt", "client_secret_basic"],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ["query", "fragment", "form_post"],
    subject_types_supported: ["pairwise"],
    id_token_signing_alg_values_supported: ["RS256"],
    response_types_supported: ["code", "id_token", "code id_token", "id_token token"],
    scopes_supported: ["openid", "profile", "email", "offline_access"],
    issuer: `${base}/v2.0`,
    request_uri_parameter_supported: false,
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ["sub", "iss", "aud", "exp", "iat", "nonce", "name", "tid", "oid", "ver"],
    tenant_region_scope: "EU",
    cloud_instance_name: cloudInstance,
  };
}
