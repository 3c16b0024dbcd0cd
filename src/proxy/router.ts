// Picks the route for a request path (longest segment-bounded prefix) and refuses paths that could
// leave the route: dot segments, encoded slashes, backslashes, NUL, double encoding.
import picomatch from "picomatch";
import type { RouteConfig } from "../config/types.ts";
import { ProxyError } from "../errors.ts";

export interface RouteMatch<R> {
  route: R;
  /** Path after the prefix, always starting with "/" or empty. Still percent-encoded as received. */
  rest: string;
  /** Query string including "?", or "". */
  query: string;
}

/** Splits the request target; refuses anything but origin-form ("/path?query"). */
export function splitTarget(url: string): { path: string; query: string } {
  if (!url.startsWith("/")) {
    throw new ProxyError("bad_path", "request target must be a path (origin-form)");
  }
  const q = url.indexOf("?");
  return q === -1 ? { path: url, query: "" } : { path: url.slice(0, q), query: url.slice(q) };
}

// "/", "\\" or NUL once decoded.
const isForbiddenDecoded = (s: string) => s.includes("/") || s.includes("\\") || s.includes("\u0000");
const MAY_ESCAPE = /[.%\\]/;
const ENCODED_AGAIN = /%(2e|2f|5c|00|25)/i;

/**
 * Checks every segment of the raw path. A segment is refused when, decoded, it is "." or "..",
 * contains "/", "\" or NUL, is not valid UTF-8/percent-encoding, or still holds an encoded
 * dot/slash/backslash/percent after decoding (double encoding).
 */
export function assertSafePath(path: string): void {
  // Most paths hold none of ".", "%" or "\": nothing to decode or compare, no segment array to build.
  if (!MAY_ESCAPE.test(path)) return;
  if (path.includes("\\")) throw new ProxyError("bad_path", "backslash in path");
  const segments = path.split("/");
  for (const raw of segments) {
    if (raw === "") continue;
    let decoded = raw;
    if (raw.includes("%")) {
      try {
        decoded = decodeURIComponent(raw);
      } catch {
        throw new ProxyError("bad_path", "malformed percent-encoding in path");
      }
      if (isForbiddenDecoded(decoded)) throw new ProxyError("bad_path", "encoded separator in path");
      if (ENCODED_AGAIN.test(decoded)) throw new ProxyError("bad_path", "double-encoded path");
    }
    if (decoded === "." || decoded === "..") throw new ProxyError("bad_path", "dot segment in path");
  }
}

export class Router<R extends Pick<RouteConfig, "prefix">> {
  /** Longest prefix first, so the first match wins. */
  private readonly table: Array<{ prefix: string; route: R }>;

  constructor(routes: readonly R[]) {
    this.table = routes
      .map((route) => ({ prefix: route.prefix === "/" ? "" : route.prefix, route }))
      .sort((a, b) => b.prefix.length - a.prefix.length);
  }

  /** Matches a request target; throws ProxyError bad_path / route_not_found. */
  match(url: string): RouteMatch<R> {
    const { path, query } = splitTarget(url);
    assertSafePath(path);
    for (const entry of this.table) {
      const p = entry.prefix;
      if (path.startsWith(p) && (path.length === p.length || path.charCodeAt(p.length) === 47) /* "/" */) {
        return { route: entry.route, rest: path.slice(p.length), query };
      }
    }
    throw new ProxyError("route_not_found", "no route matches this path");
  }
}

/** Compiles a route's `paths:` allowlist; undefined means every path is allowed. */
export function compilePathAllowlist(
  globs: readonly string[] | undefined,
): ((rest: string) => boolean) | undefined {
  if (!globs || globs.length === 0) return undefined;
  const isMatch = picomatch(globs as string[], { dot: false });
  return (rest) => {
    let decoded: string;
    try {
      decoded = decodeURIComponent(rest || "/");
    } catch {
      return false;
    }
    return isMatch(decoded);
  };
}
