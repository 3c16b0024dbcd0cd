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

export interface CloudConfig {
  /** "custom" when routes.yaml gave { authorityHost }. */
  name: CloudName | "custom";
  /** e.g. "https://login.microsoftonline.com" — no trailing slash. */
  authorityHost: string;
}

export type CredentialConfig =
  | { kind: "clientSecret"; clientSecret: string }
  | { kind: "clientSecretFile"; clientSecretFile: string }
  | { kind: "certificate"; certFile?: string; keyFile?: string; passphrase?: string; pfxFile?: string }
  | { kind: "workloadIdentity"; tokenFile?: string }
  | { kind: "managedIdentity"; clientId?: string }
  | { kind: "user"; username: string; password?: string; passwordFile?: string };

export type CredentialKind = CredentialConfig["kind"];

export interface IdentityConfig {
  name: string;
  /** Absent only for managedIdentity. */
  tenantId?: string;
  /** Absent only for managedIdentity (system-assigned). */
  clientId?: string;
  credential: CredentialConfig;
}

export interface ApiKeyConfig {
  name: string;
  /** 64 lowercase hex digits (the "sha256:" prefix, if written, is stripped). */
  sha256: string;
  /** Key is refused from this instant on (end of the given day, UTC). */
  expires?: Date;
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
  apiKeys?: ApiKeyConfig[];
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
  access: AccessConfig;
}

export interface ProxyConfig {
  /** Absolute path of the routes.yaml this came from. */
  file: string;
  listen: ListenConfig;
  warmup: boolean;
  cloud: CloudConfig;
  identities: Record<string, IdentityConfig>;
  routes: RouteConfig[];
  /** Non-fatal findings (anonymous routes, management-app note …) that `check` prints. */
  warnings: import("../errors.ts").ConfigIssue[];
}
