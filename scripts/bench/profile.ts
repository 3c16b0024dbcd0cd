// The profile section (--profile): (b) and (c) under --cpu-prof taking turns alone, only the measured
// windows counted, so both profiles see the same machine speeds.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { PATHS, PROXY_PREFIX } from "../bench-protocol.ts";
import {
  compareFunctionsMarkdown,
  compareMarkdown,
  type ProfileWindow,
  summarise,
  summaryMarkdown,
} from "../cpuprofile-summary.ts";
import type { Children } from "./children.ts";
import { runOnly } from "./configs.ts";
import { fmtInt } from "./format.ts";
import { load } from "./measure.ts";
import { log, type Settings } from "./options.ts";

export type Profiles = Awaited<ReturnType<typeof profileRuns>>;

export async function profileRuns(s: Settings, children: Children, upstreamUrl: string, stamp: string) {
  const dir = join(s.out, "prof");
  mkdirSync(dir, { recursive: true });
  const prof = (name: string) => [
    "--cpu-prof",
    `--cpu-prof-dir=${dir}`,
    `--cpu-prof-name=${name}-${stamp}.cpuprofile`,
  ];
  const bare = await children.startBare(upstreamUrl, prof("b"));
  const proxy = await children.start(
    "proxy",
    ["--upstream", upstreamUrl, "--log", join(s.out, "proxy-profile.log")],
    prof("c"),
  );
  const sides = [
    {
      name: "b" as const,
      child: bare,
      headers: {} as Record<string, string>,
      prefix: "",
      windows: [] as ProfileWindow[],
      requests: 0,
    },
    {
      name: "c" as const,
      child: proxy,
      headers: { "x-api-key": proxy.ready.apiKey! } as Record<string, string>,
      prefix: PROXY_PREFIX,
      windows: [] as ProfileWindow[],
      requests: 0,
    },
  ];
  const pids = sides.map((x) => x.child.pid);
  try {
    for (let round = 1; round <= s.profileRounds; round++) {
      const order = round % 2 === 1 ? sides : [...sides].reverse();
      for (const side of order) {
        runOnly(pids, side.child.pid);
        const url = `${side.child.ready.url}${side.prefix}${PATHS.json1k}`;
        await load(url, side.headers, s.latencyWarmup, s.connections, false);
        const fromUs = (await side.child.stats()).monoUs;
        const { result } = await load(url, side.headers, s.profileSeconds, s.connections, false);
        const toUs = (await side.child.stats()).monoUs;
        side.windows.push({ fromUs, toUs });
        side.requests += result.requests.total;
        log(`profile round ${round} ${side.name}: ${fmtInt(result.requests.total / result.duration)} req/s`);
      }
    }
  } finally {
    runOnly(pids, undefined);
    await Promise.all(sides.map((x) => x.child.stop()));
  }
  return sides.map((side) => {
    const file = join(dir, `${side.name}-${stamp}.cpuprofile`);
    const seconds = side.windows.reduce((sum, w) => sum + (w.toUs - w.fromUs) / 1e6, 0);
    const summary = summarise(file, { top: 30, windows: side.windows, requests: side.requests });
    return { config: side.name, file, rps: side.requests / seconds, summary };
  });
}

/** The profiles without their summaries' detail, for the JSON report. */
export function profileReport(profiles: Profiles) {
  return profiles.map(({ summary, ...p }) => ({ ...p, owners: summary.owners, busyMs: summary.busyMs }));
}

export function profileMarkdown(s: Settings, profiles: Profiles): string[] {
  const [b, c] = [profiles.find((p) => p.config === "b")!, profiles.find((p) => p.config === "c")!];
  const title = (p: typeof b) =>
    `${p.config === "b" ? "(b) bare http-proxy-3" : "(c) entra-auth-proxy"}, 1 KiB, ${fmtInt(p.rps)} req/s under the profiler (measured window only)`;
  return [
    "",
    `**CPU profiles** (\`--cpu-prof\`, 1 KiB, ${s.connections} connections; (b) and (c) take turns alone, ${s.profileRounds} rounds each of ${s.profileSeconds} s after ${s.latencyWarmup} s warm-up; samples outside the measured windows dropped).`,
    "",
    "CPU per request by owner, (b) vs (c):",
    "",
    compareMarkdown(b.summary, c.summary),
    "",
    "Functions whose self time per request grew most from (b) to (c):",
    "",
    compareFunctionsMarkdown(b.summary, c.summary, 30),
    "",
    summaryMarkdown(c.summary, title(c)),
    "",
    summaryMarkdown(b.summary, title(b)),
  ];
}
