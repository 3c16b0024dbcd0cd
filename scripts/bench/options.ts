// The bench's command-line options (the help text is the comment block at the top of scripts/bench.ts),
// checked once and handed to every section as typed values.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { PATHS, PROXY_VARIANTS, type ProxyVariant } from "../bench-protocol.ts";

const MiB = 1024 * 1024;

export type Payload = "1k" | "64k";

/** Each payload's upstream path and its name in the tables. */
export const PAYLOAD = {
  "1k": { path: PATHS.json1k, name: "1 KiB" },
  "64k": { path: PATHS.json64k, name: "64 KiB" },
} as const;

/** The sections a run can have, in the order they run. */
export const SECTIONS = [
  "paired",
  "throughput",
  "alternating",
  "latency",
  "streaming",
  "token",
  "ablation",
  "profile",
] as const;

/** The sections --against can run: each compares (b) and (c) alone, so another checkout's (c) can be (b). */
const AGAINST_SECTIONS = new Set(["paired", "throughput", "alternating"]);

/** Numbers and paths the sections read; written to the JSON report as they are. */
export interface Settings {
  duration: number;
  warmup: number;
  rounds: number;
  connections: number;
  rate: number;
  latencyRounds: number;
  latencyDuration: number;
  latencyWarmup: number;
  sequentialRounds: number;
  sequentialDuration: number;
  sequentialWarmup: number;
  sliceMs: number;
  slices: number;
  streamBytes: number;
  burst: number;
  profileSeconds: number;
  profileRounds: number;
  out: string;
}

export interface Options {
  settings: Settings;
  sections: Set<string>;
  /** The configurations (a, b, c) the sequential and fixed-rate sections run. */
  configs: Set<string>;
  payloads: Payload[];
  variant: ProxyVariant;
  /** --against DIR: the bench servers of another checkout, whose (c) stands in for (b). */
  against?: { dir: string; servers: string; nodeArgs: string[] };
  /** Extra Node options for (b) and (c), e.g. --node-args="--max-semi-space-size=32". */
  serverNodeArgs: string[];
  /** The Node options (c) runs with: the image's, unless --no-product-node-options. */
  productNodeOptions: string[];
  pin: boolean;
  doc: boolean;
}

/** The options of `args`, or "help" when --help asks for the help text. */
export function parseOptions(args: string[]): Options | "help" {
  const { values: flags } = parseArgs({
    args,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      rounds: { type: "string" },
      connections: { type: "string", default: "50" },
      rate: { type: "string", default: "1000" },
      "latency-rounds": { type: "string" },
      "sequential-rounds": { type: "string" },
      "sequential-duration": { type: "string" },
      "slice-ms": { type: "string" },
      slices: { type: "string" },
      "latency-duration": { type: "string" },
      "stream-mib": { type: "string" },
      burst: { type: "string", default: "1000" },
      only: { type: "string" },
      configs: { type: "string", default: "a,b,c" },
      payloads: { type: "string", default: "1k,64k" },
      profile: { type: "boolean", default: false },
      ablation: { type: "boolean", default: false },
      "profile-seconds": { type: "string", default: "3" },
      "profile-rounds": { type: "string", default: "6" },
      "no-pin": { type: "boolean", default: false },
      "no-product-node-options": { type: "boolean", default: false },
      "node-args": { type: "string", default: "" },
      variant: { type: "string", default: "product" },
      against: { type: "string" },
      "against-node-args": { type: "string", default: "" },
      quick: { type: "boolean", default: false },
      doc: { type: "boolean", default: false },
      out: { type: "string", default: "/tmp/eap-bench" },
      help: { type: "boolean", default: false },
    },
  });
  if (flags.help) return "help";
  const quick = flags.quick ?? false;
  const settings: Settings = {
    duration: Number(flags.duration ?? (quick ? 3 : 5)),
    warmup: Number(flags.warmup ?? (quick ? 1 : 2)),
    rounds: Number(flags.rounds ?? (quick ? 1 : 3)),
    connections: Number(flags.connections),
    rate: Number(flags.rate),
    // Many short fixed-rate rounds, (b) and (c) by turns, so the stalls that decide a p99 fall on both alike.
    latencyRounds: Number(flags["latency-rounds"] ?? (quick ? 2 : 10)),
    latencyDuration: Number(flags["latency-duration"] ?? (quick ? 2 : 3)),
    latencyWarmup: 1,
    // An even number of short rounds, so (b) and (c) run second equally often and see the same drift.
    sequentialRounds: Number(flags["sequential-rounds"] ?? (quick ? 2 : 10)),
    sequentialDuration: Number(flags["sequential-duration"] ?? (quick ? 2 : 3)),
    sequentialWarmup: 1,
    // Short turns, many of them, because the p99 added is judged turn by turn (docs/performance.md).
    sliceMs: Number(flags["slice-ms"] ?? 500),
    slices: Number(flags.slices ?? (quick ? 8 : 120)),
    streamBytes: Number(flags["stream-mib"] ?? (quick ? 64 : 200)) * MiB,
    burst: Number(flags.burst),
    profileSeconds: Number(flags["profile-seconds"]),
    profileRounds: Number(flags["profile-rounds"]),
    out: flags.out!,
  };
  for (const [k, v] of Object.entries(settings)) {
    if (typeof v === "number" && !(v > 0)) throw new Error(`--${k} must be a positive number`);
  }
  const sections = new Set(
    (
      flags.only ??
      `paired,throughput,alternating,latency,streaming,token${flags.ablation ? ",ablation" : ""}${flags.profile ? ",profile" : ""}`
    )
      .split(",")
      .map((s) => s.trim()),
  );
  const unknown = [...sections].filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown.length > 0)
    throw new Error(`--only: no section ${unknown.join(", ")} (${SECTIONS.join(", ")})`);
  if (!PROXY_VARIANTS.includes(flags.variant as ProxyVariant)) {
    throw new Error(`--variant must be one of ${PROXY_VARIANTS.join(", ")}`);
  }
  const againstNodeArgs = words(flags["against-node-args"]!);
  if (againstNodeArgs.length > 0 && !flags.against)
    throw new Error("--against-node-args needs --against DIR");
  let against: Options["against"];
  if (flags.against) {
    const servers = join(flags.against, "scripts", "bench-servers.ts");
    if (!flags.only || ![...sections].every((s) => AGAINST_SECTIONS.has(s)) || !existsSync(servers)) {
      throw new Error(
        "--against DIR needs --only paired, throughput or alternating (or several of them) and DIR/scripts/bench-servers.ts",
      );
    }
    against = { dir: flags.against, servers, nodeArgs: againstNodeArgs };
  }
  return {
    settings,
    sections,
    configs: new Set(flags.configs!.split(",")),
    payloads: (["1k", "64k"] as const).filter((p) => flags.payloads!.split(",").includes(p)),
    variant: flags.variant as ProxyVariant,
    against,
    serverNodeArgs: words(flags["node-args"]!),
    productNodeOptions: flags["no-product-node-options"] ? [] : productNodeOptions(),
    pin: !flags["no-pin"],
    doc: flags.doc ?? false,
  };
}

function words(text: string): string[] {
  return text.split(" ").filter(Boolean);
}

/** The image's `ENV NODE_OPTIONS` (Dockerfile): (c) runs as shipped. */
function productNodeOptions(): string[] {
  const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
  const value = /^ENV NODE_OPTIONS="([^"]*)"/m.exec(dockerfile)?.[1];
  if (value === undefined) throw new Error('Dockerfile has no ENV NODE_OPTIONS="…" line');
  return value.split(" ").filter(Boolean);
}

export function log(message: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}
