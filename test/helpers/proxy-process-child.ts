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
  let watch: { timer: NodeJS.Timeout; start: number; peak: number } | undefined;
  let oldSpace: { timer: NodeJS.Timeout; last: number; added: number; drops: number } | undefined;
  process.on("message", async (m: ParentRequest) => {
    if (m.type === "watch-array-buffers") {
      const start = process.memoryUsage().arrayBuffers;
      const sample = () => {
        if (watch) watch.peak = Math.max(watch.peak, process.memoryUsage().arrayBuffers);
      };
      watch = { start, peak: start, timer: setInterval(sample, 2) };
    } else if (m.type === "peak-array-buffers") {
      if (!watch) throw new Error("peak-array-buffers without watch-array-buffers");
      clearInterval(watch.timer);
      reply({ type: "peak-array-buffers", start: watch.start, peak: watch.peak });
      watch = undefined;
    } else if (m.type === "watch-old-space") {
      const sample = () => {
        if (!oldSpace) return;
        const used = oldSpaceUsed();
        if (used >= oldSpace.last) oldSpace.added += used - oldSpace.last;
        else oldSpace.drops++;
        oldSpace.last = used;
      };
      oldSpace = { last: oldSpaceUsed(), added: 0, drops: 0, timer: setInterval(sample, 2) };
    } else if (m.type === "old-space-added") {
      if (!oldSpace) throw new Error("old-space-added without watch-old-space");
      clearInterval(oldSpace.timer);
      reply({ type: "old-space-added", bytes: oldSpace.added, shrinks: oldSpace.drops });
      oldSpace = undefined;
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
