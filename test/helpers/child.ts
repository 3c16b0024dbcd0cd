// Runs `entra-auth-proxy serve` as a real child process and reads its JSON log lines.
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

export interface ServeChild {
  child: ChildProcessWithoutNullStreams;
  proxyUrl: string;
  adminUrl: string;
  configFile: string;
  lines: Array<Record<string, unknown>>;
  /** Resolves with the first log line matching `predicate` (waits up to `ms`). */
  waitFor(
    predicate: (line: Record<string, unknown>) => boolean,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function startServeChild(
  t: TestContext,
  yaml: string,
  env: Record<string, string>,
  caCert: string,
): Promise<ServeChild> {
  const dir = await mkdtemp(join(tmpdir(), "eap-serve-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const configFile = join(dir, "routes.yaml");
  await writeFile(configFile, yaml);
  await writeFile(join(dir, "ca.pem"), caCert);
  const child = spawn(process.execPath, [MAIN, "serve", "--config", configFile], {
    env: { ...process.env, ...env, NODE_EXTRA_CA_CERTS: join(dir, "ca.pem"), LOG_LEVEL: "info" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  const exit = once(child, "exit").then(
    ([code, signal]) => ({ code, signal }) as { code: number | null; signal: NodeJS.Signals | null },
  );
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<{
    predicate: (l: Record<string, unknown>) => boolean;
    resolve: (l: Record<string, unknown>) => void;
  }> = [];
  let buffer = "";
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    buffer += chunk;
    let nl = buffer.indexOf("\n");
    while (nl !== -1) {
      const text = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf("\n");
      try {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        for (const w of waiters.splice(0)) {
          if (w.predicate(line)) w.resolve(line);
          else waiters.push(w);
        }
      } catch {
        // not a log line
      }
    }
  });
  const waitFor: ServeChild["waitFor"] = (predicate, ms = 10_000) => {
    const found = lines.find(predicate);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching log line within ${ms} ms; stderr: ${stderr}`)),
        ms,
      );
      waiters.push({
        predicate,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      exit.then(() => {
        clearTimeout(timer);
        reject(new Error(`serve exited; stderr: ${stderr}`));
      });
    });
  };
  const listening = await waitFor((l) => l.msg === "listening");
  return {
    child,
    proxyUrl: String(listening.proxy),
    adminUrl: String(listening.admin),
    configFile,
    lines,
    waitFor,
    exit,
  };
}
