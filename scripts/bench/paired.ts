// The paired section: (b) and (c) loaded at the same time while sharing one CPU, so both are measured
// at the same machine speed.
import { percentile } from "../bench-protocol.ts";
import { type Config, SECTION_WARMUP_S, urlOf, warmUp } from "./configs.ts";
import { fmtInt, median, ms, signedMs } from "./format.ts";
import { cpuUs, load } from "./measure.ts";
import { log, type Options, PAYLOAD, type Payload, type Settings } from "./options.ts";

export interface PairedResult {
  payload: Payload;
  round: number;
  b: PairedSide;
  c: PairedSide;
}

interface PairedSide {
  rps: number;
  cpuUsPerRequest: number;
  p50: number;
  p99: number;
}

export async function pairedRuns(opt: Options, b: Config, c: Config): Promise<PairedResult[]> {
  const results: PairedResult[] = [];
  await warmUp(opt, [b, c]);
  for (let round = 1; round <= opt.settings.rounds; round++) {
    for (const payload of opt.payloads) results.push(await pairedRun(opt.settings, b, c, payload, round));
  }
  return results;
}

/**
 * (b) and (c) loaded at once by their own autocannon; besides req/s it reports the capacity ratio
 * (CPU per request), because the scheduler splits the shared CPU only roughly evenly.
 */
async function pairedRun(
  s: Settings,
  b: Config,
  c: Config,
  payload: Payload,
  round: number,
): Promise<PairedResult> {
  const both = [b, c] as const;
  await Promise.all(both.map((x) => load(urlOf(x, payload), x.headers, s.warmup, s.connections, false)));
  const before = both.map((x) => cpuUs(x.pid));
  const runs = await Promise.all(
    both.map((x) => load(urlOf(x, payload), x.headers, s.duration, s.connections, true)),
  );
  const after = both.map((x) => cpuUs(x.pid));
  const side = (i: 0 | 1): PairedSide => {
    const { result, latencies } = runs[i]!;
    if (result.errors + result.non2xx + result.timeouts > 0)
      throw new Error(`paired run: errors on (${both[i].name})`);
    const sorted = Float64Array.from(latencies).sort();
    return {
      rps: result.requests.total / result.duration,
      cpuUsPerRequest: (after[i]! - before[i]!) / result.requests.total,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
    };
  };
  const r: PairedResult = { payload, round, b: side(0), c: side(1) };
  log(
    `paired round ${round} ${payload}: b ${fmtInt(r.b.rps)} req/s (${r.b.cpuUsPerRequest.toFixed(0)} µs CPU/req), c ${fmtInt(r.c.rps)} req/s (${r.c.cpuUsPerRequest.toFixed(0)} µs CPU/req), c/b ${(r.c.rps / r.b.rps).toFixed(2)} req/s, ${capacity(r).toFixed(2)} by CPU; p99 b ${r.b.p99.toFixed(1)} c ${r.c.p99.toFixed(1)} ms`,
  );
  return r;
}

/** c/b as it would be with a CPU each: (b)'s CPU time per request over (c)'s. */
function capacity(r: PairedResult): number {
  return r.b.cpuUsPerRequest / r.c.cpuUsPerRequest;
}

export function pairedMarkdown(s: Settings, pinned: boolean, results: PairedResult[]): string[] {
  const lines = [
    "",
    `**Paired runs**: (b) and (c) loaded simultaneously (${s.connections} connections each, ${s.warmup} s warm-up + ${s.duration} s) while sharing ${pinned ? "CPU 1" : "the CPUs"}, so both see the same machine speed; before the first round, ${SECTION_WARMUP_S} s of load on both together per payload.`,
    "",
    "| payload | round | (b) req/s | (c) req/s | c/b req/s | (b) CPU µs/req | (c) CPU µs/req | c/b capacity (CPU per request b/c) | (b) p50 / p99 ms | (c) p50 / p99 ms | p99 added |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const verdicts: string[] = [];
  for (const payload of ["1k", "64k"] as const) {
    const rows = results.filter((r) => r.payload === payload);
    if (rows.length === 0) continue;
    for (const r of rows) {
      lines.push(
        `| ${PAYLOAD[payload].name} | ${r.round} | ${fmtInt(r.b.rps)} | ${fmtInt(r.c.rps)} | ${(r.c.rps / r.b.rps).toFixed(2)} | ${r.b.cpuUsPerRequest.toFixed(0)} | ${r.c.cpuUsPerRequest.toFixed(0)} | ${capacity(r).toFixed(2)} | ${ms(r.b.p50)} / ${ms(r.b.p99)} | ${ms(r.c.p50)} / ${ms(r.c.p99)} | ${signedMs(r.c.p99 - r.b.p99)} |`,
      );
    }
    const m = median(rows.map((r) => r.c.rps / r.b.rps));
    const cap = median(rows.map(capacity));
    const p99 = median(rows.map((r) => r.c.p99 - r.b.p99));
    // With every connection busy, latency is connections ÷ req/s (Little's law), so a lower rate alone raises p99.
    const predicted = median(rows.map((r) => r.b.p99 * (r.b.rps / r.c.rps - 1)));
    verdicts.push(
      `${PAYLOAD[payload].name} paired: c/b = ${m.toFixed(2)} req/s, ${cap.toFixed(2)} by CPU per request (medians of ${rows.length}; target ≥ 0.85: ${Math.min(m, cap) >= 0.85 ? "met" : "NOT met"} on the lower of the two); p99 added ${signedMs(p99)} ms (median), where the throughput ratio alone predicts ${signedMs(predicted)} ms by Little's law — the p99 target is judged in the alternating (at saturation) and fixed-rate sections`,
    );
  }
  lines.push("", ...verdicts.map((v) => `- ${v}`));
  return lines;
}
