// The checks a request passes before it may use a route, shared by the proxy's front door and the
// forward-auth listener so both refuse the same requests with the same problem: the flow workflow
// rule, the method allowlist (methods tunnelled in override headers included) and the path allowlist,
// the upstream URL, and the access decision's problem.
import type { IncomingHttpHeaders } from "node:http";
import type { AccessDecision } from "../access/check.ts";
import { ProxyError } from "../errors.ts";
import { WORKFLOW_SEGMENT, withPinnedQuery } from "../proxy/rewrite.ts";
import type { RouteMatch } from "../proxy/router.ts";
import { isWorkflowPath, type RouteRuntime } from "./route-runtime.ts";

/**
 * Headers that ask a server to run another method than the request's own (OData and SharePoint honour
 * X-HTTP-Method): a route's method allowlist holds for the methods they name too.
 */
const METHOD_OVERRIDES = ["x-http-method", "x-http-method-override", "x-method-override"] as const;

/** The first method-override header naming a method that `allowed` refuses, if any. */
function refusedOverride(
  headers: IncomingHttpHeaders,
  allowed: (method: string) => boolean,
): string | undefined {
  for (const name of METHOD_OVERRIDES) {
    const value = headers[name];
    if (value === undefined) continue;
    // Repeated headers arrive joined with ", ", which names no method and is refused.
    for (const named of Array.isArray(value) ? value : [value]) {
      const method = named.trim().toUpperCase();
      // MERGE is OData v3's (and SharePoint's) name for a partial update: PATCH.
      if (!allowed(method === "MERGE" ? "PATCH" : method)) return name;
    }
  }
  return undefined;
}

/**
 * Where a matched request goes upstream; throws ProxyError when its method (or a method its headers
 * tunnel) or its path may not use the route.
 */
export function upstreamFor(
  match: RouteMatch<RouteRuntime>,
  method: string,
  headers: IncomingHttpHeaders,
): URL {
  const r = match.route;
  if (r.workflowRoot && isWorkflowPath(match.rest)) {
    // A flow's workflow is reachable only by GET on the exact status URLs the flow returned.
    if (method !== "GET" || refusedOverride(headers, (m) => m === "GET") !== undefined) {
      throw new ProxyError("method_not_allowed", "status URLs of a flow are polled with GET", {
        headers: { allow: "GET" },
      });
    }
    const pathAndQuery = match.rest + match.query;
    if (!r.state.isStatusUrl(pathAndQuery)) {
      throw new ProxyError("bad_path", "not a status URL this flow returned");
    }
    return r.workflowBase!.join(pathAndQuery.slice(WORKFLOW_SEGMENT.length));
  }
  if (!r.methods.has(method)) {
    throw new ProxyError("method_not_allowed", `${method} is not allowed on this route`, {
      headers: { allow: [...r.methods].join(", ") },
    });
  }
  const override = refusedOverride(headers, (m) => r.methods.has(m));
  if (override !== undefined) {
    throw new ProxyError("method_not_allowed", `${override} names a method not allowed on this route`, {
      headers: { allow: [...r.methods].join(", ") },
    });
  }
  if (r.allowPath && !r.allowPath(match.rest)) {
    throw new ProxyError("bad_path", "this path is not in the route's allowlist");
  }
  const pinned = r.config.pinnedQuery;
  return r.targetBase.join(match.rest + (pinned ? withPinnedQuery(match.query, pinned) : match.query));
}

/** The problem a refused access decision is answered with. */
export function accessRefusal(decision: Extract<AccessDecision, { allowed: false }>): ProxyError {
  const headers: Record<string, string> = {};
  if (decision.challenge) headers["www-authenticate"] = decision.challenge;
  if (decision.retryAfter !== undefined) headers["retry-after"] = String(decision.retryAfter);
  const message =
    decision.code === "unauthenticated"
      ? "credentials required"
      : decision.code === "jwks_unavailable"
        ? "the keys to verify the caller's token cannot be fetched"
        : "access denied";
  return new ProxyError(decision.code, message, { headers });
}
