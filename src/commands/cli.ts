// What every command receives: its own argv (after the command name), output streams and environment.
// Commands return an exit code (design.md: 0 ok, 1 config/usage error, 2 runtime failure).
import { type ParseArgsConfig, parseArgs } from "node:util";
import { loadConfig } from "../config/load.ts";
import type { ProxyConfig } from "../config/types.ts";
import { formatConfigIssue } from "../errors.ts";

export interface CliIO {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  env: NodeJS.ProcessEnv;
  /** Resolves when the command should stop (SIGINT/SIGTERM for long-running commands). */
  stopSignal?: Promise<string>;
}

export const EXIT_OK = 0;
export const EXIT_USAGE = 1;
export const EXIT_RUNTIME = 2;

export class UsageError extends Error {
  override name = "UsageError";
  readonly code = "usage";
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with strict unknown-flag rejection and a `--help` flag on every command. */
export function parseCommandArgs<O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** `--config` flag, else ROUTES_FILE, else ./routes.yaml. */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.ROUTES_FILE ?? "routes.yaml";
}

/**
 * Loads the config named by `--config` / ROUTES_FILE / ./routes.yaml and prints its issues on stderr
 * (errors always, warnings unless `quiet`). `config` is undefined when there was any error.
 */
export async function loadConfigFor(
  flag: string | undefined,
  io: CliIO,
  options: { quiet?: boolean } = {},
): Promise<{ file: string; config: ProxyConfig | undefined }> {
  const file = configPath(flag, io.env);
  const { config, issues } = await loadConfig(file, io.env);
  for (const issue of issues) {
    if (issue.severity === "error" || !options.quiet) io.stderr.write(`${formatConfigIssue(issue)}\n`);
  }
  return { file, config };
}
