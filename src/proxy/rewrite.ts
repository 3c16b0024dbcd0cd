// Rewrites upstream URLs in response headers (Location, Operation-Location, Azure-AsyncOperation)
// so that callers follow them through the proxy, which attaches the token again.
import type { OutgoingHttpHeaders } from "node:http";

export const REWRITTEN_HEADERS = ["location", "operation-location", "azure-asyncoperation"] as const;

/**
 * Maps an absolute upstream URL under `upstreamBase` to the same place under `proxyBase`
 * (e.g. https://api.powerplatform.com/x/y → https://proxy.example/powerplatform/x/y).
 * Anything else is returned unchanged.
 */
export function rewriteUpstreamUrl(value: string, upstreamBase: URL, proxyBase: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return value;
  }
  if (url.origin !== upstreamBase.origin) return value;
  const basePath = upstreamBase.pathname.replace(/\/$/, "");
  if (basePath && url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) return value;
  return `${proxyBase}${url.pathname.slice(basePath.length)}${url.search}${url.hash}`;
}

/** An upstream base URL and where callers reach it through the proxy; the first that applies wins. */
export type UrlMapping = readonly [upstreamBase: URL, proxyBase: string];

export function rewriteWithMappings(value: string, mappings: readonly UrlMapping[]): string {
  for (const [upstreamBase, proxyBase] of mappings) {
    const rewritten = rewriteUpstreamUrl(value, upstreamBase, proxyBase);
    if (rewritten !== value) return rewritten;
  }
  return value;
}

export function rewriteLocationHeaders(headers: OutgoingHttpHeaders, mappings: readonly UrlMapping[]): void {
  for (const name of REWRITTEN_HEADERS) {
    const value = headers[name];
    if (typeof value === "string") headers[name] = rewriteWithMappings(value, mappings);
  }
}

/**
 * Flow routes: the trigger URL is `…/workflows/<id>/triggers/<name>/paths/invoke`; run and operation
 * URLs (the 202 Location of the asynchronous response pattern) live under `…/workflows/<id>`. The
 * proxy exposes that root under this reserved segment after the route prefix.
 */
export const WORKFLOW_SEGMENT = "/_workflow";

export function workflowRootOf(triggerUrl: URL): URL | undefined {
  const at = triggerUrl.pathname.indexOf("/triggers/");
  if (at === -1) return undefined;
  const root = new URL(triggerUrl.href);
  root.pathname = triggerUrl.pathname.slice(0, at);
  root.search = "";
  return root;
}

/**
 * The query sent upstream for a route with pinned parameters (a flow trigger's api-version, sp, sv …):
 * the caller's parameters that are not pinned, then the pinned ones — so the pinned values win.
 */
export function withPinnedQuery(query: string, pinned: ReadonlyArray<readonly [string, string]>): string {
  if (pinned.length === 0) return query;
  const pinnedNames = new Set(pinned.map(([name]) => name.toLowerCase()));
  const params = new URLSearchParams(query);
  const out = new URLSearchParams();
  for (const [name, value] of params) if (!pinnedNames.has(name.toLowerCase())) out.append(name, value);
  for (const [name, value] of pinned) out.append(name, value);
  return `?${out.toString()}`;
}
