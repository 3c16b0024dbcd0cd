// What the sections measure with: a plain HTTP request, autocannon's closed-loop load, a process's
// CPU time from /proc, and percentiles pooled over rounds.
import { readFileSync } from "node:fs";
import http from "node:http";
import autocannon from "autocannon";
import { percentile } from "../bench-protocol.ts";

export interface Reply {
  status: number;
  body: Buffer;
}

export function request(
  url: string,
  options: http.RequestOptions = {},
  body?: Buffer,
  timeoutMs = 30_000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.once("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.once("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout: ${url}`)));
    req.once("error", reject);
    req.end(body);
  });
}

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process (or, with `thread`, of one of its threads), in µs (/proc …/stat fields 14, 15). */
export function cpuUs(pid: number, thread?: number): number {
  const stat = readFileSync(thread ? `/proc/${pid}/task/${thread}/stat` : `/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS_PER_SECOND;
}

/** autocannon's closed loop on `url` for `seconds`; with `measure`, every response's latency too. */
export async function load(
  url: string,
  headers: Record<string, string>,
  seconds: number,
  connections: number,
  measure: boolean,
) {
  const latencies: number[] = [];
  const instance = autocannon({ url, connections, duration: seconds, headers, timeout: 10 });
  if (measure) instance.on("response", (_client, _status, _bytes, ms) => latencies.push(ms));
  const result = await instance;
  return { result, latencies };
}

/** Every request of some rounds, as one distribution. */
export function pool(rows: readonly { samples: Float64Array }[]) {
  const all = Float64Array.from(rows.flatMap((r) => Array.from(r.samples)));
  all.sort();
  return {
    n: all.length,
    p50: percentile(all, 50),
    p90: percentile(all, 90),
    p99: percentile(all, 99),
    p999: percentile(all, 99.9),
    max: all[all.length - 1] ?? Number.NaN,
  };
}
