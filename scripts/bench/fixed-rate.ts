// The fixed-rate section (--only latency): each configuration alone at a rate all of them carry, open
// loop (scripts/bench-paced.ts), so the difference is what the proxy adds to a request.
import { pacedLoad } from "../bench-paced.ts";
import { percentile } from "../bench-protocol.ts";
import { type Config, oneAtATime, SECTION_WARMUP_S, urlOf } from "./configs.ts";
import { fmtInt, LABELS, minMedianMax, ms, signedMs } from "./format.ts";
import { pool } from "./measure.ts";
import { log, type Options, PAYLOAD, type Payload, type Settings } from "./options.ts";

export interface LatencyResult {
  config: Config["name"];
  payload: Payload;
  round: number;
  requests: number;
  /** Requests per second actually completed in the window (the target is the --rate). */
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** How late the generator itself started requests (p99), so a slow generator is visible. */
  sendLagP99: number;
  failures: number;
  /** Every request's latency, sorted (kept out of the JSON report). */
  samples: Float64Array;
}

export function fixedRateRuns(opt: Options, configs: Config[]): Promise<LatencyResult[]> {
  return oneAtATime(opt, configs, opt.settings.latencyRounds, (c, payload, round) =>
    latencyRun(opt.settings, c, payload, round),
  );
}

async function latencyRun(s: Settings, c: Config, payload: Payload, round: number): Promise<LatencyResult> {
  const paced = { url: urlOf(c, payload), headers: c.headers, rate: s.rate, connections: s.connections };
  await pacedLoad({ ...paced, seconds: s.latencyWarmup });
  const { latencies, lags, failures, rps } = await pacedLoad({ ...paced, seconds: s.latencyDuration });
  const r: LatencyResult = {
    config: c.name,
    payload,
    round,
    requests: latencies.length,
    rps,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    p999: percentile(latencies, 99.9),
    max: latencies[latencies.length - 1] ?? Number.NaN,
    sendLagP99: percentile(lags, 99),
    failures,
    samples: latencies,
  };
  log(
    `latency round ${round} ${payload} ${c.name} at ${fmtInt(s.rate)} req/s: p50 ${ms(r.p50)} p99 ${ms(r.p99)} p99.9 ${ms(r.p999)} max ${ms(r.max)} ms` +
      (failures > 0 ? `, ${failures} failed` : ""),
  );
  if (failures > 0) throw new Error(`latency run: ${failures} requests failed on (${c.name})`);
  return r;
}

export function latencyMarkdown(s: Settings, results: LatencyResult[]): string[] {
  const rounds = Math.max(...results.map((r) => r.round));
  const lines = [
    "",
    `**Latency at a fixed rate**: ${fmtInt(s.rate)} req/s offered open-loop over ${s.connections} keep-alive connections (a request every ${ms(1000 / s.rate)} ms, each timed from when it was due); ${rounds} rounds of ${s.latencyWarmup} s warm-up + ${s.latencyDuration} s measured per configuration, the configurations taking turns (each server alone, the other stopped, after ${SECTION_WARMUP_S} s of full load per payload before the first round) — a load every configuration carries, so the difference is what the proxy adds to a request rather than queueing at saturation. Percentiles are over every measured request of all rounds; a stall (a major GC, the VM losing the CPU) decides a short round's p99 by itself, so the rounds' own p99s are given as a range. The send delay is how late a request left the generator: its own event-loop lag, or all connections busy behind a server stall.`,
    "",
    "| payload | configuration | requests | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | rounds' p99 ms (min / median / max) | send delay p99 ms (max): generator lag, or no free connection |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const verdicts: string[] = [];
  for (const payload of ["1k", "64k"] as const) {
    const rows = results.filter((r) => r.payload === payload);
    if (rows.length === 0) continue;
    const name = PAYLOAD[payload].name;
    const pooled = new Map<Config["name"], ReturnType<typeof pool>>();
    for (const config of ["a", "b", "c"] as const) {
      const mine = rows.filter((x) => x.config === config);
      if (mine.length === 0) continue;
      const p = pool(mine);
      pooled.set(config, p);
      const spread = minMedianMax(mine.map((r) => r.p99))
        .map(ms)
        .join(" / ");
      const lag = Math.max(...mine.map((r) => r.sendLagP99));
      lines.push(
        `| ${name} | ${LABELS[config]} | ${fmtInt(p.n)} | ${ms(p.p50)} | ${ms(p.p90)} | ${ms(p.p99)} | ${ms(p.p999)} | ${ms(p.max)} | ${spread} | ${ms(lag)} |`,
      );
    }
    const [pb, pc] = [pooled.get("b"), pooled.get("c")];
    if (!pb || !pc) continue;
    const perRound = [...new Set(rows.map((r) => r.round))].flatMap((round) => {
      const b = rows.find((r) => r.round === round && r.config === "b");
      const c = rows.find((r) => r.round === round && r.config === "c");
      return b && c ? [c.p99 - b.p99] : [];
    });
    const p99 = pc.p99 - pb.p99;
    verdicts.push(
      `${name} at ${fmtInt(s.rate)} req/s: (c) adds p50 ${signedMs(pc.p50 - pb.p50)} ms, p99 ${signedMs(p99)} ms over (b) (${fmtInt(pb.n)} and ${fmtInt(pc.n)} requests over ${perRound.length} rounds each; target < 2 ms: ${p99 < 2 ? "met" : "NOT met"}). Round by round, (c)'s p99 minus (b)'s: ${perRound.map(signedMs).join(", ")} ms`,
    );
  }
  lines.push("", ...verdicts.map((v) => `- ${v}`));
  return lines;
}
