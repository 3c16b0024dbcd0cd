// entra-auth-proxy serve [--config routes.yaml]
import { UnsupportedAccessError } from "../access/check.ts";
import { UnsupportedCredentialError } from "../auth/credentials.ts";
import { loadConfig } from "../config/load.ts";
import { formatConfigIssue } from "../errors.ts";
import { createLogger } from "../observability/logger.ts";
import { startProxy } from "../server/start.ts";
import { type CliIO, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, configPath, parseCommandArgs } from "./cli.ts";

const HELP = `Usage: entra-auth-proxy serve [--config routes.yaml]

Runs the proxy. The config path comes from --config, else $ROUTES_FILE, else ./routes.yaml.
SIGTERM/SIGINT: readiness turns 503, in-flight requests finish (listen.drainTimeoutMs), exit 0.
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, { config: { type: "string", short: "c" } });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  const file = configPath(values.config, io.env);
  const { config, issues } = await loadConfig(file, io.env);
  for (const issue of issues) io.stderr.write(`${formatConfigIssue(issue)}\n`);
  if (!config) return EXIT_USAGE;

  const logger = createLogger({ level: io.env.LOG_LEVEL ?? "info" });
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  try {
    proxy = await startProxy(config, { logger, env: io.env });
  } catch (err) {
    if (err instanceof UnsupportedCredentialError || err instanceof UnsupportedAccessError) {
      io.stderr.write(`${file}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`entra-auth-proxy serve: cannot start: ${(err as Error).message}\n`);
    return EXIT_RUNTIME;
  }
  const signal = await (io.stopSignal ?? new Promise<string>(() => {}));
  logger.info({ msg: "shutting down", signal, drainTimeoutMs: config.listen.drainTimeoutMs });
  await proxy.close();
  logger.info({ msg: "stopped" });
  logger.flush();
  return EXIT_OK;
}
