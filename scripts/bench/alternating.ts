// The alternating section: (b) and (c) at saturation taking short turns over connections kept open
// (the load is scripts/bench-alternating.ts), with the p99 added judged turn by turn.
import { type AlternatingSide, alternatingLoad } from "../bench-alternating.ts";
import { medianConfidenceInterval, percentile } from "../bench-protocol.ts";
import { type Config, SECTION_WARMUP_S, urlOf, warmUp } from "./configs.ts";
import { fmtInt, minMedianMax, ms, signedMs } from "./format.ts";
import { cpuUs, pool } from "./measure.ts";
import { log, type Options, PAYLOAD, type Payload, type Settings } from "./options.ts";

type AlternatingFigures = AlternatingSide & ReturnType<typeof pool> & { cpuUsPerRequest: number };

export interface AlternatingResult {
  payload: Payload;
  b: AlternatingFigures;
  c: AlternatingFigures;
}

export async function alternatingRuns(opt: Options, b: Config, c: Config): Promise<AlternatingResult[]> {
  const results: AlternatingResult[] = [];
  await warmUp(opt, [b, c]);
  for (const payload of opt.payloads) results.push(await alternatingRun(opt.settings, b, c, payload));
  return results;
}

/** The results without their latency samples, for the JSON report. */
export function alternatingReport(results: AlternatingResult[]) {
  return results.map(({ b, c, ...r }) => ({
    ...r,
    b: { ...b, latencies: undefined },
    c: { ...c, latencies: undefined },
  }));
}

async function alternatingRun(
  s: Settings,
  b: Config,
  c: Config,
  payload: Payload,
): Promise<AlternatingResult> {
  const cpu = { b: 0, c: 0 };
  const target = (x: Config) => {
    let before = 0;
    return {
      url: urlOf(x, payload),
      headers: x.headers,
      onSlice(phase: "start" | "end") {
        if (phase === "start") before = cpuUs(x.pid);
        else cpu[x.name as "b" | "c"] += cpuUs(x.pid) - before;
      },
    };
  };
  const [rb, rc] = await alternatingLoad({
    targets: [target(b), target(c)],
    connections: s.connections,
    sliceMs: s.sliceMs,
    slices: s.slices,
    warmupSlices: 4,
  });
  const result = {
    payload,
    b: { ...rb, ...pool([{ samples: rb.latencies }]), cpuUsPerRequest: cpu.b / rb.requests },
    c: { ...rc, ...pool([{ samples: rc.latencies }]), cpuUsPerRequest: cpu.c / rc.requests },
  };
  for (const [name, side] of [
    ["b", result.b],
    ["c", result.c],
  ] as const) {
    log(
      `alternating ${payload} ${name}: ${fmtInt(side.requests / side.seconds)} req/s p50 ${ms(side.p50)} ms p99 ${ms(side.p99)} ms, ${side.cpuUsPerRequest.toFixed(0)} µs CPU/req${side.failures ? `, ${side.failures} failed` : ""}`,
    );
  }
  return result;
}

export function alternatingMarkdown(s: Settings, results: AlternatingResult[]): string[] {
  if (results.length === 0) return [];
  const out = [
    "",
    `**Alternating at saturation**: (b) and (c) take turns of ${s.sliceMs} ms in the order b c c b …, ${s.slices} measured turns each after 4 unmeasured ones and ${SECTION_WARMUP_S} s of load on both per payload; each has its own ${s.connections} keep-alive connections, opened once, and in its turn every connection sends its next request as soon as the last response is in (a closed loop, as autocannon runs it; the bench's own client, bench-client.ts). No process is stopped and no connection opened between turns, so both see the same spells of machine speed. Latency runs from a request's write to its last byte. The p99 target is judged turn by turn: each (c) turn's p99 minus the p99 of the (b) turn next to it, at the same machine speed; the median of those differences, with a distribution-free 95 % confidence interval (binomial order statistics), is what (c) adds, and the target is met when the whole interval is below 2 ms. Percentiles in the table are pooled over every measured response, so a slow spell that falls in one server's turns weighs on its figures alone.`,
    "",
    "| payload | configuration | requests | req/s | turns' req/s (min / median / max) | p50 ms | p90 ms | p99 ms | max ms | server CPU µs/request | failed |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    for (const [label, side] of [
      ["(b) bare http-proxy-3", r.b],
      ["(c) entra-auth-proxy", r.c],
    ] as const) {
      out.push(
        `| ${PAYLOAD[r.payload].name} | ${label} | ${fmtInt(side.requests)} | ${fmtInt(side.requests / side.seconds)} | ${minMedianMax(side.sliceRps).map(fmtInt).join(" / ")} | ${ms(side.p50)} | ${ms(side.p90)} | ${ms(side.p99)} | ${ms(side.max)} | ${side.cpuUsPerRequest.toFixed(0)} | ${side.failures} |`,
      );
    }
  }
  out.push("");
  for (const r of results) {
    const cb = r.c.requests / r.c.seconds / (r.b.requests / r.b.seconds);
    const p99 = r.c.p99 - r.b.p99;
    const [lowest, medianRatio, highest] = minMedianMax(
      r.b.sliceRps.map((b, i) => (r.c.sliceRps[i] ?? Number.NaN) / b),
    );
    // Each c turn against the b turn next to it (b c | c b): the p99 each added at the same machine speed.
    const p99Pairs = Float64Array.from(
      r.b.sliceP99.map((b, i) => (r.c.sliceP99[i] ?? Number.NaN) - b),
    ).sort();
    const p99Added = percentile(p99Pairs, 50);
    const [ciLow, ciHigh] = medianConfidenceInterval(p99Pairs);
    out.push(
      `- ${PAYLOAD[r.payload].name} alternating: c/b = ${cb.toFixed(3)} req/s (target ≥ 0.85: ${cb >= 0.85 ? "met" : "NOT met"}), CPU per request c/b = ${(r.c.cpuUsPerRequest / r.b.cpuUsPerRequest).toFixed(3)}; turn by turn, c/b from ${lowest.toFixed(2)} to ${highest.toFixed(2)} (median ${medianRatio.toFixed(2)}); **p99 added, turn by turn: median ${signedMs(p99Added)} ms, 95 % confidence interval ${signedMs(ciLow)} to ${signedMs(ciHigh)} ms (${p99Pairs.length} pairs; target < 2 ms: ${Number.isNaN(ciHigh) ? "too few turns to judge" : ciHigh < 2 ? "met" : "NOT met"}, judged on the interval's upper end)**; pooled over all turns, p50 added ${signedMs(r.c.p50 - r.b.p50)} ms and p99 added ${signedMs(p99)} ms ((c) ${ms(r.c.p99)} against (b) ${ms(r.b.p99)})`,
    );
  }
  return out;
}
