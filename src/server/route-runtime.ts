// A route as the request path uses it: its config with everything per-request work needs compiled
// once, plus the state that outlives a config reload (in-flight count, a flow's status URLs).
import { LRUCache } from "lru-cache";
import type { AccessCheck } from "../access/check.ts";
import type { OboTokenCache } from "../auth/obo-tokens.ts";
import type { BearerTokens } from "../auth/tokens.ts";
import type { RouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors.ts";
import type { RouteLimits } from "../limits/limits.ts";
import { WORKFLOW_SEGMENT, workflowRootOf } from "../proxy/rewrite.ts";
import { compilePathAllowlist } from "../proxy/router.ts";

/** How many status URLs a flow route remembers (the oldest are forgotten first). */
const FLOW_STATUS_URLS_KEPT = 10_000;

/** State of a route prefix that survives reloads, so limits hold across them. */
export class RouteState {
  /** Requests on this prefix from routing to the end of the response, across configs. */
  inFlight = 0;
  /** flow routes: the workflow status URLs (path after the prefix, with query) the flow returned. */
  private readonly statusUrls = new LRUCache<string, true>({ max: FLOW_STATUS_URLS_KEPT });

  rememberStatusUrl(pathAndQuery: string): void {
    this.statusUrls.set(pathAndQuery, true);
  }

  isStatusUrl(pathAndQuery: string): boolean {
    return this.statusUrls.has(pathAndQuery);
  }
}

/** One RouteState per prefix, handed to each config's routes so a reload keeps the counts. */
export class RouteStates {
  private readonly byPrefix = new Map<string, RouteState>();

  /** The states for `prefixes`; prefixes no longer configured are forgotten once idle. */
  forConfig(prefixes: readonly string[]): Map<string, RouteState> {
    const wanted = new Set(prefixes);
    for (const [prefix, state] of this.byPrefix) {
      if (!wanted.has(prefix) && state.inFlight === 0) this.byPrefix.delete(prefix);
    }
    const out = new Map<string, RouteState>();
    for (const prefix of prefixes) {
      let state = this.byPrefix.get(prefix);
      if (!state) {
        state = new RouteState();
        this.byPrefix.set(prefix, state);
      }
      out.set(prefix, state);
    }
    return out;
  }

  all(): Array<[prefix: string, state: RouteState]> {
    return [...this.byPrefix];
  }
}

export interface RouteRuntime {
  config: RouteConfig;
  prefix: string;
  /** Metric/log label: the prefix. */
  label: string;
  target: URL;
  /** Where paths after the prefix are joined to `target`. */
  targetBase: UpstreamBase;
  /** flow routes: the workflow's root, reached only for status URLs the flow returned. */
  workflowRoot: URL | undefined;
  workflowBase: UpstreamBase | undefined;
  methods: ReadonlySet<string>;
  allowPath: ((rest: string) => boolean) | undefined;
  checkAccess: AccessCheck;
  /** The route's own token; on-behalf-of routes use `obo` instead. */
  tokens: BearerTokens;
  /** onBehalfOf routes: each caller's tokens, exchanged from its verified inbound JWT. */
  obo: OboTokenCache | undefined;
  state: RouteState;
  /** Caller budgets, the identity's limits and pauses (src/limits). */
  limits: RouteLimits;
}

/** What a route is built with besides its config. */
export interface RouteParts {
  checkAccess: AccessCheck;
  /** undefined for an on-behalf-of route, which passes `obo`. */
  tokens: BearerTokens | undefined;
  obo: OboTokenCache | undefined;
  state: RouteState;
  limits: RouteLimits;
}

export function routeRuntime(config: RouteConfig, parts: RouteParts): RouteRuntime {
  const { checkAccess, tokens, obo, state, limits } = parts;
  const target = new URL(config.upstream);
  const workflowRoot = config.service === "flow" ? workflowRootOf(target) : undefined;
  return {
    config,
    prefix: config.prefix,
    label: config.prefix,
    target,
    targetBase: new UpstreamBase(target),
    workflowRoot,
    workflowBase: workflowRoot && new UpstreamBase(workflowRoot),
    methods: new Set(config.methods),
    allowPath: compilePathAllowlist(config.paths),
    checkAccess,
    tokens: tokens ?? NO_ROUTE_TOKEN,
    obo,
    state,
    limits,
  };
}

/** An upstream base URL as text, made once per route, that paths after the prefix are joined to. */
export class UpstreamBase {
  /** Origin and base path, without a trailing slash. */
  private readonly text: string;
  /** How every URL on the base's origin begins. */
  private readonly originSlash: string;

  constructor(base: URL) {
    this.text = base.origin + (base.pathname === "/" ? "" : base.pathname.replace(/\/$/, ""));
    this.originSlash = `${base.origin}/`;
  }

  /**
   * The upstream URL for a path after the prefix (with query): joined as text, so a path starting with
   * "//" stays a path on the upstream's host instead of naming another host.
   */
  join(pathAndQuery: string): URL {
    const url = new URL(this.text + pathAndQuery);
    if (!url.href.startsWith(this.originSlash)) {
      throw new ProxyError("bad_path", "the path would leave the route's upstream");
    }
    return url;
  }
}

/** An on-behalf-of route has no token of its own: only its callers' (never reached: see front-door attachToken). */
const NO_ROUTE_TOKEN: BearerTokens = {
  peek: () => undefined,
  get: () => Promise.reject(new Error("an on-behalf-of route has no token of its own")),
  renewAfterRejection: () => Promise.reject(new Error("an on-behalf-of route has no token of its own")),
};

export function isWorkflowPath(rest: string): boolean {
  return rest === WORKFLOW_SEGMENT || rest.startsWith(`${WORKFLOW_SEGMENT}/`);
}

/**
 * The path after the prefix (with query) at which callers poll an upstream status URL, when it lies
 * under the flow's workflow root; else undefined.
 */
export function workflowPathOf(route: RouteRuntime, upstreamUrl: string): string | undefined {
  const root = route.workflowRoot;
  if (!root) return undefined;
  let url: URL;
  try {
    url = new URL(upstreamUrl);
  } catch {
    return undefined;
  }
  if (url.origin !== root.origin || !url.pathname.startsWith(`${root.pathname}/`)) return undefined;
  return `${WORKFLOW_SEGMENT}${url.pathname.slice(root.pathname.length)}${url.search}`;
}
