// How figures are written in the bench's markdown tables, and the machine line that heads a run.
import { readFileSync } from "node:fs";
import os from "node:os";
import { percentile } from "../bench-protocol.ts";

export const MiB = 1024 * 1024;

/** Table labels of the three configurations. */
export const LABELS = { a: "(a) direct", b: "(b) bare http-proxy-3", c: "(c) entra-auth-proxy" } as const;
export const fmtInt = (x: number) => Math.round(x).toLocaleString("en-US");
export const mib = (bytes: number) => (bytes / MiB).toFixed(1);
export const ms = (x: number) => x.toFixed(2);
export const signedMs = (v: number) => `${v >= 0 ? "+" : ""}${ms(v)}`;
export const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
export const median = (xs: number[]) => percentile(Float64Array.from(xs).sort(), 50);

/** Smallest, median and largest of `xs`: the "(min / median / max)" columns. */
export function minMedianMax(xs: ArrayLike<number>): [number, number, number] {
  const sorted = Float64Array.from(xs).sort();
  return [sorted[0]!, percentile(sorted, 50), sorted[sorted.length - 1]!];
}

export type Machine = ReturnType<typeof machine>;

export function machine() {
  const cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  const pkg = (name: string) =>
    (
      JSON.parse(
        readFileSync(new URL(`../../node_modules/${name}/package.json`, import.meta.url), "utf8"),
      ) as {
        version: string;
      }
    ).version;
  return {
    nproc: os.cpus().length,
    cpu,
    memGiB: (os.totalmem() / 1024 ** 3).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    versions: {
      "http-proxy-3": pkg("http-proxy-3"),
      autocannon: pkg("autocannon"),
      express: pkg("express"),
      helmet: pkg("helmet"),
      "prom-client": pkg("prom-client"),
      pino: pkg("pino"),
      "@azure/msal-node": pkg("@azure/msal-node"),
    },
  };
}
