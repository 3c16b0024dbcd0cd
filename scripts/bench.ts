// The proxy benchmark (docs/performance.md). One run, one shared local upstream, three configurations:
//   (a) direct to the upstream
//   (b) bare http-proxy-3 with a keep-alive agent adding a static bearer header
//   (c) entra-auth-proxy: API-key route, token from the Entra emulator, metrics and logs (info) on
// Every server — and the Entra emulator — runs in its own child process (scripts/bench-servers.ts); this
// process is only the load generator (autocannon, 50 connections) and the streaming / burst clients.
// All traffic is 127.0.0.1. This file parses the options and runs the sections in order; each section
// is a module of scripts/bench/.
//
//   npm run bench                       full run (≈ 15 min): 3 rounds of paired (b)+(c) runs; 10 rounds of
//                                       sequential (a)/(b)/(c) runs × 2 payloads × (1 s + 3 s) at full load;
//                                       (b) and (c) alternating in 120 turns of 0.5 s each per payload;
//                                       10 rounds × (1 s + 3 s) of each at a fixed rate; 200 MiB streams;
//                                       3 cold-token bursts
//   npm run bench -- --only paired,alternating --payloads 1k   the c/b sections alone (a few minutes)
//   npm run bench -- --only alternating --payloads 1k --slices 240 --slice-ms 500   (turns per server)
//   npm run bench -- --quick            1 paired round of 1 s + 3 s, 2 sequential and 2 fixed-rate rounds
//                                       of 1 s + 2 s, 64 MiB streams
//   npm run bench -- --duration 10 --warmup 3 --rounds 3
//   npm run bench -- --only paired,throughput,latency,streaming,token,ablation,profile
//   npm run bench -- --only latency --rate 2000   fixed-rate latency at 2,000 req/s (default 1,000)
//   npm run bench -- --only latency --latency-rounds 20 --latency-duration 5   more fixed-rate rounds
//   npm run bench -- --only throughput --sequential-rounds 20 --sequential-duration 5   (keep it even)
//   npm run bench -- --only paired --payloads 1k --rounds 4   (a quick, stable A/B while tuning)
//   npm run bench -- --only paired --payloads 1k --against DIR
//                                       before/after: (b) is replaced by (c) as the checkout in DIR builds
//                                       it (e.g. a `git worktree` of the previous commit, with node_modules);
//                                       also with --only throughput or alternating, or several of the three;
//                                       DIR = this checkout gives an A/A run, which shows how far two
//                                       identical servers differ by chance
//   npm run bench -- --only paired --payloads 1k --against . --against-node-args="--max-semi-space-size=16"
//                                       with the image's NODE_OPTIONS edited in Dockerfile: a runtime option of
//                                       (c) against the same code without it (the --against side gets these last)
//   npm run bench -- --only throughput --configs b,c --payloads 1k
//   npm run bench -- --profile          also profile (b) and (c) with --cpu-prof, taking turns alone
//                                       (--profile-rounds 6 × --profile-seconds 3; written to --out/prof)
//   npm run bench -- --ablation         also price logging and metrics with what-if variants of (c)
//   npm run bench -- --only paired --payloads 1k --variant no-request-log
//                                       a what-if variant of (c) in the main sections (see PROXY_VARIANTS)
//   npm run bench -- --doc              also replace the "latest run" block of docs/performance.md
//   npm run bench -- --node-args="--trace-gc"   Node options for (b) and (c)
//   npm run bench -- --no-pin           do not pin the proxy under test to CPU 1 (taskset) and the rest to CPU 0
//   npm run bench -- --no-product-node-options   run (c) on Node's defaults, without the image's NODE_OPTIONS
//
// Results: printed as markdown, and written to <out>/results-<time>.{json,md} (default /tmp/eap-bench).
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { ablationMarkdown, ablationRuns } from "./bench/ablation.ts";
import { alternatingMarkdown, alternatingReport, alternatingRuns } from "./bench/alternating.ts";
import { Children } from "./bench/children.ts";
import { burstMarkdown, tokenBursts } from "./bench/cold-burst.ts";
import { configurations, sanityCheck } from "./bench/configs.ts";
import { fixedRateRuns, latencyMarkdown } from "./bench/fixed-rate.ts";
import { machine } from "./bench/format.ts";
import { log, type Options, parseOptions } from "./bench/options.ts";
import { pairedMarkdown, pairedRuns } from "./bench/paired.ts";
import { profileMarkdown, profileReport, profileRuns } from "./bench/profile.ts";
import { againstNote, replaceLatestRun, runHeading, writeResults } from "./bench/report.ts";
import { proxyBookkeeping, sequentialRuns, throughputMarkdown } from "./bench/sequential.ts";
import { streamingMarkdown, streamRuns } from "./bench/streaming.ts";

/** Sections that load (b) and (c) started once and kept for all of them. */
const SHARED_SERVER_SECTIONS = ["throughput", "paired", "alternating", "latency", "streaming"];

async function main(opt: Options, children: Children, pinned: boolean): Promise<void> {
  const s = opt.settings;
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const env = machine();
  log(`node ${env.node}, ${env.nproc} CPUs (${env.cpu}); sections: ${[...opt.sections].join(", ")}`);
  const upstream = await children.start("upstream");
  const entra = await children.startEntra(upstream.ready.url);
  log(
    `the emulator's access tokens are ${children.bearerLength} characters; (b) sends a static bearer as long`,
  );
  const report: Record<string, unknown> = {
    machine: env,
    options: { ...s, pinned },
    started: new Date().toISOString(),
  };
  const md: string[] = [runHeading(env, opt, pinned)];
  try {
    if (SHARED_SERVER_SECTIONS.some((x) => opt.sections.has(x))) {
      const bare = opt.against
        ? await children.start(
            "proxy",
            ["--upstream", upstream.ready.url, "--log", join(s.out, "proxy-against.log")],
            opt.against.nodeArgs,
            opt.against.servers,
          )
        : await children.startBare(upstream.ready.url);
      const proxyLog = join(s.out, "proxy.log");
      const proxy = await children.start("proxy", [
        "--upstream",
        upstream.ready.url,
        "--log",
        proxyLog,
        "--variant",
        opt.variant,
      ]);
      const configs = configurations(upstream, bare, proxy);
      if (opt.against) {
        configs[1] = {
          ...configs[2]!,
          name: "b",
          label: `(c) of ${opt.against.dir}`,
          pid: bare.pid,
          base: bare.ready.url,
          headers: { "x-api-key": bare.ready.apiKey! },
        };
        md.push(againstNote(opt.against));
      }
      await sanityCheck(configs, children.bearerLength);
      log("sanity check passed: 200s with exact bodies; (b) and (c) attach a bearer, (a) does not");
      const [b, c] = [configs[1]!, configs[2]!];
      if (opt.sections.has("paired")) {
        const results = await pairedRuns(opt, b, c);
        report.paired = results;
        md.push(...pairedMarkdown(s, pinned, results));
      }
      if (opt.sections.has("throughput")) {
        const results = await sequentialRuns(opt, configs);
        report.throughput = results.map(({ samples: _, ...r }) => r);
        md.push(...throughputMarkdown(s, results));
        const bookkeeping = await proxyBookkeeping(proxy.ready.adminUrl!, proxyLog);
        md.push(bookkeeping.line);
        report.proxyRequestsCounted = bookkeeping.counted;
        report.proxyLogBytes = bookkeeping.logBytes;
      }
      if (opt.sections.has("alternating")) {
        const results = await alternatingRuns(opt, b, c);
        report.alternating = alternatingReport(results);
        md.push(...alternatingMarkdown(s, results));
      }
      if (opt.sections.has("latency")) {
        const results = await fixedRateRuns(opt, configs);
        report.latency = results.map(({ samples: _, ...r }) => r);
        md.push(...latencyMarkdown(s, results));
      }
      if (opt.sections.has("streaming")) {
        const results = await streamRuns(s, configs, { a: undefined, b: bare, c: proxy });
        report.streaming = results;
        md.push(...streamingMarkdown(s, results));
      }
      await Promise.all([bare.stop(), proxy.stop()]);
    }
    if (opt.sections.has("token")) {
      const results = await tokenBursts(s, children, upstream.ready.url);
      report.token = results;
      md.push(...burstMarkdown(s, results));
    }
    if (opt.sections.has("ablation")) {
      const results = await ablationRuns(s, children, upstream.ready.url);
      report.ablation = results;
      md.push(...ablationMarkdown(results));
    }
    if (opt.sections.has("profile")) {
      const profiles = await profileRuns(s, children, upstream.ready.url, stamp);
      report.profiles = profileReport(profiles);
      md.push(...profileMarkdown(s, profiles));
    }
  } finally {
    await Promise.all([upstream.stop(), entra.stop()]);
  }
  const text = md.join("\n");
  writeResults(s.out, stamp, report, text);
  if (opt.doc) replaceLatestRun(text);
}

const parsed = parseOptions(process.argv.slice(2));
if (parsed === "help") {
  // The comment block at the top of this file is the help text.
  const lines = readFileSync(new URL(import.meta.url), "utf8").split("\n");
  console.log(
    lines
      .slice(
        0,
        lines.findIndex((l) => !l.startsWith("//")),
      )
      .join("\n"),
  );
  process.exit(0);
}
mkdirSync(parsed.settings.out, { recursive: true });
// This process (and so the upstream and the emulator) goes to CPU 0; Children puts (b) and (c) on CPU 1.
const pinned =
  parsed.pin &&
  os.availableParallelism() >= 2 &&
  spawnSync("taskset", ["-a", "-p", "-c", "0", String(process.pid)], { stdio: "ignore" }).status === 0;
const children = new Children({
  pinned,
  productNodeOptions: parsed.productNodeOptions,
  serverNodeArgs: parsed.serverNodeArgs,
  out: parsed.settings.out,
});
process.on("exit", () => children.killAll());
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    children.killAll();
    process.exit(130);
  });
}
main(parsed, children, pinned).then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    children.killAll();
    process.exit(1);
  },
);
