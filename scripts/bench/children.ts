// The bench's server processes: the upstream, the Entra emulator, (b) and (c), each a child running
// scripts/bench-servers.ts (or another checkout's, with --against), spoken to over IPC.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  type ChildMessage,
  PATHS,
  PROXY_PREFIX,
  type ReadyMessage,
  type Role,
  type StatsReply,
} from "../bench-protocol.ts";
import { request } from "./measure.ts";

const SERVERS = new URL("../bench-servers.ts", import.meta.url).pathname;

export interface Child {
  role: Role;
  pid: number;
  ready: ReadyMessage;
  stats(gc?: boolean): Promise<StatsReply>;
  stop(): Promise<void>;
}

export interface ChildSettings {
  /** Put (b) and (c) on CPU 1 with taskset (this process is already on CPU 0). */
  pinned: boolean;
  /** Node options of (c) alone: the image's. */
  productNodeOptions: string[];
  /** Node options of (b) and (c). */
  serverNodeArgs: string[];
  /** Where the probe proxy writes its log. */
  out: string;
}

/** Starts and stops the bench's children, and knows the emulator every proxy child gets tokens from. */
export class Children {
  private readonly running = new Set<ChildProcess>();
  private entra: Child | undefined;
  /** Length of the emulator's access tokens; (b) attaches a static bearer of the same length. */
  bearerLength = 0;

  private readonly settings: ChildSettings;

  constructor(settings: ChildSettings) {
    this.settings = settings;
  }

  /** Starts the Entra emulator child and measures its tokens' length (through a probe proxy). */
  async startEntra(upstreamUrl: string): Promise<Child> {
    this.entra = await this.start("entra");
    const proxy = await this.start("proxy", [
      "--upstream",
      upstreamUrl,
      "--log",
      join(this.settings.out, "proxy-probe.log"),
    ]);
    try {
      const r = await request(`${proxy.ready.url}${PROXY_PREFIX}${PATHS.echoAuth}`, {
        headers: { "x-api-key": proxy.ready.apiKey! },
      });
      this.bearerLength = (JSON.parse(r.body.toString()) as { length: number }).length;
    } finally {
      await proxy.stop();
    }
    return this.entra;
  }

  /** Token requests the emulator has answered so far. */
  async tokenRequestCount(): Promise<number> {
    if (!this.entra) throw new Error("the entra child is not running");
    return (await this.entra.stats()).tokenRequests!;
  }

  startBare(upstreamUrl: string, nodeArgs: string[] = []): Promise<Child> {
    return this.start(
      "bare",
      ["--upstream", upstreamUrl, "--bearer-length", String(this.bearerLength)],
      nodeArgs,
    );
  }

  async start(role: Role, args: string[] = [], nodeArgs: string[] = [], servers = SERVERS): Promise<Child> {
    const { pinned, productNodeOptions, serverNodeArgs } = this.settings;
    const env =
      role === "proxy"
        ? { ...process.env, BENCH_WORLD: JSON.stringify(this.entra?.ready.world) }
        : process.env;
    const extra =
      role === "proxy" ? [...productNodeOptions, ...serverNodeArgs] : role === "bare" ? serverNodeArgs : [];
    const command = [process.execPath, "--expose-gc", ...extra, ...nodeArgs, servers, role, ...args];
    // The server under test gets CPU 1 to itself; the load generator, upstream and emulator share CPU 0.
    if (pinned && (role === "bare" || role === "proxy")) command.unshift("taskset", "-c", "1");
    const proc = spawn(command[0]!, command.slice(1), {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env,
    });
    this.running.add(proc);
    proc.once("exit", () => this.running.delete(proc));
    const pending = new Map<number, (r: StatsReply) => void>();
    let nextId = 1;
    const ready = await new Promise<ReadyMessage>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${role} did not start within 60 s`)), 60_000);
      proc.on("message", (m: ChildMessage) => {
        if (m.type === "ready") {
          clearTimeout(timer);
          resolve(m);
        } else if (m.type === "stats") {
          pending.get(m.id)?.(m);
          pending.delete(m.id);
        }
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`${role} exited (${code}) before it was ready`));
      });
    });
    const exited = once(proc, "exit");
    return {
      role,
      pid: proc.pid!,
      ready,
      stats(gc = false) {
        const id = nextId++;
        return new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`${role} stats timed out`)), 10_000);
          pending.set(id, (r) => {
            clearTimeout(timer);
            resolve(r);
          });
          proc.send({ type: "stats", id, gc });
        });
      },
      async stop() {
        if (proc.exitCode !== null || proc.signalCode !== null) return;
        proc.send({ type: "shutdown" });
        await Promise.race([exited, sleep(10_000)]);
        if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
      },
    };
  }

  /** Kills every child still running, for an exit on error or signal. */
  killAll(): void {
    for (const proc of this.running)
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  }
}
