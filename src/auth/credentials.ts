// The only module that imports @azure/msal-node. Builds, per (identity, scope), a TokenSource whose
// acquire() asks Entra ID for a fresh token. Caching, single-flight and back-off live in tokens.ts:
// that is why every call here skips msal's own cache.
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import {
  type AccountInfo,
  type AuthenticationResult,
  ConfidentialClientApplication,
  type Configuration,
  type INetworkModule,
  LogLevel,
  ManagedIdentityApplication,
  type NetworkRequestOptions,
  type NetworkResponse,
  PublicClientApplication,
} from "@azure/msal-node";
import type { CloudConfig, CredentialKind, IdentityConfig } from "../config/types.ts";
import { EgressAgents } from "../egress/agents.ts";
import type { ProxyError } from "../errors.ts";
import { type AcquisitionFailure, describeAcquisitionFailure } from "./aadsts.ts";
import { readPfx } from "./pfx.ts";

export interface AcquiredToken {
  accessToken: string;
  /** Epoch ms: expires_in counted from before the request was sent (the cache prefers the token's `exp`). */
  expiresOn: number;
  /** Epoch ms: Entra's refresh_in, counted the same way, when it sent one. */
  refreshOn?: number;
}

export interface TokenSource {
  readonly kind: CredentialKind;
  /** Requests a new token from the identity provider (never from a cache). Rejects with TokenAcquisitionError. */
  acquire(): Promise<AcquiredToken>;
}

export class TokenAcquisitionError extends Error {
  readonly failure: AcquisitionFailure;
  /** Set when the failure is the caller's (on-behalf-of: its token refused, consent, step-up): what it gets. */
  readonly callerError: ProxyError | undefined;
  constructor(failure: AcquisitionFailure, callerError?: ProxyError) {
    super(failure.message);
    this.name = "TokenAcquisitionError";
    this.failure = failure;
    this.callerError = callerError;
  }
}

/** A credential whose configuration cannot work (missing ids, unreadable or unparsable files). */
export class CredentialConfigError extends Error {
  override name = "CredentialConfigError";
}

/**
 * Reads what an identity's credential needs from disk (secret, certificate, PFX, federated token,
 * password files) so a broken mount or a wrong passphrase is reported at start-up, by `check` and on
 * reload — not at the first request. Returns problems; reads nothing into long-lived memory.
 */
export async function preflightCredential(
  identity: IdentityConfig,
  env: NodeJS.ProcessEnv,
): Promise<string[]> {
  const c = identity.credential;
  const problems: string[] = [];
  const where = `identity "${identity.name}"`;
  const readable = async (file: string, what: string) => {
    try {
      if ((await readFile(file, "utf8")).trim() === "") problems.push(`${where}: ${what} ${file} is empty`);
    } catch (err) {
      problems.push(
        `${where}: cannot read ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  };
  switch (c.kind) {
    case "clientSecretFile":
      await readable(c.clientSecretFile, "clientSecretFile");
      break;
    case "certificate":
      try {
        await loadCertificateCredential(c);
      } catch (err) {
        problems.push(`${where}: certificate: ${(err as Error).message}`);
      }
      break;
    case "workloadIdentity": {
      const tokenFile = c.tokenFile ?? env.AZURE_FEDERATED_TOKEN_FILE;
      if (!tokenFile)
        problems.push(`${where}: workloadIdentity needs tokenFile or AZURE_FEDERATED_TOKEN_FILE`);
      else await readable(tokenFile, "federated token file");
      if (!(identity.clientId ?? env.AZURE_CLIENT_ID))
        problems.push(`${where}: clientId or AZURE_CLIENT_ID is required`);
      if (!(identity.tenantId ?? env.AZURE_TENANT_ID))
        problems.push(`${where}: tenantId or AZURE_TENANT_ID is required`);
      break;
    }
    case "user":
      if (c.passwordFile !== undefined) await readable(c.passwordFile, "passwordFile");
      break;
    default:
      break;
  }
  return problems;
}

export interface TokenSourceOptions {
  /** Per HTTP request to the identity provider. */
  requestTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** How requests to the identity provider leave: through the egress proxy or direct (default). */
  egress?: EgressAgents;
}

/** Direct connections over Node's global keep-alive agents. */
const DIRECT = new EgressAgents(undefined);

export function createTokenSource(
  identity: IdentityConfig,
  cloud: CloudConfig,
  scope: string,
  options: TokenSourceOptions = {},
): TokenSource {
  switch (identity.credential.kind) {
    case "user":
      return new UserPasswordSource(identity, cloud, scope, options);
    case "managedIdentity":
      return new ManagedIdentitySource(identity, cloud, scope, options);
    default:
      return new ConfidentialClientSource(identity, cloud, scope, options);
  }
}

/** The lifetimes of the last token response, and when its request was sent (epoch ms). */
interface TokenAnswer {
  sentAt: number;
  expiresInSec: number;
  refreshInSec?: number;
}

/**
 * msal-node network module: Node's http client over our agents (so token requests follow the egress
 * proxy), with a timeout (msal sets none); it remembers the last Retry-After so our back-off can
 * honour it, and a failure at the egress proxy, which msal-node would reduce to "network_error".
 */
class TimedHttpClient implements INetworkModule {
  /** msal-node counts expires_in from its request time rounded to the nearest second; we keep the exact one. */
  lastTokenAnswer: TokenAnswer | undefined;
  lastRetryAfterMs: number | undefined;
  lastStatus: number | undefined;
  /** Entra's error text from the last failed answer (discovery errors lose it inside msal-node). */
  lastErrorDescription: string | undefined;
  /** Why the last request failed at the egress proxy (names the proxy, never its password). */
  lastEgressFailure: string | undefined;
  private readonly timeoutMs: number;
  private readonly agents: EgressAgents;

  constructor(timeoutMs: number, agents: EgressAgents) {
    this.timeoutMs = timeoutMs;
    this.agents = agents;
  }

  forgetTokenAnswer(): void {
    this.lastTokenAnswer = undefined;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>(url, "GET", options);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.send<T>(url, "POST", options);
  }

  private async send<T>(
    url: string,
    method: string,
    options?: NetworkRequestOptions,
  ): Promise<NetworkResponse<T>> {
    this.lastRetryAfterMs = undefined;
    this.lastStatus = undefined;
    this.lastErrorDescription = undefined;
    this.lastEgressFailure = undefined;
    const target = new URL(url);
    const sentAt = Date.now();
    let response: { status: number; headers: Record<string, string>; text: string };
    try {
      response = await this.exchange(target, method, options);
    } catch (err) {
      this.lastEgressFailure = this.agents.proxyFailure(target, err as NodeJS.ErrnoException);
      throw err;
    }
    const { status, headers } = response;
    this.lastStatus = status;
    this.lastRetryAfterMs = parseRetryAfter(headers["retry-after"]);
    const body = JSON.parse(response.text) as T;
    const answer = status >= 200 && status < 300 ? tokenAnswer(body, sentAt) : undefined;
    if (answer) this.lastTokenAnswer = answer;
    if (status >= 400) {
      const description = (body as { error_description?: unknown } | null)?.error_description;
      if (typeof description === "string") this.lastErrorDescription = description;
    }
    return { headers, body, status };
  }

  /** One request, its whole answer read as text. */
  private exchange(
    target: URL,
    method: string,
    options: NetworkRequestOptions | undefined,
  ): Promise<{ status: number; headers: Record<string, string>; text: string }> {
    const body = method === "POST" ? (options?.body ?? "") : undefined;
    const headers: http.OutgoingHttpHeaders = { ...options?.headers };
    if (body !== undefined) headers["content-length"] = Buffer.byteLength(body);
    const client = target.protocol === "https:" ? https : http;
    return new Promise((resolve, reject) => {
      const request = client.request(
        target,
        { method, headers, agent: this.agents.agentFor(target), signal: AbortSignal.timeout(this.timeoutMs) },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("error", reject);
          response.on("end", () => {
            const headers: Record<string, string> = {};
            for (const [key, value] of Object.entries(response.headers)) {
              if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(", ") : value;
            }
            resolve({
              status: response.statusCode ?? 0,
              headers,
              text: Buffer.concat(chunks).toString("utf8"),
            });
          });
        },
      );
      request.on("error", reject);
      request.end(body);
    });
  }
}

/** expires_in / refresh_in of a token response (numbers, or numeric strings from managed identity). */
function tokenAnswer(body: unknown, sentAt: number): TokenAnswer | undefined {
  if (typeof body !== "object" || body === null || !("access_token" in body)) return undefined;
  const seconds = (v: unknown) => {
    const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
    return typeof n === "number" && Number.isFinite(n) && n > 0 ? n : undefined;
  };
  const expiresInSec = seconds((body as { expires_in?: unknown }).expires_in);
  if (expiresInSec === undefined) return undefined;
  const refreshInSec = seconds((body as { refresh_in?: unknown }).refresh_in);
  return refreshInSec === undefined ? { sentAt, expiresInSec } : { sentAt, expiresInSec, refreshInSec };
}

export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** What every msal-backed source shares: the network client and turning msal errors into ours. */
abstract class MsalSource implements TokenSource {
  readonly kind: CredentialKind;
  protected readonly identity: IdentityConfig;
  protected readonly cloud: CloudConfig;
  protected readonly scope: string;
  protected readonly network: TimedHttpClient;
  protected readonly env: NodeJS.ProcessEnv;

  constructor(identity: IdentityConfig, cloud: CloudConfig, scope: string, options: TokenSourceOptions) {
    this.kind = identity.credential.kind;
    this.identity = identity;
    this.cloud = cloud;
    this.scope = scope;
    // The managed-identity endpoint is local to the host (IMDS, App Service): never through the proxy.
    const agents = this.kind === "managedIdentity" ? DIRECT : (options.egress ?? DIRECT);
    this.network = new TimedHttpClient(options.requestTimeoutMs ?? 10_000, agents);
    this.env = options.env ?? process.env;
  }

  protected abstract request(): Promise<AuthenticationResult | null>;
  /** Drop the msal application so the next attempt starts clean. */
  protected abstract reset(): void;

  async acquire(): Promise<AcquiredToken> {
    let result: AuthenticationResult | null;
    this.network.forgetTokenAnswer();
    try {
      result = await this.request();
    } catch (err) {
      if (this.network.lastStatus === 429 || (this.network.lastStatus ?? 0) >= 500) {
        // msal-node would refuse identical requests for 60 s (or Retry-After) after this answer.
        // Our back-off in tokens.ts owns retry timing, so start the next attempt with a fresh app.
        this.reset();
      }
      let failure = describeAcquisitionFailure(err);
      if (this.network.lastEgressFailure) {
        failure = {
          error: "network",
          hint: "The corporate egress proxy refused or could not be reached: check egress.proxy (HTTPS_PROXY), its credentials and its allow list (docs/egress-proxy.md).",
          message: this.network.lastEgressFailure,
        };
      } else if (!failure.aadsts && this.network.lastErrorDescription) {
        // e.g. an unknown tenant fails OIDC discovery with AADSTS90002, which msal-node reports
        // only as endpoints_resolution_error.
        failure = describeAcquisitionFailure({ errorMessage: this.network.lastErrorDescription });
      }
      if (this.network.lastRetryAfterMs !== undefined) failure.retryAfterMs = this.network.lastRetryAfterMs;
      if (this.network.lastStatus !== undefined && failure.status === undefined) {
        failure.status = this.network.lastStatus;
      }
      throw new TokenAcquisitionError(failure);
    }
    if (!result?.accessToken || !result.expiresOn) {
      throw new TokenAcquisitionError(
        describeAcquisitionFailure(new Error("identity provider returned no token")),
      );
    }
    // Without an expires_in (an endpoint that sends only expires_on), msal-node's own times.
    const answer = this.network.lastTokenAnswer;
    const token: AcquiredToken = {
      accessToken: result.accessToken,
      expiresOn: answer ? answer.sentAt + answer.expiresInSec * 1000 : result.expiresOn.getTime(),
    };
    // msal-node derives a refresh time for long-lived managed-identity tokens sent without refresh_in.
    const refreshOn =
      answer?.refreshInSec !== undefined
        ? answer.sentAt + answer.refreshInSec * 1000
        : result.refreshOn?.getTime();
    if (refreshOn !== undefined) token.refreshOn = refreshOn;
    return token;
  }

  protected authOptions(): Configuration["auth"] {
    const tenantId = this.identity.tenantId ?? this.env.AZURE_TENANT_ID;
    const clientId = this.identity.clientId ?? this.env.AZURE_CLIENT_ID;
    if (!tenantId || !clientId) {
      throw new CredentialConfigError(`identity "${this.identity.name}": tenantId and clientId are required`);
    }
    // AKS workload identity injects AZURE_AUTHORITY_HOST for the cluster's cloud; honour it unless
    // routes.yaml chose a non-default cloud itself.
    const injected =
      this.kind === "workloadIdentity" && this.cloud.name === "public"
        ? this.env.AZURE_AUTHORITY_HOST
        : undefined;
    const authorityHost = new URL(injected ?? this.cloud.authorityHost);
    const auth: Configuration["auth"] = { clientId, authority: `${authorityHost.origin}/${tenantId}` };
    if (this.cloud.name === "custom") auth.knownAuthorities = [authorityHost.host];
    return auth;
  }

  protected systemOptions(): Configuration["system"] {
    return {
      networkClient: this.network,
      disableInternalRetries: true,
      loggerOptions: { piiLoggingEnabled: false, logLevel: LogLevel.Error, loggerCallback: () => {} },
    };
  }
}

/**
 * Delegated user token by ROPC (the only kind LCS accepts). Later tokens come from the cached
 * refresh token; when Entra rejects it, the password is used again.
 */
class UserPasswordSource extends MsalSource {
  private app: PublicClientApplication | undefined;
  private account: AccountInfo | undefined;

  protected reset(): void {
    this.app = undefined;
    this.account = undefined;
  }

  protected async request(): Promise<AuthenticationResult | null> {
    const credential = this.identity.credential;
    if (credential.kind !== "user") throw new CredentialConfigError("not a user identity");
    this.app ??= new PublicClientApplication({ auth: this.authOptions(), system: this.systemOptions() });
    if (this.account) {
      try {
        return await this.app.acquireTokenSilent({
          account: this.account,
          scopes: [this.scope],
          forceRefresh: true,
        });
      } catch (err) {
        const status = this.network.lastStatus;
        if (status === 429 || (status ?? 0) >= 500 || status === undefined) throw err; // IdP trouble, not the grant
        this.account = undefined; // refresh token rejected: sign in with the password again
      }
    }
    const password =
      credential.passwordFile !== undefined
        ? (await readFile(credential.passwordFile, "utf8")).trim()
        : (credential.password ?? "");
    const result = await this.app.acquireTokenByUsernamePassword({
      scopes: [this.scope],
      username: credential.username,
      password,
    });
    if (result?.account) this.account = result.account;
    return result;
  }
}

/**
 * Azure managed identity (system- or user-assigned). msal-node finds the endpoint itself
 * (IMDS, App Service's IDENTITY_ENDPOINT/IDENTITY_HEADER, Azure Arc …).
 */
class ManagedIdentitySource extends MsalSource {
  private app: ManagedIdentityApplication | undefined;

  protected reset(): void {
    this.app = undefined;
  }

  protected request(): Promise<AuthenticationResult> {
    const credential = this.identity.credential;
    const clientId = credential.kind === "managedIdentity" ? credential.clientId : undefined;
    this.app ??= new ManagedIdentityApplication({
      ...(clientId ? { managedIdentityIdParams: { userAssignedClientId: clientId } } : {}),
      system: this.systemOptions(),
    });
    // forceRefresh: msal-node shares one managed-identity cache per process; ours is in tokens.ts.
    return this.app.acquireToken({ resource: this.scope, forceRefresh: true });
  }
}

class ConfidentialClientSource extends MsalSource {
  private app: ConfidentialClientApplication | undefined;
  /** The secret the current app was built with (clientSecretFile: rebuilt when the file changes). */
  private appSecret: string | undefined;

  protected reset(): void {
    this.app = undefined;
  }

  protected async request(): Promise<AuthenticationResult | null> {
    const app = await this.currentApp();
    return app.acquireTokenByClientCredential({ scopes: [this.scope], skipCache: true });
  }

  protected async currentApp(): Promise<ConfidentialClientApplication> {
    const credential = this.identity.credential;
    if (credential.kind === "clientSecretFile") {
      // Kubernetes rotates mounted secrets in place: re-read on every acquisition.
      const secret = (await readFile(credential.clientSecretFile, "utf8")).trim();
      if (secret !== this.appSecret) {
        this.app = undefined;
        this.appSecret = secret;
      }
    }
    this.app ??= new ConfidentialClientApplication(await this.msalConfig());
    return this.app;
  }

  private async msalConfig(): Promise<Configuration> {
    const { identity } = this;
    const credential = identity.credential;
    const auth = this.authOptions();
    switch (credential.kind) {
      case "clientSecret":
        auth.clientSecret = credential.clientSecret;
        break;
      case "clientSecretFile":
        auth.clientSecret = this.appSecret!;
        break;
      case "certificate":
        auth.clientCertificate = await loadCertificateCredential(credential);
        break;
      case "workloadIdentity": {
        const tokenFile = credential.tokenFile ?? this.env.AZURE_FEDERATED_TOKEN_FILE;
        if (!tokenFile) {
          throw new CredentialConfigError(
            `identity "${identity.name}": workloadIdentity needs tokenFile or AZURE_FEDERATED_TOKEN_FILE`,
          );
        }
        // The projected service-account token rotates: read it for every assertion.
        auth.clientAssertion = async () => (await readFile(tokenFile, "utf8")).trim();
        break;
      }
      default:
        throw new CredentialConfigError(`credential kind "${credential.kind}" is not supported here`);
    }
    return { auth, system: this.systemOptions() };
  }
}

/** On-behalf-of: the web API's confidential client exchanges a caller's verified token for one of `scope`. */
export interface OnBehalfOfExchange {
  /**
   * One request to Entra ID (never msal's cache). Rejects with TokenAcquisitionError whose failure
   * carries Entra's OAuth error, sub-error and claims challenge.
   */
  exchange(assertion: string): Promise<AcquiredToken>;
}

export function createOnBehalfOfExchange(
  identity: IdentityConfig,
  cloud: CloudConfig,
  scope: string,
  options: TokenSourceOptions = {},
): OnBehalfOfExchange {
  return new OnBehalfOfClient(identity, cloud, scope, options);
}

class OnBehalfOfClient extends ConfidentialClientSource implements OnBehalfOfExchange {
  async exchange(assertion: string): Promise<AcquiredToken> {
    const app = await this.currentApp();
    let result: AuthenticationResult | null;
    try {
      result = await app.acquireTokenOnBehalfOf({
        oboAssertion: assertion,
        scopes: [this.scope],
        skipCache: true,
      });
    } catch (err) {
      const e = err as { errorCode?: string; subError?: string; claims?: string; status?: number };
      // msal-node would refuse every user's exchange for a while after a 429 or 5xx (its throttling
      // ignores the assertion); our back-off owns retry timing, so the next one starts with a fresh app.
      if (e.status === 429 || (e.status ?? 0) >= 500) this.reset();
      const failure = describeAcquisitionFailure(err);
      if (e.errorCode) failure.oauthError = e.errorCode;
      if (e.subError) failure.subError = e.subError;
      if (e.claims) failure.claims = e.claims;
      throw new TokenAcquisitionError(failure);
    }
    if (!result?.accessToken || !result.expiresOn) {
      throw new TokenAcquisitionError(
        describeAcquisitionFailure(new Error("identity provider returned no token")),
      );
    }
    // msal-node keeps each answer in the app's in-memory cache, one account per user and unbounded;
    // the bounded cache is obo-tokens.ts.
    if (result.account) await app.getTokenCache().removeAccount(result.account);
    const token: AcquiredToken = { accessToken: result.accessToken, expiresOn: result.expiresOn.getTime() };
    if (result.refreshOn) token.refreshOn = result.refreshOn.getTime();
    return token;
  }
}

/** PEM certificate + key (optionally encrypted), or a PFX: thumbprint computed from the cert, x5c sent. */
async function loadCertificateCredential(credential: {
  certFile?: string;
  keyFile?: string;
  passphrase?: string;
  pfxFile?: string;
}): Promise<{ thumbprintSha256: string; privateKey: string; x5c: string }> {
  let certPem: string;
  let privateKey: string;
  if (credential.pfxFile) {
    ({ certPem, keyPem: privateKey } = await readPfx(
      await readFile(credential.pfxFile),
      credential.passphrase,
    ));
  } else if (credential.certFile && credential.keyFile) {
    certPem = await readFile(credential.certFile, "utf8");
    const keyPem = await readFile(credential.keyFile, "utf8");
    const keyOptions =
      credential.passphrase === undefined
        ? { key: keyPem }
        : { key: keyPem, passphrase: credential.passphrase };
    privateKey = createPrivateKey(keyOptions).export({ format: "pem", type: "pkcs8" }).toString();
  } else {
    throw new CredentialConfigError("certificate needs certFile + keyFile, or pfxFile");
  }
  // The first certificate is the leaf (readPfx orders the chain that way); x5c carries the chain.
  const leaf = new X509Certificate(certPem);
  return {
    thumbprintSha256: leaf.fingerprint256.replaceAll(":", "").toLowerCase(),
    privateKey,
    x5c: certPem,
  };
}
