// CLI entry: parse the command name and hand the rest of argv to commands/*. Nothing else lives here.
import { type CliIO, EXIT_RUNTIME, EXIT_USAGE, UsageError } from "./commands/cli.ts";

type Command = { summary: string; load: () => Promise<{ run(argv: string[], io: CliIO): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  serve: { summary: "run the proxy", load: () => import("./commands/serve.ts") },
  check: { summary: "validate routes.yaml and print every error", load: () => import("./commands/check.ts") },
  token: {
    summary: "acquire a route's token and print its claims",
    load: () => import("./commands/token.ts"),
  },
  "hash-key": {
    summary: "generate an API key and its sha256 form",
    load: () => import("./commands/hash-key.ts"),
  },
  demo: {
    summary: "run proxy + Entra ID emulator + mock APIs locally",
    load: () => import("./commands/demo.ts"),
  },
};

export const USAGE = `Usage: entra-auth-proxy <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join("\n")}

Run 'entra-auth-proxy <command> --help' for the options of a command.
`;

export async function main(argv: string[], io: CliIO = defaultIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    (name === undefined ? io.stderr : io.stdout).write(USAGE);
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`entra-auth-proxy: unknown command "${name}"\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  try {
    const mod = await command.load();
    return await mod.run(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr.write(`entra-auth-proxy ${name}: ${err.message}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`entra-auth-proxy ${name}: ${(err as Error).stack ?? String(err)}\n`);
    return EXIT_RUNTIME;
  }
}

function defaultIO(): CliIO {
  const stopSignal = new Promise<string>((resolve) => {
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.once(sig, () => resolve(sig));
  });
  return { stdout: process.stdout, stderr: process.stderr, env: process.env, stopSignal };
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
