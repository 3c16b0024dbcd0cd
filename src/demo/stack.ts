// One call starts the whole local world: a throw-away PKI, the Entra ID emulator, mock Microsoft
// APIs for the four services, and the proxy configured against them. `demo` and the tests use it.
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { parseConfig } from "../config/load.ts";
import type { ProxyConfig } from "../config/types.ts";
import { ConfigError } from "../errors.ts";
import type { Logger } from "../observability/logger.ts";
import { type RunningProxy, type StartOptions, startProxy } from "../server/start.ts";
import { EntraEmulator } from "./emulator.ts";
import { createPki, type Pki } from "./pki.ts";
import { type MockUpstream, startMockMicrosoftApis } from "./upstreams.ts";

export const DEMO_TENANT = "11111111-2222-3333-4444-555555555555";
export const DEMO_APP = {
  clientId: "aaaaaaaa-0000-0000-0000-000000000001",
  objectId: "0f0f0f0f-0000-0000-0000-000000000001",
};
export const DEMO_PUBLIC_APP = { clientId: "aaaaaaaa-0000-0000-0000-000000000002" };
export const DEMO_USER = {
  username: "lcs-operator@contoso.example",
  objectId: "0f0f0f0f-0000-0000-0000-000000000002",
};

export interface DemoSecrets {
  clientSecret: string;
  userPassword: string;
  apiKey: string;
  apiKeySha256: string;
}

export interface DemoWorld {
  pki: Pki;
  emulator: EntraEmulator;
  mocks: Record<"powerplatform" | "powerapps" | "flow" | "lcs", MockUpstream>;
  secrets: DemoSecrets;
  /** Environment variables the demo routes.yaml refers to. */
  env: Record<string, string>;
  close(): Promise<void>;
}

let trustedCa: string | undefined;

/** Trusts the throw-away CA for this process's outgoing TLS (msal-node's fetch included). */
export function trustCaInProcess(caCert: string): void {
  if (trustedCa === caCert) return;
  setDefaultCACertificates([...getCACertificates("default"), caCert]);
  trustedCa = caCert;
}

export async function startDemoWorld(
  options: { tokenLifetimeSec?: number; pki?: Pki } = {},
): Promise<DemoWorld> {
  const pki = options.pki ?? (await createPki());
  trustCaInProcess(pki.caCert);
  const serverCert = await pki.issue({ commonName: "localhost" });
  const emulatorOptions: Parameters<typeof EntraEmulator.start>[0] = { tls: serverCert };
  if (options.tokenLifetimeSec !== undefined) emulatorOptions.tokenLifetimeSec = options.tokenLifetimeSec;
  const emulator = await EntraEmulator.start(emulatorOptions);
  const apiKey = randomBytes(24).toString("base64url");
  const secrets: DemoSecrets = {
    clientSecret: `demo~${randomBytes(18).toString("base64url")}`,
    userPassword: randomBytes(12).toString("base64url"),
    apiKey,
    apiKeySha256: createHash("sha256").update(apiKey).digest("hex"),
  };
  emulator.addApp({
    tenantId: DEMO_TENANT,
    clientId: DEMO_APP.clientId,
    objectId: DEMO_APP.objectId,
    displayName: "entra-auth-proxy demo app",
    clientSecrets: [secrets.clientSecret],
    roles: ["Environment.Read"],
  });
  emulator.addApp({
    tenantId: DEMO_TENANT,
    clientId: DEMO_PUBLIC_APP.clientId,
    displayName: "entra-auth-proxy demo LCS client",
    publicClient: true,
  });
  emulator.addUser({
    tenantId: DEMO_TENANT,
    username: DEMO_USER.username,
    objectId: DEMO_USER.objectId,
    password: secrets.userPassword,
  });
  const mocks = await startMockMicrosoftApis(emulator);
  const env = {
    DEMO_AUTHORITY_HOST: emulator.url,
    TENANT_ID: DEMO_TENANT,
    CLIENT_ID: DEMO_APP.clientId,
    CLIENT_SECRET: secrets.clientSecret,
    LCS_CLIENT_ID: DEMO_PUBLIC_APP.clientId,
    LCS_USERNAME: DEMO_USER.username,
    LCS_PASSWORD: secrets.userPassword,
    POWERPLATFORM_UPSTREAM: mocks.powerplatform.url,
    POWERAPPS_UPSTREAM: mocks.powerapps.url,
    FLOW_URL: `${mocks.flow.url}/powerautomate/automations/direct/workflows/${randomUUID().replaceAll("-", "")}/triggers/manual/paths/invoke?api-version=1`,
    LCS_UPSTREAM: mocks.lcs.url,
    DEMO_API_KEY_SHA256: secrets.apiKeySha256,
  };
  return {
    pki,
    emulator,
    mocks,
    secrets,
    env,
    async close() {
      await Promise.all(Object.values(mocks).map((m) => m.close()));
      await emulator.close();
    },
  };
}

/** The demo routes.yaml: one route per service, each protected by the demo API key. */
export const DEMO_ROUTES_YAML = `# entra-auth-proxy demo: every upstream is a local mock, Entra ID is the built-in emulator.
listen:
  host: 127.0.0.1
  port: 8080
  adminPort: 9090
warmup: true
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
  lcs-user:
    tenantId: \${TENANT_ID}
    clientId: \${LCS_CLIENT_ID}
    user: { username: \${LCS_USERNAME}, password: \${LCS_PASSWORD} }
routes:
  - prefix: /powerplatform
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /powerapps
    service: powerapps
    upstream: \${POWERAPPS_UPSTREAM}
    identity: platform-app
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /flows/order-created
    service: flow
    url: \${FLOW_URL}
    identity: platform-app
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /lcs
    service: lcs
    upstream: \${LCS_UPSTREAM}
    identity: lcs-user
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;

/**
 * The demo's on-behalf-of route: callers bring a user token issued for the demo app (as the web API),
 * and the upstream sees that user (design.md "On-behalf-of").
 */
export const DEMO_OBO_ROUTE_YAML = `  - prefix: /me/powerplatform
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    onBehalfOf: true
    access:
      jwt:
        issuer: https://sts.windows.net/\${TENANT_ID}/
        audience: api://\${CLIENT_ID}
        jwksUri: \${DEMO_AUTHORITY_HOST}/\${TENANT_ID}/discovery/v2.0/keys
        requiredScopes: [access_as_user]
`;

/** What `demo` runs: the four services by API key, plus the on-behalf-of route. */
export const DEMO_WITH_OBO_YAML = DEMO_ROUTES_YAML + DEMO_OBO_ROUTE_YAML;

/** The token a web app holds for the demo user after sign-in, issued for the demo app's API. */
export function demoUserToken(world: DemoWorld, lifetimeSec = 8 * 3600): Promise<string> {
  return world.emulator.issueUserToken(DEMO_TENANT, DEMO_USER.username, {
    audience: `api://${DEMO_APP.clientId}`,
    lifetimeSec,
  });
}

/** Parses a routes.yaml text against the world's environment; throws ConfigError on any error. */
export function demoConfig(
  world: DemoWorld,
  yaml = DEMO_ROUTES_YAML,
  env: NodeJS.ProcessEnv = {},
): ProxyConfig {
  return configFromYaml(yaml, { ...world.env, ...env });
}

/** A validated config from YAML text, or a ConfigError listing every error. */
export function configFromYaml(yaml: string, env: NodeJS.ProcessEnv, file = "demo-routes.yaml"): ProxyConfig {
  const { config, issues } = parseConfig(yaml, file, env);
  const errors = issues.filter((i) => i.severity === "error");
  if (!config || errors.length > 0) throw new ConfigError(errors);
  return config;
}

export async function startDemoProxy(
  world: DemoWorld,
  logger: Logger,
  options: Pick<StartOptions, "ports" | "now" | "backoff" | "rejectionRenewalIntervalMs"> & {
    yaml?: string;
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<RunningProxy> {
  const config = demoConfig(world, options.yaml, options.env);
  const start: StartOptions = { logger, env: { ...world.env, ...options.env } };
  if (options.ports) start.ports = options.ports;
  if (options.now) start.now = options.now;
  if (options.backoff) start.backoff = options.backoff;
  if (options.rejectionRenewalIntervalMs !== undefined) {
    start.rejectionRenewalIntervalMs = options.rejectionRenewalIntervalMs;
  }
  return startProxy(config, start);
}
