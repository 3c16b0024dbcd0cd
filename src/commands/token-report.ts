// Acquires a route's token once and reports its claims against the route (check --online, token).
import { audienceVerdict, formatSummary, summariseToken } from "../auth/claims.ts";
import { type AcquiredToken, createTokenSource, TokenAcquisitionError } from "../auth/credentials.ts";
import type { ProxyConfig, RouteConfig } from "../config/types.ts";
import { EgressAgents } from "../egress/agents.ts";
import type { CliIO } from "./cli.ts";

export type TokenCache = Map<string, Promise<AcquiredToken>>;

/** One token per (identity, scope), however many routes share it. */
export function acquireForRoute(
  route: RouteConfig,
  config: ProxyConfig,
  env: NodeJS.ProcessEnv,
  cache: TokenCache,
) {
  const key = `${route.identity}\u0000${route.scope}`;
  let pending = cache.get(key);
  if (!pending) {
    const identity = config.identities[route.identity]!;
    const egress = new EgressAgents(config.egress);
    pending = createTokenSource(identity, config.cloud, route.scope, { env, egress }).acquire();
    cache.set(key, pending);
  }
  return pending;
}

/** Prints the claims summary and verdict for one route; returns whether the route's token is usable. */
/** Why no token is shown for an on-behalf-of route: it exists only for a caller's verified token. */
export const ON_BEHALF_OF_NOTE = (prefix: string) =>
  `${prefix} acts on behalf of its callers: its tokens are exchanged from each caller's own token at request time, so none can be acquired here`;

export async function reportRouteToken(
  route: RouteConfig,
  config: ProxyConfig,
  io: CliIO,
  cache: TokenCache,
): Promise<boolean> {
  io.stdout.write(`${route.prefix} (identity ${route.identity}, scope ${route.scope})\n`);
  if (route.onBehalfOf) {
    io.stdout.write(`  skipped: ${ON_BEHALF_OF_NOTE(route.prefix)}\n`);
    return true;
  }
  try {
    const token = await acquireForRoute(route, config, io.env, cache);
    const summary = summariseToken(token.accessToken);
    const verdict = audienceVerdict(summary, route.scope, route.prefix);
    io.stdout.write(`  ${formatSummary(summary)}\n  ${verdict.ok ? "ok" : "MISMATCH"}: ${verdict.text}\n`);
    return verdict.ok;
  } catch (err) {
    if (!(err instanceof TokenAcquisitionError)) throw err;
    io.stdout.write(`  FAILED: ${err.failure.message}\n  hint: ${err.failure.hint}\n`);
    return false;
  }
}
