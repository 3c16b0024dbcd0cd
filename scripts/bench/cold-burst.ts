// The token section: a fresh (c) with a cold token cache takes a burst of concurrent requests, which
// must cost exactly one token request, and then the same burst with the token cached.
import http from "node:http";
import { join } from "node:path";
import { PATHS, PROXY_PREFIX, percentile } from "../bench-protocol.ts";
import type { Children } from "./children.ts";
import { log, type Settings } from "./options.ts";

export interface BurstResult {
  round: number;
  n: number;
  preconnected: number;
  cold: BurstStats;
  warm: BurstStats;
  tokenRequestsCold: number;
  tokenRequestsWarm: number;
}

interface BurstStats {
  wallMs: number;
  p50: number;
  p99: number;
  max: number;
  statuses: Record<string, number>;
}

export async function tokenBursts(s: Settings, children: Children, upstreamUrl: string) {
  const results: BurstResult[] = [];
  for (let round = 1; round <= s.rounds; round++)
    results.push(await tokenBurst(s, children, upstreamUrl, round));
  return results;
}

async function burst(url: string, headers: Record<string, string>, agent: http.Agent, n: number) {
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const started = performance.now();
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const t0 = performance.now();
          const req = http.get(url, { agent, headers }, (res) => {
            res.resume();
            res.once("end", () => {
              latencies.push(performance.now() - t0);
              statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
              resolve();
            });
          });
          req.setTimeout(60_000, () => req.destroy(new Error("timeout")));
          req.once("error", (e: NodeJS.ErrnoException) => {
            statuses[e.code ?? e.message] = (statuses[e.code ?? e.message] ?? 0) + 1;
            resolve();
          });
        }),
    ),
  );
  const wallMs = performance.now() - started;
  const sorted = Float64Array.from(latencies).sort();
  return {
    wallMs,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? Number.NaN,
    statuses,
  } satisfies BurstStats;
}

async function tokenBurst(
  s: Settings,
  children: Children,
  upstreamUrl: string,
  round: number,
): Promise<BurstResult> {
  const logFile = join(s.out, `proxy-cold-${round}.log`);
  const tokensBeforeStart = await children.tokenRequestCount();
  const proxy = await children.start("proxy", ["--upstream", upstreamUrl, "--cold", "--log", logFile]);
  try {
    const n = s.burst;
    const url = `${proxy.ready.url}${PROXY_PREFIX}${PATHS.json1k}`;
    const agent = new http.Agent({ keepAlive: true, maxSockets: n, maxFreeSockets: n, timeout: 120_000 });
    // Connections are opened first by requests that need no token (no API key → 401), so both bursts
    // below differ only in the token path.
    const pre = await burst(url, {}, agent, n);
    const preconnected = Object.values(agent.freeSockets).reduce((sum, list) => sum + (list?.length ?? 0), 0);
    if ((pre.statuses["401"] ?? 0) !== n)
      throw new Error(`pre-connect answers: ${JSON.stringify(pre.statuses)}`);
    const before = await children.tokenRequestCount();
    const early = before - tokensBeforeStart;
    if (early !== 0) throw new Error(`cold proxy already made ${early} token requests`);
    const headers = { "x-api-key": proxy.ready.apiKey! };
    const cold = await burst(url, headers, agent, n);
    const afterCold = await children.tokenRequestCount();
    const warm = await burst(url, headers, agent, n);
    const afterWarm = await children.tokenRequestCount();
    agent.destroy();
    const r: BurstResult = {
      round,
      n,
      preconnected,
      cold,
      warm,
      tokenRequestsCold: afterCold - before,
      tokenRequestsWarm: afterWarm - afterCold,
    };
    log(
      `burst round ${round}: cold p50 ${cold.p50.toFixed(1)} p99 ${cold.p99.toFixed(1)} ms, warm p50 ${warm.p50.toFixed(1)} p99 ${warm.p99.toFixed(1)} ms, token requests ${r.tokenRequestsCold}`,
    );
    return r;
  } finally {
    await proxy.stop();
  }
}

export function burstMarkdown(s: Settings, results: BurstResult[]): string[] {
  const lines = [
    "",
    `**Token path**: a fresh (c) with \`warmup: false\` per round; ${s.burst} connections opened first (requests without an API key → 401, no token needed), then ${s.burst} concurrent GETs of 1 KiB on a cold token cache, then the same burst again with the token cached.`,
    "",
    "| round | burst | token requests at the emulator | wall ms | p50 ms | p99 ms | max ms | statuses |",
    "|---:|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of results) {
    for (const kind of ["cold", "warm"] as const) {
      const b = r[kind];
      lines.push(
        `| ${r.round} | ${kind} | ${kind === "cold" ? r.tokenRequestsCold : r.tokenRequestsWarm} | ${b.wallMs.toFixed(0)} | ${b.p50.toFixed(1)} | ${b.p99.toFixed(1)} | ${b.max.toFixed(1)} | ${Object.entries(
          b.statuses,
        )
          .map(([k, v]) => `${k}×${v}`)
          .join(" ")} |`,
      );
    }
  }
  lines.push("");
  for (const r of results) {
    lines.push(
      `- round ${r.round}: ${r.preconnected} connections pre-opened; cold burst adds p50 ${(r.cold.p50 - r.warm.p50).toFixed(1)} ms, p99 ${(r.cold.p99 - r.warm.p99).toFixed(1)} ms over the warm burst; exactly 1 token request: ${r.tokenRequestsCold === 1 && r.tokenRequestsWarm === 0 ? "yes" : "NO"}`,
    );
  }
  return lines;
}
