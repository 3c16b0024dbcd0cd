// The shape of routes.yaml (design.md "routes.yaml") as zod schemas. Unknown keys are errors at
// every level (strictObject). Rules that need the whole file — identity references, prefix
// uniqueness, presets, the environment — live in resolve.ts.
import { BlockList, isIP } from "node:net";
import picomatch from "picomatch";
import * as z from "zod";
import { parseApiKeyHash } from "./api-key-hash.ts";
import { egressSchema } from "./egress.ts";
import { CLOUD_NAMES, SERVICE_NAMES } from "./presets.ts";

/** Methods a route may allow. CONNECT (tunnels) and TRACE (echoes headers) are never forwarded. */
export const ROUTE_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

export const CREDENTIAL_KEYS = [
  "clientSecret",
  "clientSecretFile",
  "certificate",
  "workloadIdentity",
  "managedIdentity",
  "user",
] as const;

/**
 * Run a refinement even when a sibling key already failed, so every problem is reported at once —
 * but only on an object (a missing or mistyped block is reported once, by its type error).
 */
const always = {
  when: (payload: { value: unknown }) =>
    typeof payload.value === "object" && payload.value !== null && !Array.isArray(payload.value),
};

// ---------------------------------------------------------------- scalars

const nonEmpty = z.string().min(1, "must not be empty");

/** Values written as ${VAR} arrive as strings; numeric fields accept "8080" as well as 8080. */
function integer(min: number, max: number) {
  return z.preprocess(
    (v) => (typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : v),
    z
      .number()
      .int("must be a whole number")
      .min(min, `must be at least ${min}`)
      .max(max, `must be at most ${max}`),
  );
}

const boolean = z.preprocess(
  (v) => (v === "true" ? true : v === "false" ? false : v),
  z.boolean("must be true or false"),
);

const port = integer(0, 65535);

const loopbackV4 = new BlockList();
loopbackV4.addSubnet("127.0.0.0", 8, "ipv4");

/** localhost, 127.0.0.0/8 or ::1 — the only hosts an http:// upstream may name. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[(.*)\]$/, "$1").toLowerCase();
  if (host === "localhost") return true;
  if (isIP(host) === 4) return loopbackV4.check(host, "ipv4");
  if (isIP(host) === 6) return host === "::1" || host === "0:0:0:0:0:0:0:1";
  return false;
}

interface UrlRules {
  /** http:// allowed for loopback hosts (tests, sidecars). */
  loopbackHttp: boolean;
  /** A query string is allowed (flow trigger URLs). */
  query: boolean;
  /** Anything beyond the origin is allowed. */
  path: boolean;
  example: string;
}

function urlString(rules: UrlRules) {
  return z.string().superRefine((value, ctx) => {
    const problem = urlProblem(value, rules);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });
}

function urlProblem(value: string, rules: UrlRules): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `must be an absolute URL such as ${rules.example}`;
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return `must be an https:// URL`;
  if (url.protocol === "http:") {
    if (!rules.loopbackHttp) return "must be an https:// URL";
    if (!isLoopbackHost(url.hostname)) {
      return "http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://";
    }
  }
  if (url.username || url.password) return "must not contain a user name or password";
  if (url.hash) return "must not contain a #fragment";
  if (!rules.query && url.search) return "must not contain a query string";
  if (!rules.path && url.pathname !== "/") return `must be only scheme, host and port, like ${rules.example}`;
  return undefined;
}

/** A CIDR ("10.0.0.0/8", "2001:db8::/32") or a single address. */
export function cidrProblem(value: string): string | undefined {
  const [address, bits, extra] = value.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || extra !== undefined) {
    return `"${value}" is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)`;
  }
  if (bits !== undefined) {
    const max = family === 4 ? 32 : 128;
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
      return `"${value}": the prefix length must be 0…${max}`;
    }
  }
  return undefined;
}

const cidr = z.string().superRefine((value, ctx) => {
  const problem = cidrProblem(value);
  if (problem) ctx.addIssue({ code: "custom", message: problem });
});

const host = nonEmpty.superRefine((value, ctx) => {
  if (isIP(value) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(value)) {
    ctx.addIssue({
      code: "custom",
      message: "must be an IP address or a host name (e.g. 0.0.0.0, ::, 127.0.0.1)",
    });
  }
});

/** "proxy.contoso.example", "proxy.contoso.example:8443", "[2001:db8::1]:8443" — a Host header value. */
export function hostPortProblem(value: string): string | undefined {
  if (value === "") return undefined; // reported as "must not be empty"
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)) {
    return "must be a host[:port] as in a Host header, without a scheme (e.g. proxy.contoso.example)";
  }
  if (/[/?#@]/.test(value)) return "must be a host[:port] only, without a path, query or user";
  const match = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(value);
  const host = match?.[1] ?? "";
  const hostOk = host.startsWith("[")
    ? isIP(host.slice(1, -1)) === 6
    : isIP(host) === 4 || /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(host);
  if (!match || !hostOk) {
    return "must be a host name or IP address with an optional :port (IPv6 in brackets, e.g. [2001:db8::1]:8443)";
  }
  if (match[2] !== undefined && Number(match[2]) > 65535) return "the port must be 0…65535";
  return undefined;
}

/** Host header values are case-insensitive: stored lower-case so they compare with a lower-cased Host. */
const hostPort = nonEmpty
  .superRefine((value, ctx) => {
    const problem = hostPortProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  })
  .transform((value) => value.toLowerCase());

const filePath = nonEmpty;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Directory (tenant) ID GUID, or a domain of the tenant such as contoso.onmicrosoft.com. */
const tenantId = nonEmpty.superRefine((value, ctx) => {
  if (value === "" || GUID.test(value)) return;
  if (["common", "organizations", "consumers"].includes(value.toLowerCase())) {
    ctx.addIssue({
      code: "custom",
      message: `"${value}" names no tenant; use the Directory (tenant) ID GUID`,
    });
  } else if (!/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/.test(value)) {
    ctx.addIssue({
      code: "custom",
      message: "must be the Directory (tenant) ID GUID, or a tenant domain such as contoso.onmicrosoft.com",
    });
  }
});

/** Application (client) ID: always a GUID in Entra ID. */
const clientId = z.string().regex(GUID, "must be the Application (client) ID, a GUID");

/** `key:` with nothing after it (or only comments) means an empty block. */
function emptyBlockAllowed<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (v === null ? {} : v), schema);
}

// ---------------------------------------------------------------- listen, cloud

export const listenSchema = z.strictObject({
  host: host.default("0.0.0.0"),
  port: port.default(8080),
  adminPort: port.default(9090),
  publicUrl: urlString({
    loopbackHttp: true,
    query: false,
    path: true,
    example: "https://proxy.contoso.example",
  })
    .transform((v) => v.replace(/\/+$/, ""))
    .optional(),
  publicHosts: z.array(hostPort).default([]),
  trustProxy: z.array(cidr).default([]),
  tls: z.strictObject({ certFile: filePath, keyFile: filePath }).optional(),
  drainTimeoutMs: integer(0, 3_600_000).default(20_000),
});

/** Gateway integration (design.md "Gateway integration (forward auth)"); the default trusts loopback only. */
export const forwardAuthSchema = z.strictObject({
  port: port.default(8081),
  trustedPeers: z.array(cidr).default(["127.0.0.0/8", "::1"]),
  pathPrefix: nonEmpty
    .superRefine((value, ctx) => {
      if (!value.startsWith("/") || /[?#%]/.test(value) || value.includes("//")) {
        ctx.addIssue({ code: "custom", message: 'must be a path such as "/check", without ?, # or %' });
      } else if (/^\/+$/.test(value)) {
        ctx.addIssue({ code: "custom", message: "leave pathPrefix out when the gateway adds no prefix" });
      }
    })
    .transform((v) => (v.length > 1 ? v.replace(/\/+$/, "") : v))
    .optional(),
});

export const cloudSchema = z.union(
  [
    z.enum(CLOUD_NAMES),
    z.strictObject({
      authorityHost: urlString({
        loopbackHttp: false,
        query: false,
        path: false,
        example: "https://login.example:8443",
      }),
    }),
  ],
  { error: `must be one of ${CLOUD_NAMES.join(", ")}, or { authorityHost: https://… }` },
);

// ---------------------------------------------------------------- limits

const DURATION_UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;

/** "30s", "1m", "5m", "1h" → milliseconds. */
export const duration = z.string("must be a duration such as 1s, 5m or 1h").transform((value, ctx) => {
  const match = /^\s*(\d+)\s*(s|m|h)\s*$/.exec(value);
  const ms = match ? Number(match[1]) * DURATION_UNIT_MS[match[2] as keyof typeof DURATION_UNIT_MS] : 0;
  if (!match || ms < 1_000 || ms > 86_400_000) {
    ctx.addIssue({ code: "custom", message: "must be a duration from 1s to 24h, such as 1s, 5m or 1h" });
    return z.NEVER;
  }
  return ms;
});

export const rateLimitSchema = z.strictObject({
  requests: integer(1, 1_000_000_000),
  per: duration,
  burst: integer(1, 1_000_000_000).optional(),
});

export const identityLimitsSchema = z
  .strictObject({
    concurrent: integer(1, 100_000).optional(),
    requests: integer(1, 1_000_000).optional(),
    per: duration.optional(),
    maxWaitMs: integer(0, 3_600_000).default(30_000),
  })
  .superRefine((l, ctx) => {
    if ((l.requests === undefined) !== (l.per === undefined)) {
      ctx.addIssue({
        code: "custom",
        message: "requests and per go together (e.g. requests: 6000, per: 5m)",
      });
    } else if (l.requests === undefined && l.concurrent === undefined) {
      ctx.addIssue({ code: "custom", message: "limits needs concurrent, or requests with per" });
    }
  }, always);

const retryThrottledSchema = emptyBlockAllowed(
  z.strictObject({
    maxWaitMs: integer(1, 3_600_000).default(30_000),
    attempts: integer(1, 10).default(3),
  }),
);

// ---------------------------------------------------------------- identities

const certificateSchema = z
  .strictObject({
    certFile: filePath.optional(),
    keyFile: filePath.optional(),
    pfxFile: filePath.optional(),
    passphrase: z.string().optional(),
  })
  .superRefine((c, ctx) => {
    const pem = c.certFile !== undefined || c.keyFile !== undefined;
    if (c.pfxFile !== undefined && pem) {
      ctx.addIssue({
        code: "custom",
        path: ["pfxFile"],
        message: "give either pfxFile or certFile + keyFile, not both",
      });
    } else if (c.pfxFile === undefined) {
      if (c.certFile === undefined) {
        ctx.addIssue({
          code: "custom",
          message: "certificate needs certFile + keyFile (PEM) or pfxFile",
        });
      } else if (c.keyFile === undefined) {
        ctx.addIssue({ code: "custom", message: "certificate needs keyFile next to certFile" });
      }
    }
  }, always);

const userSchema = z
  .strictObject({
    username: nonEmpty,
    password: z.string().optional(),
    passwordFile: filePath.optional(),
  })
  .superRefine((u, ctx) => {
    if (u.password !== undefined && u.passwordFile !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["passwordFile"],
        message: "give either password or passwordFile, not both",
      });
    } else if (u.password === undefined && u.passwordFile === undefined) {
      ctx.addIssue({ code: "custom", message: "user needs password or passwordFile" });
    }
  }, always);

export const identitySchema = z
  .strictObject({
    tenantId: tenantId.optional(),
    clientId: clientId.optional(),
    clientSecret: nonEmpty.optional(),
    clientSecretFile: filePath.optional(),
    certificate: certificateSchema.optional(),
    workloadIdentity: emptyBlockAllowed(z.strictObject({ tokenFile: filePath.optional() })).optional(),
    managedIdentity: emptyBlockAllowed(z.strictObject({ clientId: clientId.optional() })).optional(),
    user: userSchema.optional(),
    limits: identityLimitsSchema.optional(),
  })
  .superRefine((identity, ctx) => {
    const given = CREDENTIAL_KEYS.filter((k) => (identity as Record<string, unknown>)[k] !== undefined);
    if (given.length === 0) {
      ctx.addIssue({
        code: "custom",
        message: `needs exactly one credential: ${CREDENTIAL_KEYS.join(", ")}`,
      });
      return;
    }
    if (given.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: [given[1]!],
        message: `only one credential per identity (found ${given.join(" and ")}); make a second identity for the other`,
      });
      return;
    }
    const kind = given[0]!;
    if (kind === "managedIdentity") {
      if (identity.clientId !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["clientId"],
          message:
            "a managed identity takes no clientId here; for a user-assigned identity write managedIdentity: { clientId: … }",
        });
      }
      if (identity.tenantId !== undefined) {
        ctx.addIssue({
          code: "custom",
          path: ["tenantId"],
          message:
            "a managed identity takes no tenantId (it always belongs to the tenant of its Azure resource)",
        });
      }
    } else if (kind !== "workloadIdentity") {
      // workloadIdentity may take both from AZURE_TENANT_ID / AZURE_CLIENT_ID (checked in resolve.ts).
      for (const key of ["tenantId", "clientId"] as const) {
        if (identity[key] === undefined) {
          ctx.addIssue({ code: "custom", message: `${key} is required for a ${kind} identity` });
        }
      }
    }
  }, always);

export type IdentityInput = z.output<typeof identitySchema>;

// ---------------------------------------------------------------- access

/**
 * An expiry date: "2027-06-30" means the key works through that whole day (UTC), so it is refused
 * from 2027-07-01T00:00:00Z; an ISO 8601 date-time with a zone is taken as the exact instant.
 */
export function parseExpiry(text: string): Date | undefined {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const start = new Date(Date.UTC(y, m - 1, d));
    if (start.getUTCFullYear() !== y || start.getUTCMonth() !== m - 1 || start.getUTCDate() !== d) {
      return undefined;
    }
    return new Date(Date.UTC(y, m - 1, d + 1));
  }
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i.test(text)) {
    const instant = new Date(text);
    return Number.isNaN(instant.getTime()) ? undefined : instant;
  }
  return undefined;
}

const apiKeySchema = z.strictObject({
  name: z
    .string()
    .regex(
      /^[A-Za-z0-9][A-Za-z0-9._@-]*$/,
      "must be a short label of letters, digits and . _ @ - (it appears in logs)",
    ),
  sha256: z.string().transform((value, ctx) => {
    const hex = parseApiKeyHash(value);
    if (hex === undefined) {
      // Never echo the value: it might be the key itself, pasted by mistake.
      ctx.addIssue({
        code: "custom",
        message:
          'must be the SHA-256 of the key as 64 lowercase hex digits, optionally prefixed "sha256:" (run `entra-auth-proxy hash-key`, or printf %s "$KEY" | sha256sum)',
      });
      return z.NEVER;
    }
    return hex;
  }),
  expires: z
    .string()
    .transform((value, ctx) => {
      const date = parseExpiry(value);
      if (!date) {
        ctx.addIssue({
          code: "custom",
          message:
            "must be a date YYYY-MM-DD (the key is valid through that day, UTC) or an ISO 8601 date-time with a time zone",
        });
        return z.NEVER;
      }
      return date;
    })
    .optional(),
});

const jwtSchema = z.strictObject({
  issuer: nonEmpty,
  audience: nonEmpty,
  jwksUri: urlString({
    loopbackHttp: true,
    query: true,
    path: true,
    example: "https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys",
  }),
  requiredRoles: z.array(nonEmpty).optional(),
  requiredScopes: z.array(nonEmpty).optional(),
  allowedObjectIds: z.array(nonEmpty).optional(),
});

export const accessSchema = z
  .strictObject({
    anonymous: boolean.optional(),
    apiKeys: z.array(apiKeySchema).min(1, "list at least one key, or leave apiKeys out").optional(),
    consumers: z.array(nonEmpty).min(1, "list at least one consumer, or leave consumers out").optional(),
    cidrs: z.array(cidr).min(1, "list at least one CIDR, or leave cidrs out").optional(),
    jwt: jwtSchema.optional(),
  })
  .superRefine((access, ctx) => {
    const conditions = (["apiKeys", "consumers", "cidrs", "jwt"] as const).filter(
      (k) => access[k] !== undefined,
    );
    if (access.anonymous === true && conditions.length > 0) {
      ctx.addIssue({
        code: "custom",
        path: ["anonymous"],
        message: `anonymous: true cannot be combined with ${conditions.join(", ")}; remove one or the other`,
      });
    } else if (access.anonymous !== true && conditions.length === 0) {
      ctx.addIssue({
        code: "custom",
        message:
          "access needs a condition: apiKeys, consumers, cidrs or jwt — or anonymous: true to opt out explicitly",
      });
    }
    const seenNames = new Map<string, number>();
    const seenHashes = new Map<string, number>();
    access.apiKeys?.forEach((key, index) => {
      if (typeof key?.name === "string") {
        const first = seenNames.get(key.name);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["apiKeys", index, "name"],
            message: `duplicate key name "${key.name}" (also apiKeys[${first}])`,
          });
        } else seenNames.set(key.name, index);
      }
      if (typeof key?.sha256 === "string") {
        const first = seenHashes.get(key.sha256);
        if (first !== undefined) {
          ctx.addIssue({
            code: "custom",
            path: ["apiKeys", index, "sha256"],
            message: `the same key hash is listed twice (also apiKeys[${first}])`,
          });
        } else seenHashes.set(key.sha256, index);
      }
    });
  }, always);

export type AccessInput = z.output<typeof accessSchema>;

export const consumerSchema = z.strictObject({
  apiKeys: z.array(apiKeySchema).min(1, "a consumer needs at least one API key"),
  rateLimit: rateLimitSchema.optional(),
});

export type ConsumerInput = z.output<typeof consumerSchema>;

// ---------------------------------------------------------------- routes

const glob = z.string().superRefine((value, ctx) => {
  if (!value.startsWith("/")) {
    ctx.addIssue({
      code: "custom",
      message: `"${value}" never matches: paths are matched against the path after the prefix, which starts with "/"`,
    });
    return;
  }
  try {
    picomatch.makeRe(value, { strictBrackets: true });
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `"${value}" is not a valid glob: ${(err as Error).message}` });
  }
});

const method = z
  .string()
  .transform((m) => m.toUpperCase())
  .pipe(z.enum(ROUTE_METHODS, { error: `must be one of ${ROUTE_METHODS.join(", ")}` }));

/** The keys of a route that decide its upstream, scope and identity rules. */
const routeTargetShape = {
  service: z.enum(SERVICE_NAMES, { error: `must be one of ${SERVICE_NAMES.join(", ")}` }).optional(),
  identity: nonEmpty,
  upstream: urlString({
    loopbackHttp: true,
    query: false,
    path: true,
    example: "https://api.contoso.example",
  })
    .transform((v) => v.replace(/\/+$/, ""))
    .optional(),
  scope: nonEmpty.optional(),
  url: urlString({
    loopbackHttp: true,
    query: true,
    path: true,
    example:
      "https://….environment.api.powerplatform.com/powerautomate/automations/direct/workflows/…/triggers/manual/paths/invoke?api-version=1",
  })
    .superRefine((value, ctx) => {
      if (!URL.canParse(value)) return;
      const names = [...new URL(value).searchParams.keys()].map((k) => k.toLowerCase());
      if (names.includes("sig")) {
        // Never echo the URL: the signature is a secret.
        ctx.addIssue({
          code: "custom",
          message:
            'this trigger URL carries a SAS signature (sig=); the proxy calls Entra ID-secured HTTP triggers with a bearer token, and those do not use SAS signatures. Set the trigger to "Any user in my tenant" (or "Specific users") and copy the trigger URL shown for that setting, which carries no sig',
        });
      }
    })
    .optional(),
  region: nonEmpty.optional(),
  /** Exchange the caller's verified token for one of this route's scope (design.md "On-behalf-of"). */
  onBehalfOf: boolean.optional(),
};

/** Every other key of a route. */
const routeSettingsShape = {
  prefix: nonEmpty,
  methods: z.array(method).min(1, "list at least one method, or leave methods out").optional(),
  paths: z.array(glob).min(1, "list at least one glob, or leave paths out").optional(),
  timeoutMs: integer(1, 3_600_000).default(30_000),
  maxBodyBytes: integer(0, Number.MAX_SAFE_INTEGER).default(104_857_600),
  maxConcurrent: integer(1, 1_000_000).default(256),
  rewriteLinks: boolean.default(false),
  forwardAuth: boolean.default(false),
  access: accessSchema,
  rateLimit: rateLimitSchema.optional(),
  retryThrottled: retryThrottledSchema.optional(),
};

const { prefix, ...routeOptionsShape } = routeSettingsShape;

/** A route as routes.yaml spells it (design.md), keys in the order the docs list them. */
export const routeSchema = z.strictObject({ prefix, ...routeTargetShape, ...routeOptionsShape });

// A route is parsed in two halves that validate disjoint keys, each once: the targeting half on
// its own, so preset and identity rules are still checked when another key is broken.

/** The targeting keys; other keys are ignored here. */
export const routeTargetSchema = z.object(routeTargetShape);

/** Every other key, given the route without its targeting keys: unknown keys are reported here. */
export const routeSettingsSchema = z.strictObject(routeSettingsShape);

/** The route without its targeting keys, for routeSettingsSchema. */
export function withoutTargetKeys(route: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(route).filter(([key]) => !Object.hasOwn(routeTargetShape, key)));
}

export type RouteTargetInput = z.output<typeof routeTargetSchema>;
export type RouteInput = RouteTargetInput & z.output<typeof routeSettingsSchema>;

// ---------------------------------------------------------------- the file

/** `readiness: tokens` makes /readyz fail while any identity has no valid token (single-route deployments). */
export const healthSchema = z.strictObject({
  readiness: z.enum(["process", "tokens"]).default("process"),
});

export const routesFileSchema = z.strictObject({
  listen: emptyBlockAllowed(listenSchema).optional(),
  forwardAuth: emptyBlockAllowed(forwardAuthSchema).optional(),
  warmup: boolean.default(true),
  health: healthSchema.default({ readiness: "process" }),
  cloud: cloudSchema.default("public"),
  consumers: z.record(z.string(), consumerSchema).optional(),
  identities: z.record(z.string(), identitySchema),
  routes: z.array(routeSchema).min(1, "list at least one route"),
  egress: emptyBlockAllowed(egressSchema).optional(),
});

/**
 * The top level alone: each section under it (listen, cloud, every identity, every route) is
 * parsed once on its own, so one broken section hides nothing of the others.
 */
export const topLevelSchema = routesFileSchema.extend({
  listen: z.unknown().optional(),
  forwardAuth: z.unknown().optional(),
  cloud: z.unknown().optional(),
  egress: z.unknown().optional(),
  consumers: z.record(z.string(), z.looseObject({})).optional(),
  identities: z.record(z.string(), z.looseObject({})),
  routes: z.array(z.looseObject({})).min(1, "list at least one route"),
});

/** Messages for a required key that is missing, where "is required" alone does not help. */
export const MISSING_KEY_HINTS: Readonly<Record<string, string>> = {
  access:
    "access is required on every route: apiKeys, consumers, cidrs, jwt, or anonymous: true to opt out explicitly",
  identities: "identities is required: the Entra ID identities routes acquire tokens with",
  routes: "routes is required: at least one route",
  identity: "identity is required: the name of an entry under identities",
  prefix: 'prefix is required: the path prefix this route serves, e.g. "/powerplatform"',
};

/**
 * The keys a strict object at `path` accepts (to suggest one for a misspelt key), or undefined.
 * Walks the schemas through optional/default/pipe/union wrappers with zod's public accessors.
 */
export function knownKeysAt(
  path: readonly PropertyKey[],
  schema: z.core.$ZodType = routesFileSchema,
): string[] | undefined {
  const candidates = objectShapesAt(schema, path);
  const keys = new Set<string>();
  for (const candidate of candidates) for (const key of Object.keys(candidate)) keys.add(key);
  return keys.size > 0 ? [...keys] : undefined;
}

function objectShapesAt(
  schema: z.core.$ZodType,
  path: readonly PropertyKey[],
): Array<Record<string, unknown>> {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodNullable || schema instanceof z.ZodDefault) {
    return objectShapesAt(schema.unwrap(), path);
  }
  if (schema instanceof z.ZodPipe) {
    // z.preprocess(fn, schema) is a pipe from a transform; x.transform(fn) a pipe into one.
    return objectShapesAt(schema.in instanceof z.ZodTransform ? schema.out : schema.in, path);
  }
  if (schema instanceof z.ZodUnion) return schema.options.flatMap((o) => objectShapesAt(o, path));
  if (schema instanceof z.ZodObject) {
    if (path.length === 0) return [schema.shape];
    const next = schema.shape[String(path[0])];
    return next ? objectShapesAt(next, path.slice(1)) : [];
  }
  if (schema instanceof z.ZodArray)
    return path.length > 0 ? objectShapesAt(schema.element, path.slice(1)) : [];
  if (schema instanceof z.ZodRecord) {
    return path.length > 0 ? objectShapesAt(schema.valueType, path.slice(1)) : [];
  }
  return [];
}
