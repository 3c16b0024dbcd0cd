// Each section of routes.yaml parsed once by its zod schema, then everything one key cannot tell on
// its own: identity references, prefix normalisation and uniqueness, service presets in the chosen
// cloud, which identities a service accepts, workload-identity settings from the environment — plus
// the warnings `check` prints. Each route and identity is checked on its own, so one broken entry
// does not hide the others' problems.
import { dirname, resolve as resolvePath } from "node:path";
import type * as z from "zod";
import type { ConfigIssue } from "../errors.ts";
import { egressSchema, resolveEgress } from "./egress.ts";
import { egressEnvironment, workloadIdentityEnvironment } from "./environment.ts";
import { defaultMethods, FLOW_SCOPE, presetsApplyIn, resolveCloud, resolveRouteTarget } from "./presets.ts";
import {
  type ConsumerInput,
  CREDENTIAL_KEYS,
  cloudSchema,
  consumerSchema,
  forwardAuthSchema,
  type IdentityInput,
  identitySchema,
  isLoopbackHost,
  listenSchema,
  type RouteInput,
  type RouteTargetInput,
  routeSettingsSchema,
  routeTargetSchema,
  topLevelSchema,
  withoutTargetKeys,
} from "./schema.ts";
import { formatPath, type PathSegment, type SourceLocator } from "./source.ts";
import type {
  AccessConfig,
  ApiKeyConfig,
  AppRegistrationIdentity,
  CloudConfig,
  ConsumerConfig,
  ForwardAuthConfig,
  IdentityConfig,
  IdentityLimits,
  ListenConfig,
  ProxyConfig,
  RouteConfig,
} from "./types.ts";
import { operatorMessage, zodIssuesToConfigIssues } from "./zod-issues.ts";

export interface ResolveContext {
  /** Absolute path of routes.yaml; relative file paths in it are taken from its directory. */
  file: string;
  env: NodeJS.ProcessEnv;
  locator: SourceLocator;
  /** Epoch ms, for "this API key has expired" warnings. */
  now: number;
}

type Reporter = (
  severity: ConfigIssue["severity"],
  path: readonly PathSegment[],
  message: string,
  options?: { key?: boolean },
) => void;

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Parses each section of the raw (already ${VAR}-substituted) document once — its shape errors
 * mapped to file:line:column — cross-checks them, and builds the ProxyConfig when nothing is an error.
 */
export function resolveConfig(
  raw: unknown,
  ctx: ResolveContext,
): { config?: ProxyConfig; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const report: Reporter = (severity, path, message, options = {}) => {
    issues.push({ location: ctx.locator.locate(path, options), path: formatPath(path), message, severity });
  };
  const parse = <T extends z.ZodType>(
    schema: T,
    value: unknown,
    base: PathSegment[],
  ): z.output<T> | undefined => {
    const result = schema.safeParse(value, { error: operatorMessage });
    if (result.success) return result.data;
    for (const issue of zodIssuesToConfigIssues(result.error.issues, raw, ctx.locator, base))
      issues.push(issue);
    return undefined;
  };
  const dir = dirname(ctx.file);
  const file = (p: string) => resolvePath(dir, p);

  const top = parse(topLevelSchema, raw, []);
  const doc = isRecord(raw) ? raw : {};
  const listen = resolveListen(parse(listenSchema, doc.listen ?? {}, ["listen"]), report, file);
  const forwardAuth =
    doc.forwardAuth === undefined
      ? undefined
      : checkForwardAuth(parse(forwardAuthSchema, doc.forwardAuth ?? {}, ["forwardAuth"]), listen, report);
  const cloudInput = parse(cloudSchema, doc.cloud === undefined ? "public" : doc.cloud, ["cloud"]);
  const cloud: CloudConfig | undefined = cloudInput === undefined ? undefined : resolveCloud(cloudInput);
  const egressInput = parse(egressSchema, doc.egress ?? {}, ["egress"]);
  const egress = egressInput && resolveEgress(egressInput, egressEnvironment(ctx.env));
  if (egress?.problem) report("error", ["egress", egress.problem.key], egress.problem.message);

  // Identities: names, then each one's credential.
  const rawIdentities = isRecord(doc.identities) ? doc.identities : {};
  const identityNames = Object.keys(rawIdentities);
  const identities: Record<string, IdentityConfig> = {};
  for (const name of identityNames) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
      report(
        "error",
        ["identities", name],
        "an identity name may contain only letters, digits and . _ - (it is a metric label)",
        { key: true },
      );
    }
    if (!isRecord(rawIdentities[name])) continue; // reported by the top level
    const input = parse(identitySchema, rawIdentities[name], ["identities", name]);
    if (input === undefined) continue;
    const identity = buildIdentity(name, input, ctx.env, file, report);
    if (identity) identities[name] = identity;
  }

  // Consumers: named callers with their keys and rate limits.
  const rawConsumers = isRecord(doc.consumers) ? doc.consumers : {};
  const consumers: Record<string, ConsumerConfig> = {};
  const consumerOfHash = new Map<string, string>();
  for (const name of Object.keys(rawConsumers)) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(name)) {
      report(
        "error",
        ["consumers", name],
        "a consumer name may contain only letters, digits and . _ @ - (it is a metric label)",
        { key: true },
      );
    }
    if (!isRecord(rawConsumers[name])) continue; // reported by the top level
    const input = parse(consumerSchema, rawConsumers[name], ["consumers", name]);
    if (input === undefined) continue;
    input.apiKeys.forEach((key, k) => {
      const other = consumerOfHash.get(key.sha256);
      if (other !== undefined) {
        report(
          "error",
          ["consumers", name, "apiKeys", k, "sha256"],
          `the same key hash belongs to consumer "${other}" too; a key names one consumer`,
        );
      } else consumerOfHash.set(key.sha256, name);
      if (key.expires && key.expires.getTime() <= ctx.now) {
        report(
          "warning",
          ["consumers", name, "apiKeys", k, "expires"],
          `API key "${key.name}" of consumer "${name}" expired at ${key.expires.toISOString()} and is refused`,
        );
      }
    });
    consumers[name] = buildConsumer(name, input);
  }
  const usedConsumers = new Set<string>();

  // Routes.
  const rawRoutes = Array.isArray(doc.routes) ? doc.routes : [];
  const routes: RouteConfig[] = [];
  const prefixes = new Map<string, number>();
  const usedIdentities = new Set<string>();
  rawRoutes.forEach((rawRoute: unknown, index) => {
    if (!isRecord(rawRoute)) return; // reported by the top level
    const at = (...rest: PathSegment[]): PathSegment[] => ["routes", index, ...rest];
    const settings = parse(routeSettingsSchema, withoutTargetKeys(rawRoute), at());
    const targeting = parse(routeTargetSchema, rawRoute, at());

    let prefix: string | undefined;
    if (typeof rawRoute.prefix === "string" && rawRoute.prefix !== "") {
      const normalised = normalisePrefix(rawRoute.prefix);
      if ("problem" in normalised) report("error", at("prefix"), normalised.problem);
      else {
        prefix = normalised.prefix;
        const first = prefixes.get(prefix);
        if (first !== undefined) {
          report("error", at("prefix"), `duplicate prefix "${prefix}" (also routes[${first}].prefix)`);
        } else prefixes.set(prefix, index);
      }
    }

    const identityName = typeof rawRoute.identity === "string" ? rawRoute.identity : undefined;
    if (identityName !== undefined && identityName !== "") {
      usedIdentities.add(identityName);
      if (!Object.hasOwn(rawIdentities, identityName)) {
        const known = identityNames.length > 0 ? ` (identities: ${identityNames.join(", ")})` : "";
        report("error", at("identity"), `unknown identity "${identityName}"${known}`);
      }
    }

    const named = isRecord(rawRoute.access) ? rawRoute.access.consumers : undefined;
    if (Array.isArray(named)) {
      named.forEach((consumer: unknown, c) => {
        if (typeof consumer !== "string" || consumer === "") return; // reported by the schema
        usedConsumers.add(consumer);
        if (!Object.hasOwn(rawConsumers, consumer)) {
          const known = Object.keys(rawConsumers);
          const list =
            known.length > 0 ? ` (consumers: ${known.join(", ")})` : " (there is no consumers: section)";
          report("error", at("access", "consumers", c), `unknown consumer "${consumer}"${list}`);
        }
      });
    }

    if (targeting === undefined) return;
    const identity = identityName === undefined ? undefined : identities[identityName];
    // With a broken cloud: block (already reported), check against the public cloud's presets.
    const hasJwt = isRecord(rawRoute.access) && rawRoute.access.jwt !== undefined;
    const target = checkRouteTarget(targeting, cloud ?? resolveCloud("public"), identity, hasJwt, at, report);
    if (settings === undefined || prefix === undefined || !target || !cloud) return;
    const route = buildRoute(
      { ...settings, ...targeting },
      prefix,
      cloud,
      target,
      identity,
      consumers,
      at,
      report,
      ctx.now,
    );
    if (route.rewriteLinks && listen && listen.publicUrl === undefined && listen.publicHosts.length === 0) {
      report(
        "warning",
        at("rewriteLinks"),
        `route ${prefix} rewrites links but neither listen.publicUrl nor listen.publicHosts is set, so rewritten links fall back to the listener's own address; set one of them to the address callers use`,
      );
    }
    routes.push(route);
  });

  for (const route of routes) {
    if (!route.forwardAuth) continue;
    const at = ["routes", routes.indexOf(route), "forwardAuth"];
    // The forward-auth port hands out the route's token itself: whoever passes the route's access gets it.
    if (route.onBehalfOf) {
      report(
        "error",
        at,
        `route ${route.prefix} acts on behalf of its callers; forward auth hands out the route's own token, which it has none of — use one or the other`,
      );
    }
    const { anonymous, apiKeys, consumers, jwt } = route.access;
    if (anonymous) {
      report(
        "error",
        at,
        `route ${route.prefix} is anonymous: on the forward-auth port that would hand its token to anyone who can ask — give it apiKeys, consumers or jwt`,
      );
    } else if (!apiKeys?.length && !consumers?.length && !jwt) {
      report(
        "warning",
        at,
        `route ${route.prefix} is checked only by cidrs: on the forward-auth port the client address is whatever the trusted gateway says (X-Forwarded-For), so keep forwardAuth.trustedPeers to the gateway's own addresses`,
      );
    }
  }
  if (doc.forwardAuth === undefined) {
    for (const route of routes) {
      if (!route.forwardAuth) continue;
      report(
        "warning",
        ["routes", routes.indexOf(route), "forwardAuth"],
        `route ${route.prefix} has forwardAuth: true but there is no top-level forwardAuth block, so no listener answers for it`,
      );
    }
  }

  for (const name of Object.keys(rawConsumers)) {
    if (!usedConsumers.has(name)) {
      report("warning", ["consumers", name], `consumer "${name}" is not named by any route's access`, {
        key: true,
      });
    }
  }
  for (const name of identityNames) {
    if (!usedIdentities.has(name)) {
      report("warning", ["identities", name], `identity "${name}" is not used by any route`, { key: true });
    }
  }

  const hasErrors = issues.some((i) => i.severity === "error");
  if (!top || hasErrors || !listen || !cloud || routes.length !== rawRoutes.length) {
    return { issues };
  }
  const config: ProxyConfig = {
    file: ctx.file,
    listen,
    ...(forwardAuth ? { forwardAuth } : {}),
    warmup: top.warmup,
    health: top.health,
    cloud,
    identities,
    consumers,
    routes,
    warnings: issues.filter((i) => i.severity === "warning"),
  };
  if (egress?.egress) config.egress = egress.egress;
  return { config, issues };
}

function resolveListen(
  l: z.output<typeof listenSchema> | undefined,
  report: Reporter,
  file: (p: string) => string,
): ListenConfig | undefined {
  if (l === undefined) return undefined;
  if (l.port !== 0 && l.port === l.adminPort) {
    report(
      "error",
      ["listen", "adminPort"],
      `must differ from listen.port (${l.port}): the admin port is never routed`,
    );
  }
  const listen: ListenConfig = {
    host: l.host,
    port: l.port,
    adminPort: l.adminPort,
    publicHosts: l.publicHosts,
    trustProxy: l.trustProxy,
    drainTimeoutMs: l.drainTimeoutMs,
  };
  if (l.publicUrl !== undefined) listen.publicUrl = l.publicUrl;
  if (l.tls) listen.tls = { certFile: file(l.tls.certFile), keyFile: file(l.tls.keyFile) };
  return listen;
}

function checkForwardAuth(
  f: z.output<typeof forwardAuthSchema> | undefined,
  listen: ListenConfig | undefined,
  report: Reporter,
): ForwardAuthConfig | undefined {
  if (f === undefined) return undefined;
  if (listen && f.port !== 0 && (f.port === listen.port || f.port === listen.adminPort)) {
    report(
      "error",
      ["forwardAuth", "port"],
      `must differ from listen.port (${listen.port}) and listen.adminPort (${listen.adminPort}): the proxy port never answers forward-auth requests`,
    );
  }
  const forwardAuth: ForwardAuthConfig = { port: f.port, trustedPeers: f.trustedPeers };
  if (f.pathPrefix !== undefined) forwardAuth.pathPrefix = f.pathPrefix;
  return forwardAuth;
}

function buildIdentity(
  name: string,
  input: IdentityInput,
  env: NodeJS.ProcessEnv,
  file: (p: string) => string,
  report: Reporter,
): IdentityConfig | undefined {
  const at = (...rest: PathSegment[]): PathSegment[] => ["identities", name, ...rest];
  const kind = CREDENTIAL_KEYS.find((k) => input[k] !== undefined);
  if (kind === undefined) return undefined;
  const limits = input.limits ? { limits: identityLimits(input.limits) } : {};
  if (kind === "managedIdentity") {
    const miClientId = input.managedIdentity?.clientId;
    return {
      name,
      credential: miClientId === undefined ? { kind } : { kind, clientId: miClientId },
      ...limits,
    };
  }
  let credential: AppRegistrationIdentity["credential"];
  let tenantId = input.tenantId;
  let clientId = input.clientId;
  switch (kind) {
    case "clientSecret":
      credential = { kind, clientSecret: input.clientSecret! };
      if (GUID.test(input.clientSecret!)) {
        report(
          "warning",
          at("clientSecret"),
          "clientSecret looks like a GUID: that is the secret's ID; use its Value (shown once, when the secret is created in Certificates & secrets)",
        );
      }
      break;
    case "clientSecretFile":
      credential = { kind, clientSecretFile: file(input.clientSecretFile!) };
      break;
    case "certificate": {
      // The schema proved: pfxFile alone, or certFile with keyFile.
      const c = input.certificate!;
      const passphrase = c.passphrase === undefined ? {} : { passphrase: c.passphrase };
      if (c.pfxFile !== undefined) credential = { kind, pfxFile: file(c.pfxFile), ...passphrase };
      else if (c.certFile !== undefined && c.keyFile !== undefined) {
        credential = { kind, certFile: file(c.certFile), keyFile: file(c.keyFile), ...passphrase };
      } else return undefined;
      break;
    }
    case "workloadIdentity": {
      const injected = workloadIdentityEnvironment(env);
      tenantId ??= injected.tenantId;
      clientId ??= injected.clientId;
      const tokenFile = input.workloadIdentity?.tokenFile ?? injected.tokenFile;
      if (tenantId === undefined) {
        report("error", at(), "tenantId is required: set it here or in AZURE_TENANT_ID");
      }
      if (clientId === undefined) {
        report("error", at(), "clientId is required: set it here or in AZURE_CLIENT_ID");
      }
      if (tokenFile === undefined) {
        report(
          "error",
          at("workloadIdentity"),
          "tokenFile is required: set workloadIdentity.tokenFile or AZURE_FEDERATED_TOKEN_FILE",
        );
        return undefined;
      }
      credential = { kind, tokenFile: file(tokenFile) };
      break;
    }
    case "user": {
      // The schema proved: password or passwordFile, not both.
      const u = input.user!;
      if (u.passwordFile !== undefined) {
        credential = { kind, username: u.username, passwordFile: file(u.passwordFile) };
      } else if (u.password !== undefined) credential = { kind, username: u.username, password: u.password };
      else return undefined;
      break;
    }
  }
  if (tenantId === undefined || clientId === undefined) return undefined;
  return { name, tenantId, clientId, credential, ...limits };
}

function identityLimits(input: NonNullable<IdentityInput["limits"]>): IdentityLimits {
  const limits: IdentityLimits = { maxWaitMs: input.maxWaitMs };
  if (input.concurrent !== undefined) limits.concurrent = input.concurrent;
  if (input.requests !== undefined && input.per !== undefined) {
    limits.window = { requests: input.requests, perMs: input.per };
  }
  return limits;
}

function buildConsumer(name: string, input: ConsumerInput): ConsumerConfig {
  const consumer: ConsumerConfig = {
    name,
    apiKeys: input.apiKeys.map((k) => apiKeyConfig(k, name)),
  };
  if (input.rateLimit) consumer.rateLimit = rateLimitConfig(input.rateLimit);
  return consumer;
}

function apiKeyConfig(
  key: { name: string; sha256: string; expires?: Date | undefined },
  consumer?: string,
): ApiKeyConfig {
  const out: ApiKeyConfig = { name: key.name, sha256: key.sha256 };
  if (key.expires) out.expires = key.expires;
  if (consumer !== undefined) out.consumer = consumer;
  return out;
}

function rateLimitConfig(input: { requests: number; per: number; burst?: number | undefined }) {
  return { requests: input.requests, perMs: input.per, burst: input.burst ?? input.requests };
}

/** Characters a path segment may hold unencoded (RFC 3986 pchar), plus "/". */
const PREFIX_CHARS = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/]*$/;

/** "/pp/" → "/pp"; refuses what could never match a request path or could mean two things. */
export function normalisePrefix(raw: string): { prefix: string } | { problem: string } {
  if (!raw.startsWith("/")) return { problem: `must start with "/" (e.g. "/${raw.replace(/\/+$/, "")}")` };
  if (raw.includes("%")) {
    return { problem: "must not contain percent-encoding (%); request paths are matched as sent" };
  }
  if (/[?#]/.test(raw)) return { problem: "must be a path only, without ? or #" };
  if (!PREFIX_CHARS.test(raw)) {
    return { problem: "may contain only letters, digits, / and - . _ ~ ! $ & ' ( ) * + , ; = : @" };
  }
  if (raw.includes("//")) return { problem: 'must not contain an empty segment ("//")' };
  const prefix = raw.length > 1 && raw.endsWith("/") ? raw.slice(0, -1) : raw;
  if (prefix.split("/").some((segment) => segment === "." || segment === "..")) {
    return { problem: 'must not contain "." or ".." segments' };
  }
  return { prefix };
}

const APP_KINDS = new Set([
  "clientSecret",
  "clientSecretFile",
  "certificate",
  "workloadIdentity",
  "managedIdentity",
]);

/** A client secret's ID has this shape; its value never does. */
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface ResolvedTarget {
  upstream: string;
  scope: string;
  region?: string;
  pinnedQuery?: Array<[string, string]>;
  flowHost?: string;
}

function checkRouteTarget(
  input: RouteTargetInput,
  cloud: CloudConfig,
  identity: IdentityConfig | undefined,
  hasJwt: boolean,
  at: (...rest: PathSegment[]) => PathSegment[],
  report: Reporter,
): ResolvedTarget | undefined {
  let errors = 0;
  const error = (path: PathSegment[], message: string) => {
    errors++;
    report("error", path, message);
  };

  let flowUpstream: string | undefined;
  let pinnedQuery: Array<[string, string]> | undefined;
  let flowHost: string | undefined;
  if (input.url !== undefined) {
    // The trigger's own query (api-version, …) is pinned: it wins over the caller's.
    const url = new URL(input.url);
    flowHost = url.hostname;
    pinnedQuery = [...url.searchParams];
    url.search = "";
    url.hash = "";
    flowUpstream = url.href.replace(/\/+$/, "");
  }

  const target = resolveRouteTarget(
    {
      service: input.service,
      upstream: input.upstream,
      scope: input.scope,
      flowUpstream,
      region: input.region,
    },
    cloud,
  );
  for (const problem of target.problems) error(at(problem.key), problem.message);
  if (input.service !== undefined && input.scope !== undefined && target.problems.length === 0) {
    const preset = resolveRouteTarget(
      { service: input.service, upstream: input.upstream, flowUpstream, region: input.region },
      cloud,
    ).scope;
    if (preset !== undefined && preset !== input.scope) {
      report(
        "warning",
        at("scope"),
        `scope "${input.scope}" differs from the ${input.service} preset's "${preset}": a token for another resource (or with one slash more or less) is refused by the API with 401 — drop scope: to use the preset`,
      );
    }
  }

  const kind = identity?.credential.kind;
  const isApp = kind !== undefined && APP_KINDS.has(kind);
  const onBehalfOf = input.onBehalfOf === true;
  if (onBehalfOf) {
    for (const problem of onBehalfOfProblems(input.identity, kind, hasJwt)) error(at("onBehalfOf"), problem);
  }
  // On-behalf-of tokens are delegated (they carry the caller), so the app-only rules below do not apply.
  if (input.service === "lcs" && isApp && !onBehalfOf) {
    error(
      at("identity"),
      `identity "${input.identity}" uses ${kind}: LCS / Database Movement API accepts delegated user_impersonation tokens only; service principals and managed identities are not supported — use a \`user:\` identity`,
    );
  }
  if (isApp && !onBehalfOf && input.scope !== undefined && !input.scope.endsWith("/.default")) {
    error(
      at("scope"),
      `identity "${input.identity}" is an application (${kind}), which can only request "<resource>/.default" scopes (client credentials)`,
    );
  }
  if (errors > 0 || target.upstream === undefined || target.scope === undefined) return undefined;
  const resolved: ResolvedTarget = { upstream: target.upstream, scope: target.scope };
  if (target.region !== undefined) resolved.region = target.region;
  if (pinnedQuery !== undefined) resolved.pinnedQuery = pinnedQuery;
  if (flowHost !== undefined) resolved.flowHost = flowHost;
  return resolved;
}

/** Why a route cannot exchange its callers' tokens on their behalf (design.md "On-behalf-of"). */
function onBehalfOfProblems(identityName: string, kind: string | undefined, hasJwt: boolean): string[] {
  const problems: string[] = [];
  if (!hasJwt) {
    problems.push(
      "onBehalfOf needs access.jwt: the caller's token is verified first and is the assertion that gets exchanged — add access.jwt { issuer, audience, jwksUri } for the web API's tokens",
    );
  }
  const confidential = "clientSecret, clientSecretFile, certificate or workloadIdentity";
  if (kind === "user") {
    problems.push(
      `identity "${identityName}" is a user (ROPC) identity: on-behalf-of is done by the web API's confidential client, and a user identity signs in as one fixed account with no client credential — use the web API's app registration with ${confidential}`,
    );
  } else if (kind === "managedIdentity") {
    problems.push(
      `identity "${identityName}" is a managed identity: Entra ID does not let a managed identity exchange a user's token (on-behalf-of needs an app registration that exposes the API callers sign in to) — use that app registration with ${confidential}`,
    );
  }
  return problems;
}

function buildRoute(
  input: RouteInput,
  prefix: string,
  cloud: CloudConfig,
  target: ResolvedTarget,
  identity: IdentityConfig | undefined,
  consumers: Record<string, ConsumerConfig>,
  at: (...rest: PathSegment[]) => PathSegment[],
  report: Reporter,
  now: number,
): RouteConfig {
  const kind = identity?.credential.kind;
  const isApp = kind !== undefined && APP_KINDS.has(kind);
  const flowHost = target.flowHost;

  // Warnings.
  if (input.access.anonymous === true) {
    report(
      "warning",
      at("access", "anonymous"),
      `route ${prefix} is anonymous: anyone who can reach this route uses the identity's token`,
    );
  }
  if (input.service === "powerplatform" && isApp && input.onBehalfOf !== true) {
    report(
      "warning",
      at("identity"),
      `identity "${input.identity}" is a service principal: the Power Platform API accepts it only once it is registered as a Power Platform management application (pac admin application register --application-id ${identity?.clientId ?? "<client-id>"}, or the tenant settings API)`,
    );
  }
  if (
    input.service === "flow" &&
    flowHost !== undefined &&
    presetsApplyIn(cloud) &&
    cloud.name === "public" &&
    !isLoopbackHost(flowHost) &&
    !flowHost.endsWith(".environment.api.powerplatform.com")
  ) {
    report(
      "warning",
      at("url"),
      `flow triggers that accept Entra ID tokens (scope ${FLOW_SCOPE}) are served from *.environment.api.powerplatform.com; ${flowHost} may expect a SAS signature instead`,
    );
  }
  input.access.apiKeys?.forEach((key, k) => {
    if (key.expires && key.expires.getTime() <= now) {
      report(
        "warning",
        at("access", "apiKeys", k, "expires"),
        `API key "${key.name}" expired at ${key.expires.toISOString()} and is refused`,
      );
    }
  });

  const access: AccessConfig = { anonymous: input.access.anonymous === true };
  const named = (input.access.consumers ?? []).flatMap((name) => consumers[name] ?? []);
  const keys = [
    ...(input.access.apiKeys ?? []).map((k) => apiKeyConfig(k)),
    ...named.flatMap((c) => c.apiKeys),
  ];
  if (keys.length > 0) access.apiKeys = keys;
  if (input.access.consumers) access.consumers = [...new Set(input.access.consumers)];
  if (input.access.cidrs) access.cidrs = input.access.cidrs;
  if (input.access.jwt) access.jwt = input.access.jwt;

  const route: RouteConfig = {
    prefix,
    identity: input.identity,
    upstream: target.upstream,
    scope: target.scope,
    methods: input.methods ? [...new Set(input.methods)] : defaultMethods(input.service),
    timeoutMs: input.timeoutMs,
    maxBodyBytes: input.maxBodyBytes,
    maxConcurrent: input.maxConcurrent,
    rewriteLinks: input.rewriteLinks,
    forwardAuth: input.forwardAuth,
    access,
  };
  if (input.service !== undefined) route.service = input.service;
  if (target.region !== undefined) route.region = target.region;
  if (target.pinnedQuery !== undefined) route.pinnedQuery = target.pinnedQuery;
  if (input.paths !== undefined) route.paths = input.paths;
  if (input.onBehalfOf === true) route.onBehalfOf = true;
  if (input.rateLimit) route.rateLimit = rateLimitConfig(input.rateLimit);
  const consumerRateLimits = named.filter((c) => c.rateLimit !== undefined);
  if (consumerRateLimits.length > 0) {
    route.consumerRateLimits = Object.fromEntries(consumerRateLimits.map((c) => [c.name, c.rateLimit!]));
  }
  if (input.retryThrottled) route.retryThrottled = { ...input.retryThrottled };
  return route;
}
