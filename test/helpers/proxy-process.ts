// Runs the proxy (startProxy, not the CLI, so tests can shorten its token back-off) in a child
// process: its memory is then the proxy's alone, not the test's clients, emulator and mocks.
import { type ChildProcess, fork } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";
import type { BackoffPolicy } from "../../src/auth/tokens.ts";
import { DEMO_ROUTES_YAML, type DemoWorld, startDemoWorld } from "../../src/demo/stack.ts";
import { trustedPki } from "./pki.ts";

export type ParentRequest =
  | {
      type: "start";
      yaml: string;
      env: Record<string, string>;
      caCert: string;
      logFile: string;
      backoff?: BackoffPolicy;
    }
  | { type: "memory" }
  | { type: "watch-old-space" }
  | { type: "old-space-added" }
  | { type: "stop" };

export type ChildRequest =
  | { type: "ready"; proxyUrl: string; adminUrl: string }
  | { type: "memory"; usage: NodeJS.MemoryUsage }
  | { type: "old-space-added"; bytes: number; shrinks: number };

export interface ProxyProcess {
  pid: number;
  proxyUrl: string;
  adminUrl: string;
  /** process.memoryUsage() of the proxy after full garbage collections. */
  memory(): Promise<NodeJS.MemoryUsage>;
  /**
   * Sums what the proxy's old generation gains (promoted and old-allocated objects) every 2 ms until
   * stop(). Samples in which it shrank (a major collection had run) are counted, not subtracted.
   */
  watchOldSpace(): { stop(): Promise<{ bytes: number; shrinks: number }> };
}

/** VmRSS of a process, from /proc. */
export function residentBytes(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1];
  return Number(kb) * 1024;
}

const CHILD = new URL("./proxy-process-child.ts", import.meta.url).pathname;

export async function startProxyProcess(
  t: TestContext,
  options: { yaml: string; env: Record<string, string>; caCert: string; backoff?: BackoffPolicy },
): Promise<ProxyProcess> {
  const dir = await mkdtemp(join(tmpdir(), "eap-proxy-"));
  const child: ChildProcess = fork(CHILD, {
    execArgv: ["--expose-gc"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.send({ type: "stop" } satisfies ParentRequest);
      await Promise.race([once(child, "exit"), new Promise((r) => setTimeout(r, 5_000))]);
      child.kill("SIGKILL");
    }
    await rm(dir, { recursive: true, force: true });
  });
  const next = () =>
    new Promise<ChildRequest>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`proxy process exited (${code})`));
      child.once("exit", onExit);
      child.once("message", (m: ChildRequest) => {
        child.off("exit", onExit);
        resolve(m);
      });
    });
  /** Sends a request and waits for the child's answer of the given type. */
  const ask = async <T extends ChildRequest["type"]>(
    request: ParentRequest,
    type: T,
  ): Promise<Extract<ChildRequest, { type: T }>> => {
    const answer = next();
    child.send(request);
    const m = await answer;
    if (m.type !== type) throw new Error(`expected ${type} from the proxy process, got ${m.type}`);
    return m as Extract<ChildRequest, { type: T }>;
  };
  const ready = await ask({ type: "start", ...options, logFile: join(dir, "proxy.log") }, "ready");
  return {
    pid: child.pid!,
    proxyUrl: ready.proxyUrl,
    adminUrl: ready.adminUrl,
    async memory() {
      return (await ask({ type: "memory" }, "memory")).usage;
    },
    watchOldSpace() {
      child.send({ type: "watch-old-space" } satisfies ParentRequest);
      return { stop: () => ask({ type: "old-space-added" }, "old-space-added") };
    },
  };
}

/** The demo world (emulator, mocks) in this process and the demo routes' proxy in its own. */
export async function startIsolatedStack(
  t: TestContext,
  options: { tokenLifetimeSec?: number; backoff?: BackoffPolicy; yaml?: string } = {},
): Promise<{ world: DemoWorld; proxy: ProxyProcess }> {
  const worldOptions: Parameters<typeof startDemoWorld>[0] = { pki: await trustedPki() };
  if (options.tokenLifetimeSec !== undefined) worldOptions.tokenLifetimeSec = options.tokenLifetimeSec;
  const world = await startDemoWorld(worldOptions);
  t.after(() => world.close());
  const proxyOptions: Parameters<typeof startProxyProcess>[1] = {
    yaml: options.yaml ?? DEMO_ROUTES_YAML,
    env: world.env,
    caCert: world.pki.caCert,
  };
  if (options.backoff) proxyOptions.backoff = options.backoff;
  return { world, proxy: await startProxyProcess(t, proxyOptions) };
}
