// Starts the emulator, the mock Microsoft APIs and a proxy on 127.0.0.1 port 0 for one test,
// captures the proxy's log lines, and closes everything in t.after.
import type { TestContext } from "node:test";
import type { BackoffPolicy } from "../../src/auth/tokens.ts";
import { type DemoWorld, startDemoProxy, startDemoWorld } from "../../src/demo/stack.ts";
import { createLogger } from "../../src/observability/logger.ts";
import type { RunningProxy } from "../../src/server/start.ts";
import { trustedPki } from "./pki.ts";

export interface Stack {
  world: DemoWorld;
  proxy: RunningProxy;
  /** Every log line the proxy wrote, raw JSON text. */
  logs: string[];
  /** fetch against the proxy with the demo API key (unless headers say otherwise). */
  call(path: string, init?: RequestInit & { key?: string | false }): Promise<Response>;
  metrics(): Promise<string>;
}

export async function startStack(
  t: TestContext,
  options: {
    yaml?: string;
    env?: Record<string, string>;
    tokenLifetimeSec?: number;
    now?: () => number;
    backoff?: BackoffPolicy;
    rejectionRenewalIntervalMs?: number;
    /** Runs after the emulator and mocks start and before the proxy does (register apps, write files). */
    prepare?: (
      world: DemoWorld,
    ) => Promise<Record<string, string> | undefined> | Record<string, string> | undefined;
  } = {},
): Promise<Stack> {
  const worldOptions: Parameters<typeof startDemoWorld>[0] = { pki: await trustedPki() };
  if (options.tokenLifetimeSec !== undefined) worldOptions.tokenLifetimeSec = options.tokenLifetimeSec;
  const world = await startDemoWorld(worldOptions);
  t.after(() => world.close());
  const extraEnv = (await options.prepare?.(world)) ?? {};
  const logs: string[] = [];
  const logger = createLogger({ level: "debug", destination: { write: (line: string) => logs.push(line) } });
  const proxyOptions: Parameters<typeof startDemoProxy>[2] = { ports: { proxy: 0, admin: 0 } };
  if (options.yaml !== undefined) proxyOptions.yaml = options.yaml;
  proxyOptions.env = { ...extraEnv, ...options.env };
  if (options.now !== undefined) proxyOptions.now = options.now;
  if (options.backoff !== undefined) proxyOptions.backoff = options.backoff;
  if (options.rejectionRenewalIntervalMs !== undefined) {
    proxyOptions.rejectionRenewalIntervalMs = options.rejectionRenewalIntervalMs;
  }
  const proxy = await startDemoProxy(world, logger, proxyOptions);
  t.after(() => proxy.close(100));
  return {
    world,
    proxy,
    logs,
    call(path, init = {}) {
      const { key, ...rest } = init;
      const headers = new Headers(rest.headers);
      if (key !== false && !headers.has("x-api-key")) headers.set("x-api-key", key ?? world.secrets.apiKey);
      return fetch(`${proxy.proxyUrl}${path}`, { ...rest, headers });
    },
    async metrics() {
      return (await fetch(`${proxy.adminUrl}/metrics`)).text();
    },
  };
}

/** The value of one Prometheus sample, or undefined. `labels` must match exactly as rendered. */
export function metricValue(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf("}"));
    const found: Record<string, string> = {};
    for (const m of body.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[m[1]!] = m[2]!;
    if (Object.entries(labels).every(([k, v]) => found[k] === v))
      return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return undefined;
}

/** routes.yaml lines for the demo app registration as identity `platform-app`, against the emulator; routes follow. */
export const PLATFORM_APP_YAML = `cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
routes:
`;
