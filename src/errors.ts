// The one catalogue of errors the proxy answers callers with (design.md "Errors to callers").
// Callers and tests match on `code`, never on messages.

export const ERROR_CATALOGUE = {
  route_not_found: { status: 404, title: "No route matches this path" },
  method_not_allowed: { status: 405, title: "Method not allowed on this route" },
  bad_path: { status: 400, title: "Path is not allowed" },
  bad_request: { status: 400, title: "Malformed request" },
  headers_too_large: { status: 431, title: "Request headers too large" },
  unauthenticated: { status: 401, title: "Authentication required" },
  access_denied: { status: 403, title: "Access denied" },
  payload_too_large: { status: 413, title: "Request body too large" },
  token_unavailable: { status: 503, title: "No Entra ID token could be acquired for this route" },
  overloaded: { status: 503, title: "Route is at its concurrency limit" },
  upstream_unreachable: { status: 502, title: "Upstream could not be reached" },
  upstream_timeout: { status: 504, title: "Upstream did not answer in time" },
  rate_limited: { status: 429, title: "Rate limit exceeded" },
  consent_required: { status: 403, title: "Admin consent is missing for this API" },
  interaction_required: { status: 401, title: "The user must sign in again" },
  request_timeout: { status: 408, title: "The request body stalled" },
  jwks_unavailable: { status: 503, title: "Keys to verify the caller's token cannot be had" },
  internal_error: { status: 500, title: "Internal error in the proxy" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  requestId: string;
  /** AADSTS code for token_unavailable, when Entra returned one. */
  aadsts?: string;
  hint?: string;
}

/** An error meant for the caller: carries a catalogue code and optional response headers. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly extra: { aadsts?: string; hint?: string };

  constructor(
    code: ErrorCode,
    detail: string,
    options: { headers?: Record<string, string>; aadsts?: string; hint?: string; cause?: unknown } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "ProxyError";
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.headers = options.headers ?? {};
    this.extra = {};
    if (options.aadsts) this.extra.aadsts = options.aadsts;
    if (options.hint) this.extra.hint = options.hint;
  }

  toProblem(requestId: string): ProblemBody {
    return {
      type: `urn:entra-auth-proxy:${this.code}`,
      title: ERROR_CATALOGUE[this.code].title,
      status: this.status,
      detail: this.message,
      code: this.code,
      requestId,
      ...this.extra,
    };
  }
}

/** A configuration problem found while loading or validating routes.yaml. */
export interface ConfigIssue {
  /** e.g. "routes.yaml:12:5" (file:line:col), or just the file when no position is known. */
  location: string;
  /** e.g. "routes[2].identity" */
  path: string;
  message: string;
  severity: "error" | "warning";
}

/** routes.yaml has errors; `issues` lists them. */
export class ConfigError extends Error {
  /** Stable, for callers and tests to match on instead of the message. */
  readonly code = "config_invalid";
  readonly issues: ConfigIssue[];
  constructor(issues: ConfigIssue[]) {
    super(issues.map(formatConfigIssue).join("\n"));
    this.name = "ConfigError";
    this.issues = issues;
  }
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.path ? `${issue.location} ${issue.path}` : issue.location;
  return `${where}: ${issue.severity === "warning" ? "warning: " : ""}${issue.message}`;
}
