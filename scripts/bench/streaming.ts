// The streaming section: large uploads and downloads through each configuration, one connection at a
// time, with the proxy child's RSS watched during each transfer.
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { PATHS, writeGenerated } from "../bench-protocol.ts";
import type { Child } from "./children.ts";
import type { Config } from "./configs.ts";
import { MiB, mean, mib } from "./format.ts";
import { log, type Settings } from "./options.ts";

export interface StreamResult {
  config: Config["name"];
  direction: "upload" | "download";
  rep: number;
  seconds: number;
  mbPerS: number;
  baselineRss: number;
  peakRss: number;
  growth: number;
  /** RSS after the transfer and a forced GC, minus the baseline. */
  retained: number;
}

const CHUNK = Buffer.alloc(64 * 1024, 0x62);

function vmRss(pid: number, field: "VmRSS" | "VmHWM"): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/**
 * Samples a child's RSS (and its kernel high-water mark) around one transfer, and once more after a
 * forced GC, to tell memory still held from dead read buffers not yet collected.
 */
async function watchRss<T>(child: Child | undefined, run: () => Promise<T>) {
  if (!child) return { value: await run(), baseline: Number.NaN, peak: Number.NaN, afterGc: Number.NaN };
  const baseline = (await child.stats(true)).rss;
  try {
    writeFileSync(`/proc/${child.pid}/clear_refs`, "5"); // resets VmHWM to the current RSS
  } catch {
    // not permitted: the sampled maximum alone is used
  }
  let peak = vmRss(child.pid, "VmRSS");
  const timer = setInterval(() => {
    peak = Math.max(peak, vmRss(child.pid, "VmRSS"));
  }, 20);
  try {
    const value = await run();
    peak = Math.max(peak, vmRss(child.pid, "VmRSS"), vmRss(child.pid, "VmHWM"));
    const afterGc = (await child.stats(true)).rss;
    return { value, baseline, peak, afterGc };
  } finally {
    clearInterval(timer);
  }
}

function upload(url: string, headers: Record<string, string>, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(
      url,
      {
        method: "PUT",
        agent: false,
        headers: { ...headers, "content-type": "application/octet-stream", "content-length": bytes },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.once("end", () => {
          const seconds = (performance.now() - started) / 1000;
          const text = Buffer.concat(chunks).toString();
          if (res.statusCode !== 200) return reject(new Error(`upload: status ${res.statusCode} ${text}`));
          const echoed = (JSON.parse(text) as { bytes: number }).bytes;
          if (echoed !== bytes) return reject(new Error(`upload: upstream received ${echoed} of ${bytes}`));
          resolve(seconds);
        });
      },
    );
    req.setTimeout(120_000, () => req.destroy(new Error("upload timed out")));
    req.once("error", reject);
    writeGenerated(req, CHUNK, bytes);
  });
}

function download(url: string, headers: Record<string, string>, bytes: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.get(`${url}?bytes=${bytes}`, { agent: false, headers }, (res) => {
      let received = 0;
      res.on("data", (c: Buffer) => {
        received += c.length;
      });
      res.once("end", () => {
        const seconds = (performance.now() - started) / 1000;
        if (res.statusCode !== 200) return reject(new Error(`download: status ${res.statusCode}`));
        if (received !== bytes) return reject(new Error(`download: received ${received} of ${bytes}`));
        resolve(seconds);
      });
      res.once("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error("download timed out")));
    req.once("error", reject);
  });
}

export async function streamRuns(
  s: Settings,
  configs: Config[],
  children: Record<Config["name"], Child | undefined>,
): Promise<StreamResult[]> {
  const results: StreamResult[] = [];
  // A small transfer first, so one-time costs (code compilation, agents) are not in the measurement.
  for (const c of configs) {
    await upload(`${c.base}${c.prefix}${PATHS.upload}`, c.headers, 8 * MiB);
    await download(`${c.base}${c.prefix}${PATHS.download}`, c.headers, 8 * MiB);
  }
  for (let rep = 1; rep <= s.rounds; rep++) {
    for (const direction of ["upload", "download"] as const) {
      for (const c of configs) {
        const watched = c.name === "a" ? undefined : children[c.name];
        const {
          value: seconds,
          baseline,
          peak,
          afterGc,
        } = await watchRss(watched, () =>
          direction === "upload"
            ? upload(`${c.base}${c.prefix}${PATHS.upload}`, c.headers, s.streamBytes)
            : download(`${c.base}${c.prefix}${PATHS.download}`, c.headers, s.streamBytes),
        );
        const r: StreamResult = {
          config: c.name,
          direction,
          rep,
          seconds,
          mbPerS: s.streamBytes / 1e6 / seconds,
          baselineRss: baseline,
          peakRss: peak,
          growth: peak - baseline,
          retained: afterGc - baseline,
        };
        results.push(r);
        log(
          `stream ${direction} ${c.name} rep ${rep}: ${r.mbPerS.toFixed(0)} MB/s` +
            (watched
              ? `, RSS ${mib(baseline)} → peak ${mib(peak)} MiB (+${mib(r.growth)}), after GC +${mib(r.retained)}`
              : ""),
        );
      }
    }
  }
  return results;
}

export function streamingMarkdown(s: Settings, results: StreamResult[]): string[] {
  const lines = [
    "",
    `**Streaming**, ${mib(s.streamBytes)} MiB per transfer (one connection, node:http streams, 64 KiB chunks generated, not allocated), ${s.rounds} repetition(s); RSS of the proxy child sampled every 20 ms from /proc plus VmHWM, baseline after a forced GC.`,
    "",
    "| direction | configuration | MB/s (each rep) | mean MB/s | peak RSS growth MiB (max) | baseline → peak RSS MiB | RSS growth after GC MiB (max) |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  const verdicts: string[] = [];
  for (const direction of ["upload", "download"] as const) {
    for (const name of ["a", "b", "c"] as const) {
      const rows = results.filter((r) => r.direction === direction && r.config === name);
      if (rows.length === 0) continue;
      const worst = rows.reduce((w, r) => (r.growth > w.growth ? r : w), rows[0]!);
      lines.push(
        `| ${direction} | ${name} | ${rows.map((r) => r.mbPerS.toFixed(0)).join(", ")} | ${mean(rows.map((r) => r.mbPerS)).toFixed(0)} | ${name === "a" ? "—" : mib(worst.growth)} | ${name === "a" ? "—" : `${mib(worst.baselineRss)} → ${mib(worst.peakRss)}`} | ${name === "a" ? "—" : mib(Math.max(...rows.map((r) => r.retained)))} |`,
      );
    }
    const m = (n: "b" | "c") =>
      mean(results.filter((r) => r.direction === direction && r.config === n).map((r) => r.mbPerS));
    const growth = Math.max(
      ...results.filter((r) => r.direction === direction && r.config === "c").map((r) => r.growth),
    );
    const ratio = m("c") / m("b");
    const retained = Math.max(
      ...results.filter((r) => r.direction === direction && r.config === "c").map((r) => r.retained),
    );
    verdicts.push(
      `${direction}: c/b throughput = ${ratio.toFixed(2)} (target ≥ 0.80: ${ratio >= 0.8 ? "met" : "NOT met"}); (c) peak RSS growth ${mib(growth)} MiB (target < 30 MiB: ${growth < 30 * MiB ? "met" : "NOT met"}), ${mib(retained)} MiB after GC`,
    );
  }
  lines.push("", ...verdicts.map((v) => `- ${v}`));
  return lines;
}
