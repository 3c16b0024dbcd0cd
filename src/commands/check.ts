// entra-auth-proxy check [--config routes.yaml] [--online]
import { describeAccess } from "../config/describe.ts";
import { describeEgress } from "../config/egress.ts";
import type { ProxyConfig, RouteConfig } from "../config/types.ts";
import { preflight } from "../server/start.ts";
import { type CliIO, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, loadConfigFor, parseCommandArgs } from "./cli.ts";
import { reportRouteToken, type TokenCache } from "./token-report.ts";

const HELP = `Usage: entra-auth-proxy check [--config routes.yaml] [--online]

Validates routes.yaml and prints every problem at once, as file:line:column path: message
(the first 100, then how many more there are). routes.yaml may be at most 1 MiB.
The config path comes from --config, else $ROUTES_FILE, else ./routes.yaml.

Options:
  -c, --config <path>  the routes.yaml to check
      --online         also acquire one token per identity and scope and print, per route, its
                       claims (aud, tid, appid/upn, roles/scp, expiry) and a verdict — never the token
  -h, --help           show this help

Exit codes: 0 valid (one summary line per route on stdout, warnings on stderr),
1 errors found (all printed on stderr), 2 runtime failure (--online: a token could not be
acquired or does not fit its route).
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: "string", short: "c" },
    online: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  const { file, config } = await loadConfigFor(values.config, io);
  if (!config) return EXIT_USAGE;

  const problems = await preflight(config, io.env);
  for (const problem of problems) io.stderr.write(`${file}: ${problem}\n`);
  if (problems.length > 0) return EXIT_USAGE;

  for (const route of config.routes) io.stdout.write(`${describeRoute(route, config)}\n`);
  // Only when a proxy is set: without one the output stays one line per route.
  if (config.egress) io.stdout.write(`${describeEgress(config.egress)}\n`);
  for (const line of describeLimits(config)) io.stdout.write(`${line}\n`);
  if (!values.online) return EXIT_OK;
  io.stdout.write("\nTokens:\n");
  const cache: TokenCache = new Map();
  let allOk = true;
  for (const route of config.routes) {
    if (!(await reportRouteToken(route, config, io, cache))) allOk = false;
  }
  return allOk ? EXIT_OK : EXIT_RUNTIME;
}

/** One line per consumer (its routes and rate limit) and per identity with limits. */
export function describeLimits(config: Pick<ProxyConfig, "identities" | "consumers" | "routes">): string[] {
  const lines: string[] = [];
  for (const c of Object.values(config.consumers)) {
    const routes = config.routes.filter((r) => r.access.consumers?.includes(c.name)).map((r) => r.prefix);
    const rate = c.rateLimit
      ? ` rate limit ${c.rateLimit.requests} per ${c.rateLimit.perMs / 1000} s (burst ${c.rateLimit.burst}) per route`
      : "";
    lines.push(
      `consumer ${c.name} (${c.apiKeys.length} keys) routes ${routes.join(", ") || "(none)"}${rate}`,
    );
  }
  for (const identity of Object.values(config.identities)) {
    const l = identity.limits;
    if (!l) continue;
    const parts: string[] = [];
    if (l.concurrent !== undefined) parts.push(`${l.concurrent} concurrent`);
    if (l.window) parts.push(`${l.window.requests} per ${l.window.perMs / 1000} s`);
    parts.push(`waits up to ${l.maxWaitMs} ms`);
    lines.push(`identity ${identity.name} limits ${parts.join(", ")}`);
  }
  return lines;
}

/** `/powerplatform → https://api.powerplatform.com scope … identity platform-app (clientSecret) access apiKeys[2]` */
export function describeRoute(route: RouteConfig, config: Pick<ProxyConfig, "identities">): string {
  const query = route.pinnedQuery?.length ? `?${new URLSearchParams(route.pinnedQuery).toString()}` : "";
  const kind = config.identities[route.identity]?.credential.kind ?? "unknown";
  const onBehalfOf = route.onBehalfOf ? " on behalf of callers" : "";
  return `${route.prefix} → ${route.upstream}${query} scope ${route.scope} identity ${route.identity} (${kind})${onBehalfOf} access ${describeAccess(route.access)}`;
}
