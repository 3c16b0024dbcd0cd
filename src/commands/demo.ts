// entra-auth-proxy demo: emulator + mock Microsoft APIs + proxy in one process, with curl lines.
import { DEMO_WITH_OBO_YAML, demoUserToken, startDemoProxy, startDemoWorld } from "../demo/stack.ts";
import { createLogger } from "../observability/logger.ts";
import { type CliIO, EXIT_OK, parseCommandArgs, UsageError } from "./cli.ts";

const HELP = `Usage: entra-auth-proxy demo [--port 8080] [--admin-port 9090] [--print-config]

Starts, in one process, the built-in Entra ID emulator, mock Power Platform / PowerApps /
Power Automate / LCS APIs and the proxy, prints URLs and ready-to-paste curl lines, and runs
until Ctrl-C. Needs no Azure account and no network.
`;

function port(value: string | undefined, fallback: number, flag: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new UsageError(`${flag} must be a port number (0-65535)`);
  return n;
}

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, {
    port: { type: "string" },
    "admin-port": { type: "string" },
    "print-config": { type: "boolean" },
  });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  if (values["print-config"]) {
    io.stdout.write(DEMO_WITH_OBO_YAML);
    return EXIT_OK;
  }
  const ports = {
    proxy: port(values.port, 8080, "--port"),
    admin: port(values["admin-port"], 9090, "--admin-port"),
  };
  const world = await startDemoWorld();
  // Logs go to stderr so the banner on stdout stays readable (and parseable by tests); at the default
  // level each curl line above shows its request line, as `serve` does.
  const logger = createLogger({ level: io.env.LOG_LEVEL ?? "info", destination: process.stderr });
  const proxy = await startDemoProxy(world, logger, { ports, yaml: DEMO_WITH_OBO_YAML });
  const key = world.secrets.apiKey;
  const userToken = await demoUserToken(world);
  const p = proxy.proxyUrl;
  io.stdout.write(`entra-auth-proxy demo is running.

  proxy        ${p}
  admin        ${proxy.adminUrl}   (/healthz /readyz /metrics /status)
  Entra ID     ${world.emulator.url}   (emulator, tenant ${world.env.TENANT_ID})
  demo API key ${key}

Try:
  curl -s -H 'X-Api-Key: ${key}' '${p}/powerplatform/environmentmanagement/environments?api-version=2024-10-01'
  curl -s -H 'X-Api-Key: ${key}' '${p}/powerapps/providers/Microsoft.PowerApps/apps?api-version=2016-11-01'
  curl -s -X POST -H 'X-Api-Key: ${key}' -H 'Content-Type: application/json' -d '{"orderId":42}' ${p}/flows/order-created
  curl -s -u 'erp:${key}' -H 'x-ms-version: 2017-09-15' ${p}/lcs/databasemovement/v1/databases/project/12345
  curl -s -H 'Authorization: Bearer ${userToken}' '${p}/me/powerplatform/environmentmanagement/environments?api-version=2024-10-01'
  curl -s ${p}/powerplatform/environments          # no key: 401 problem+json
  curl -s ${proxy.adminUrl}/metrics | grep entra_proxy_

The /me/powerplatform line acts on behalf of the demo user: its bearer token (valid 8 hours) is one
the emulator minted as a web app would hold it, and the API receives a token that names that user.

Ctrl-C to stop.
`);
  await (io.stopSignal ?? new Promise<string>(() => {}));
  await proxy.close(2_000);
  await world.close();
  logger.flush();
  return EXIT_OK;
}
