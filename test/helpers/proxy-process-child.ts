// The child side of proxy-process.ts: startProxy in a process of its own, configured over IPC.
import { getHeapSpaceStatistics } from "node:v8";
import { configFromYaml, trustCaInProcess } from "../../src/demo/stack.ts";
import { createLogger, logDestination } from "../../src/observability/logger.ts";
import { startProxy } from "../../src/server/start.ts";
import type { ChildRequest, ParentRequest } from "./proxy-process.ts";

const gc = (globalThis as { gc?: () => void }).gc;

function oldSpaceUsed(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === "old_space")?.space_used_size ?? 0;
}

interface Sampler {
  sample(): void;
  answer(): ChildRequest;
}

/** Samples every 2 ms; the returned function stops it and gives the answer. */
function watch(sampler: Sampler): () => ChildRequest {
  const timer = setInterval(() => sampler.sample(), 2);
  return () => {
    clearInterval(timer);
    return sampler.answer();
  };
}

/** What the old generation gains; samples in which it shrank are counted, not subtracted. */
function oldSpaceGrowth(): Sampler {
  let last = oldSpaceUsed();
  let added = 0;
  let shrinks = 0;
  return {
    sample: () => {
      const used = oldSpaceUsed();
      if (used >= last) added += used - last;
      else shrinks++;
      last = used;
    },
    answer: () => ({ type: "old-space-added", bytes: added, shrinks }),
  };
}

function reply(message: ChildRequest): void {
  process.send?.(message);
}

process.once("message", async (start: ParentRequest) => {
  if (start.type !== "start") throw new Error(`expected start, got ${start.type}`);
  trustCaInProcess(start.caCert);
  const config = configFromYaml(start.yaml, start.env, "routes.yaml");
  const logger = createLogger({ level: "info", destination: logDestination(start.logFile) });
  const options: Parameters<typeof startProxy>[1] = { logger, env: start.env, ports: { proxy: 0, admin: 0 } };
  if (start.backoff) options.backoff = start.backoff;
  const proxy = await startProxy(config, options);
  /** Running watches, by the request that stops one and gets its answer. */
  const watches = new Map<ParentRequest["type"], () => ChildRequest>();
  process.on("message", async (m: ParentRequest) => {
    if (m.type === "watch-old-space") {
      watches.set("old-space-added", watch(oldSpaceGrowth()));
    } else if (m.type === "old-space-added") {
      const stop = watches.get(m.type);
      if (!stop) throw new Error(`${m.type} without its watch`);
      watches.delete(m.type);
      reply(stop());
    } else if (m.type === "memory") {
      for (let i = 0; i < 3; i++) {
        gc?.();
        await new Promise((r) => setTimeout(r, 50));
      }
      reply({ type: "memory", usage: process.memoryUsage() });
    } else if (m.type === "stop") {
      await proxy.close(1_000);
      process.exit(0);
    }
  });
  reply({ type: "ready", proxyUrl: proxy.proxyUrl, adminUrl: proxy.adminUrl });
});
process.on("disconnect", () => process.exit(0));
