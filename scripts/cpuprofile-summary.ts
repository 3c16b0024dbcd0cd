// Summarises a V8 .cpuprofile (node --cpu-prof): self time by owner (our src/, http-proxy-3, other
// packages, node internals, V8 builtins, GC, idle), the top self-time functions, and the inclusive
// time of our own functions (which covers the pino / prom-client / express work they call).
//
//   node scripts/cpuprofile-summary.ts /tmp/eap-bench/prof/c-….cpuprofile [--top 25] [--from µs --to µs]
//
// scripts/bench.ts passes the measured window (process.hrtime µs in the child, the same clock as the
// profile's timestamps) so start-up and warm-up are left out, and the request count, for µs/request.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  key: string;
  owner: string;
  ms: number;
  share: number;
}

/** A stretch of a profile, in CLOCK_MONOTONIC µs (as process.hrtime). */
export interface ProfileWindow {
  fromUs: number;
  toUs: number;
}

export interface SummaryOptions {
  top?: number;
  /**
   * Only samples taken in these windows; a sample's interval is cut at its window's end (the process
   * may be stopped right after it).
   */
  windows?: readonly ProfileWindow[];
  /** Requests served in the window: adds µs per request. */
  requests?: number;
}

export interface ProfileSummary {
  file: string;
  requests: number | undefined;
  totalMs: number;
  /** Total minus (idle). */
  busyMs: number;
  owners: Array<{ owner: string; ms: number; share: number; usPerRequest?: number }>;
  topSelf: FunctionTime[];
  /** Inclusive time of functions in our src/, recursion counted once. */
  ourInclusive: FunctionTime[];
  /** Self µs of every function key (for comparing two profiles). */
  selfUsByKey: Record<string, { owner: string; us: number }>;
}

/** Who a frame belongs to. */
export function ownerOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === "") {
    if (functionName === "(garbage collector)") return "GC";
    if (functionName === "(idle)") return "idle";
    if (functionName === "(program)") return "(program): native, unattributed";
    if (functionName === "(root)") return "(root)";
    return "V8 builtins / native";
  }
  if (url.startsWith("node:")) return "node internals";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm !== -1) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]!.startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (url.includes("/src/")) return "entra-auth-proxy src/";
  if (url.includes("/scripts/")) return "bench harness";
  return "other";
}

function keyOf(frame: CallFrame): string {
  const name = frame.functionName || "(anonymous)";
  if (!frame.url) return name;
  let file = frame.url;
  if (file.startsWith("file://")) file = fileURLToPath(file);
  const nm = file.lastIndexOf("/node_modules/");
  if (nm !== -1) file = file.slice(nm + "/node_modules/".length);
  else if (file.includes("/src/")) file = file.slice(file.lastIndexOf("/src/") + 1);
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

export function summarise(file: string, options: SummaryOptions = {}): ProfileSummary {
  const top = options.top ?? 25;
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const selfUs = new Map<number, number>();
  // timeDeltas[i] is the time before sample i; attribute the interval after a sample to it.
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    let dt = Math.max(0, profile.timeDeltas[i + 1] ?? 0);
    if (options.windows) {
      const w = options.windows.find((x) => t >= x.fromUs && t <= x.toUs);
      if (!w) continue;
      dt = Math.min(dt, w.toUs - t);
    }
    const id = profile.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  }
  let totalUs = 0;
  for (const v of selfUs.values()) totalUs += v;

  const owners = new Map<string, number>();
  const selfByKey = new Map<string, { owner: string; us: number }>();
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const owner = ownerOf(frame);
    owners.set(owner, (owners.get(owner) ?? 0) + us);
    const key = keyOf(frame);
    const entry = selfByKey.get(key) ?? { owner, us: 0 };
    entry.us += us;
    selfByKey.set(key, entry);
  }
  const idleUs = owners.get("idle") ?? 0;
  const busyUs = totalUs - idleUs;
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);

  // Inclusive time per function key (our src/ only), counting a key once per stack.
  const inclusiveUs = new Map<string, number>();
  const root = profile.nodes[0]!;
  const active = new Map<string, number>();
  const walk = (node: ProfileNode): number => {
    const frame = node.callFrame;
    const key = keyOf(frame);
    const ours = ownerOf(frame) === "entra-auth-proxy src/";
    if (ours) active.set(key, (active.get(key) ?? 0) + 1);
    let total = selfUs.get(node.id) ?? 0;
    for (const child of node.children ?? []) total += walk(byId.get(child)!);
    if (ours) {
      const depth = active.get(key)! - 1;
      active.set(key, depth);
      if (depth === 0) inclusiveUs.set(key, (inclusiveUs.get(key) ?? 0) + total);
    }
    return total;
  };
  walk(root);

  const ms = (us: number) => us / 1000;
  const perRequest = (us: number) => (options.requests ? { usPerRequest: us / options.requests } : {});
  return {
    file,
    requests: options.requests,
    totalMs: ms(totalUs),
    busyMs: ms(busyUs),
    owners: [...owners]
      .filter(([o]) => o !== "idle" && o !== "(root)")
      .map(([owner, us]) => ({ owner, ms: ms(us), share: share(us), ...perRequest(us) }))
      .sort((a, b) => b.ms - a.ms),
    topSelf: [...selfByKey]
      .filter(([, e]) => e.owner !== "idle" && e.owner !== "(root)")
      .map(([key, e]) => ({ key, owner: e.owner, ms: ms(e.us), share: share(e.us) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
    ourInclusive: [...inclusiveUs]
      .map(([key, us]) => ({ key, owner: "entra-auth-proxy src/", ms: ms(us), share: share(us) }))
      .sort((a, b) => b.ms - a.ms)
      .slice(0, top),
    selfUsByKey: Object.fromEntries(selfByKey),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

export function summaryMarkdown(s: ProfileSummary, title: string): string {
  const lines = [
    `#### ${title}`,
    "",
    `\`${s.file}\` — ${(s.totalMs / 1000).toFixed(1)} s sampled, ${(s.busyMs / 1000).toFixed(1)} s busy (not idle)${s.requests ? `, ${s.requests.toLocaleString("en-US")} requests, ${((s.busyMs * 1000) / s.requests).toFixed(0)} µs CPU per request` : ""}; shares are of busy time.`,
    "",
    "| owner | self ms | share | µs/request |",
    "|---|---:|---:|---:|",
    ...s.owners
      .filter((o) => o.share >= 0.001)
      .map(
        (o) => `| ${o.owner} | ${o.ms.toFixed(0)} | ${pct(o.share)} | ${o.usPerRequest?.toFixed(1) ?? "—"} |`,
      ),
    "",
    "| top self time | owner | ms | share |",
    "|---|---|---:|---:|",
    ...s.topSelf.map((f) => `| \`${f.key}\` | ${f.owner} | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
  ];
  if (s.ourInclusive.length > 0) {
    lines.push(
      "",
      "| our function, inclusive (self + callees) | ms | share |",
      "|---|---:|---:|",
      ...s.ourInclusive.map((f) => `| \`${f.key}\` | ${f.ms.toFixed(0)} | ${pct(f.share)} |`),
    );
  }
  return lines.join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: "string", default: "25" },
      from: { type: "string" },
      to: { type: "string" },
      requests: { type: "string" },
    },
  });
  const options: SummaryOptions = { top: Number(values.top) };
  if (values.from && values.to) options.windows = [{ fromUs: Number(values.from), toUs: Number(values.to) }];
  if (values.requests) options.requests = Number(values.requests);
  for (const file of positionals) console.log(`${summaryMarkdown(summarise(file, options), file)}\n`);
}

/** Per-request CPU of two profiles side by side, by owner: where (c) spends more than (b). */
export function compareMarkdown(b: ProfileSummary, c: ProfileSummary): string {
  const owners = new Set([...b.owners, ...c.owners].map((o) => o.owner));
  const us = (s: ProfileSummary, owner: string) => s.owners.find((o) => o.owner === owner)?.usPerRequest ?? 0;
  const rows = [...owners]
    .map((owner) => ({ owner, b: us(b, owner), c: us(c, owner) }))
    .filter((r) => r.b >= 0.5 || r.c >= 0.5)
    .sort((x, y) => y.c - y.b - (x.c - x.b));
  const total = (s: ProfileSummary) => (s.busyMs * 1000) / (s.requests ?? 1);
  return [
    "| owner | (b) µs/request | (c) µs/request | (c) − (b) |",
    "|---|---:|---:|---:|",
    ...rows.map((r) => `| ${r.owner} | ${r.b.toFixed(1)} | ${r.c.toFixed(1)} | ${(r.c - r.b).toFixed(1)} |`),
    `| **busy CPU total** | **${total(b).toFixed(1)}** | **${total(c).toFixed(1)}** | **${(total(c) - total(b)).toFixed(1)}** |`,
  ].join("\n");
}

/** The functions whose self time per request grew most from (b) to (c). */
export function compareFunctionsMarkdown(b: ProfileSummary, c: ProfileSummary, top = 30): string {
  const perReq = (s: ProfileSummary, key: string) => (s.selfUsByKey[key]?.us ?? 0) / (s.requests ?? 1);
  const keys = new Set([...Object.keys(b.selfUsByKey), ...Object.keys(c.selfUsByKey)]);
  const rows = [...keys]
    .filter((k) => k !== "(idle)" && k !== "(root)")
    .map((key) => ({
      key,
      owner: c.selfUsByKey[key]?.owner ?? b.selfUsByKey[key]?.owner ?? "?",
      b: perReq(b, key),
      c: perReq(c, key),
    }))
    .sort((x, y) => y.c - y.b - (x.c - x.b))
    .slice(0, top);
  return [
    "| function (self time) | owner | (b) µs/req | (c) µs/req | (c) − (b) |",
    "|---|---|---:|---:|---:|",
    ...rows.map(
      (r) =>
        `| \`${r.key}\` | ${r.owner} | ${r.b.toFixed(2)} | ${r.c.toFixed(2)} | ${(r.c - r.b).toFixed(2)} |`,
    ),
  ].join("\n");
}
