// entra-auth-proxy token --route <prefix> [--raw] [--config …]
import { TokenAcquisitionError } from "../auth/credentials.ts";
import {
  type CliIO,
  EXIT_OK,
  EXIT_RUNTIME,
  EXIT_USAGE,
  loadConfigFor,
  parseCommandArgs,
  UsageError,
} from "./cli.ts";
import { acquireForRoute, ON_BEHALF_OF_NOTE, reportRouteToken } from "./token-report.ts";

const HELP = `Usage: entra-auth-proxy token --route <prefix> [--raw] [--config routes.yaml]

Acquires the token that route would use and prints its claims (aud, tid, appid/upn, roles/scp,
expiry). --raw prints the token itself on stdout (with a warning on stderr): treat it as a secret.
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    config: { type: "string", short: "c" },
    route: { type: "string" },
    raw: { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  if (!values.route) throw new UsageError("--route <prefix> is required");
  const { config } = await loadConfigFor(values.config, io, { quiet: true });
  if (!config) return EXIT_USAGE;
  const wanted = values.route.length > 1 ? values.route.replace(/\/$/, "") : values.route;
  const route = config.routes.find((r) => r.prefix === wanted);
  if (!route) {
    io.stderr.write(
      `no route with prefix ${wanted}; routes: ${config.routes.map((r) => r.prefix).join(", ")}\n`,
    );
    return EXIT_USAGE;
  }
  if (route.onBehalfOf) {
    io.stderr.write(`${ON_BEHALF_OF_NOTE(route.prefix)}\n`);
    return EXIT_USAGE;
  }
  if (!values.raw) return (await reportRouteToken(route, config, io, new Map())) ? EXIT_OK : EXIT_RUNTIME;
  try {
    const token = await acquireForRoute(route, config, io.env, new Map());
    io.stderr.write("warning: the token below grants access to the API; do not paste it anywhere shared\n");
    io.stdout.write(`${token.accessToken}\n`);
    return EXIT_OK;
  } catch (err) {
    if (!(err instanceof TokenAcquisitionError)) throw err;
    io.stderr.write(`token acquisition failed: ${err.failure.message}\n  hint: ${err.failure.hint}\n`);
    return EXIT_RUNTIME;
  }
}
