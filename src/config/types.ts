// The validated, resolved configuration every other module receives. Produced once by
// config/load.ts from routes.yaml; nothing downstream re-validates it.

export type ServiceName = "powerplatform" | "powerapps" | "flow" | "lcs";
export type CloudName = "public" | "usgov" | "usgovhigh" | "dod" | "china";

export interface ListenConfig {
  host: string; // default "0.0.0.0"
  port: number; // default 8080
  adminPort: number; // default 9090
  publicUrl?: string;
  /**
   * Without publicUrl: the Host values (lower-case host[:port]) believed when rewriting links and
   * Location headers to the proxy — never any Host the caller sends. Default [].
   */
  publicHosts: string[];
  trustProxy: string[]; // CIDRs (or single addresses) of peers whose X-Forwarded-* are believed
  tls?: { certFile: string; keyFile: string };
  drainTimeoutMs: number; // default 20000
}

/** The forward-auth listener: gateways ask it whether a request may pass and get the token to attach. */
export interface ForwardAuthConfig {
  port: number; // default 8081
  /** CIDRs (or single addresses) of the gateways that may ask; others get 403. Default loopback. */
  trustedPeers: string[];
  /** Envoy ext_authz HTTP: the prefix the gateway puts before the original path (no trailing "/"). */
  pathPrefix?: string;
}

export interface CloudConfig {
  /** "custom" when routes.yaml gave { authorityHost }. */
  name: CloudName | "custom";
  /** e.g. "https://login.microsoftonline.com" — no trailing slash. */
  authorityHost: string;
}

// Each credential kind carries exactly what validation proved for it: one `kind` to switch on, and
// the fields that kind requires typed as present (fields of the other variant typed as absent).

export interface ClientSecretCredential {
  kind: "clientSecret";
  clientSecret: string;
}

export interface ClientSecretFileCredential {
  kind: "clientSecretFile";
  clientSecretFile: string;
}

/** PEM certificate and key, or one PFX file — never both. */
export type CertificateCredential =
  | { kind: "certificate"; certFile: string; keyFile: string; passphrase?: string; pfxFile?: undefined }
  | { kind: "certificate"; pfxFile: string; passphrase?: string; certFile?: undefined; keyFile?: undefined };

export interface WorkloadIdentityCredential {
  kind: "workloadIdentity";
  /** From workloadIdentity.tokenFile, else AZURE_FEDERATED_TOKEN_FILE (read by the config loader). */
  tokenFile: string;
}

export interface ManagedIdentityCredential {
  kind: "managedIdentity";
  /** User-assigned identity; absent for the system-assigned one. */
  clientId?: string;
}

/** ROPC: the password written in routes.yaml, or a file holding it — never both. */
export type UserCredential =
  | { kind: "user"; username: string; password: string; passwordFile?: undefined }
  | { kind: "user"; username: string; passwordFile: string; password?: undefined };

export type CredentialConfig =
  | ClientSecretCredential
  | ClientSecretFileCredential
  | CertificateCredential
  | WorkloadIdentityCredential
  | ManagedIdentityCredential
  | UserCredential;

export type CredentialKind = CredentialConfig["kind"];

/**
 * An identity signs in to its tenant as its app registration; workload identity's ids may come from
 * AZURE_TENANT_ID / AZURE_CLIENT_ID, already filled in here by the config loader.
 */
export interface AppRegistrationIdentity {
  name: string;
  limits?: IdentityLimits;
  tenantId: string;
  clientId: string;
  credential: Exclude<CredentialConfig, ManagedIdentityCredential>;
}

/** A managed identity belongs to its Azure resource's tenant and names no app registration. */
export interface ManagedIdentityConfig {
  name: string;
  limits?: IdentityLimits;
  tenantId?: undefined;
  clientId?: undefined;
  credential: ManagedIdentityCredential;
}

export type IdentityConfig = AppRegistrationIdentity | ManagedIdentityConfig;

export interface ApiKeyConfig {
  name: string;
  /** 64 lowercase hex digits (the "sha256:" prefix, if written, is stripped). */
  sha256: string;
  /** Key is refused from this instant on (end of the given day, UTC). */
  expires?: Date;
  /** The consumer this key belongs to (keys listed under `consumers:`). */
  consumer?: string;
}

/** A token bucket: `burst` requests at once, refilled at `requests` per `perMs`. */
export interface RateLimitConfig {
  requests: number;
  perMs: number;
  /** Default: `requests`. */
  burst: number;
}

/** A named caller (design.md "Consumers and Microsoft's service limits"). */
export interface ConsumerConfig {
  name: string;
  apiKeys: ApiKeyConfig[];
  rateLimit?: RateLimitConfig;
}

/** Limits of an identity across every route that uses it (Microsoft's service protection limits). */
export interface IdentityLimits {
  /** Upstream requests in flight. */
  concurrent?: number;
  /** Upstream requests started per window (`requests` per `perMs`, sliding). */
  window?: { requests: number; perMs: number };
  /** How long a request may wait (FIFO) for room before it gets 429 rate_limited. Default 30000. */
  maxWaitMs: number;
}

/** Replays of replayable requests the upstream answered with 429. */
export interface RetryThrottledConfig {
  maxWaitMs: number;
  attempts: number;
}

export interface JwtAccessConfig {
  issuer: string;
  audience: string;
  jwksUri: string;
  requiredRoles?: string[];
  requiredScopes?: string[];
  allowedObjectIds?: string[];
}

export interface AccessConfig {
  anonymous: boolean;
  /** The route's own keys followed by the keys of its consumers (each with `consumer`). */
  apiKeys?: ApiKeyConfig[];
  /** Names of the consumers the route admits. */
  consumers?: string[];
  cidrs?: string[];
  jwt?: JwtAccessConfig;
}

export interface RouteConfig {
  /** Normalised: leading "/", no trailing "/" (except the root route "/"). */
  prefix: string;
  service?: ServiceName;
  identity: string;
  /** Absolute base URL the rest of the path is joined to; for flow routes, the trigger URL without query. */
  upstream: string;
  /** Token scope, e.g. "https://api.powerplatform.com/.default". */
  scope: string;
  /** flow routes: the trigger URL's query parameters, which win over the caller's. */
  pinnedQuery?: Array<[string, string]>;
  /** Upper-case methods allowed. */
  methods: string[];
  paths?: string[];
  region?: string;
  timeoutMs: number; // default 30000
  maxBodyBytes: number; // default 104857600
  maxConcurrent: number; // default 256
  rewriteLinks: boolean;
  /** Whether the forward-auth listener answers for this route. */
  forwardAuth: boolean;
  access: AccessConfig;
  /** Tokens are exchanged on behalf of the caller (its verified access.jwt token); set only when true. */
  onBehalfOf?: true;
  /** Per-caller default for callers without a rate limit of their own. */
  rateLimit?: RateLimitConfig;
  /** The rate limits of the consumers in access.consumers that have one, by consumer name. */
  consumerRateLimits?: Record<string, RateLimitConfig>;
  retryThrottled?: RetryThrottledConfig;
}

/** design.md "Corporate egress proxy": present only when a proxy is configured. */
export interface EgressConfig {
  /** http(s)://[user:password@]host:port — a secret when it carries a password; show displayProxy(). */
  proxy: string;
  /** NO_PROXY entries (curl's conventions): destinations that bypass the proxy. */
  noProxy: string[];
}

export interface ProxyConfig {
  /** Absolute path of the routes.yaml this came from. */
  file: string;
  listen: ListenConfig;
  /** Absent: no forward-auth listener. */
  forwardAuth?: ForwardAuthConfig;
  warmup: boolean;
  /** What /readyz answers for: the process alone (default), or also every identity's token. */
  health: { readiness: "process" | "tokens" };
  cloud: CloudConfig;
  identities: Record<string, IdentityConfig>;
  consumers: Record<string, ConsumerConfig>;
  routes: RouteConfig[];
  egress?: EgressConfig;
  /** Non-fatal findings (anonymous routes, management-app note …) that `check` prints. */
  warnings: import("../errors.ts").ConfigIssue[];
}
