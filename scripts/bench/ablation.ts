// The ablation section (--ablation): what-if variants of (c) on 1 KiB, each in a fresh child, against
// (b) in the same round, to price a cost without editing src/.
import { join } from "node:path";
import { PROXY_PREFIX, PROXY_VARIANTS, type ProxyVariant } from "../bench-protocol.ts";
import type { Children } from "./children.ts";
import type { Config } from "./configs.ts";
import { fmtInt, mean, ms } from "./format.ts";
import { log, type Settings } from "./options.ts";
import { throughputRun } from "./sequential.ts";

export interface AblationResult {
  round: number;
  variant: ProxyVariant | "bare";
  rps: number;
  p50: number;
  p99: number;
}

export async function ablationRuns(
  s: Settings,
  children: Children,
  upstreamUrl: string,
): Promise<AblationResult[]> {
  const bare = await children.startBare(upstreamUrl);
  const results: AblationResult[] = [];
  const bareConfig: Config = {
    name: "b",
    label: "(b)",
    pid: bare.pid,
    base: bare.ready.url,
    prefix: "",
    headers: {},
  };
  try {
    for (let round = 1; round <= s.rounds; round++) {
      const b = await throughputRun(s, bareConfig, "1k", round);
      results.push({ round, variant: "bare", rps: b.rps, p50: b.p50, p99: b.p99 });
      for (const variant of PROXY_VARIANTS) {
        const child = await children.start("proxy", [
          "--upstream",
          upstreamUrl,
          "--variant",
          variant,
          "--log",
          join(s.out, `proxy-${variant}.log`),
        ]);
        try {
          const c: Config = {
            name: "c",
            label: `(c) ${variant}`,
            pid: child.pid,
            base: child.ready.url,
            prefix: PROXY_PREFIX,
            headers: { "x-api-key": child.ready.apiKey! },
          };
          const r = await throughputRun(s, c, "1k", round);
          log(`  ↑ variant ${variant}`);
          results.push({ round, variant, rps: r.rps, p50: r.p50, p99: r.p99 });
        } finally {
          await child.stop();
        }
      }
    }
  } finally {
    await bare.stop();
  }
  return results;
}

export function ablationMarkdown(results: AblationResult[]): string[] {
  const lines = [
    "",
    `**What-if ablations of (c)** (1 KiB; each variant a fresh child; not product configurations — they price a cost): no-request-log = logger at warn; no-metrics = every metric update stubbed (prom-client \`inc\`/\`observe\` and the request counters); plus-50us-cpu = the product plus 50 µs of busy CPU per request (a known cost: the measures should show it).`,
    "",
    "| variant | req/s per round | mean req/s | ratio to (b) | p99 ms (mean) |",
    "|---|---:|---:|---:|---:|",
  ];
  const bare = mean(results.filter((r) => r.variant === "bare").map((r) => r.rps));
  for (const variant of ["bare", ...PROXY_VARIANTS] as const) {
    const rows = results.filter((r) => r.variant === variant);
    const m = mean(rows.map((r) => r.rps));
    lines.push(
      `| ${variant === "bare" ? "(b) bare http-proxy-3" : `(c) ${variant}`} | ${rows.map((r) => fmtInt(r.rps)).join(", ")} | ${fmtInt(m)} | ${(m / bare).toFixed(2)} | ${ms(mean(rows.map((r) => r.p99)))} |`,
    );
  }
  return lines;
}
