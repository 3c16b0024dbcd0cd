// The run's report: the heading that names the machine and options, the results files, and the
// "latest run" block of docs/performance.md (--doc).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Machine } from "./format.ts";
import { log, type Options } from "./options.ts";

const DOC = new URL("../../docs/performance.md", import.meta.url).pathname;

/** The first paragraph of a run's markdown: when, on what, and with which options. */
export function runHeading(env: Machine, opt: Options, pinned: boolean): string {
  const versions = Object.entries(env.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(", ");
  const pinning = pinned
    ? "Proxy under test pinned to CPU 1; load generator, upstream and Entra emulator on CPU 0 (taskset)."
    : "No CPU pinning.";
  const product =
    opt.productNodeOptions.length > 0
      ? `the image's Node options (\`${opt.productNodeOptions.join(" ")}\`)`
      : "Node's default options";
  const both = opt.serverNodeArgs.length > 0 ? `; both with \`${opt.serverNodeArgs.join(" ")}\`` : "";
  const variant =
    opt.variant === "product" ? "" : ` (c) is the what-if variant \`${opt.variant}\`, not the product.`;
  return `Run of ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC — ${env.nproc} × ${env.cpu}, ${env.memGiB} GiB, ${env.kernel}, Node ${env.node}, ${versions}. ${pinning} (c) runs with ${product}; (b) with Node's defaults${both}.${variant}`;
}

/** The paragraph saying that (b) is another checkout's (c), with --against. */
export function againstNote(against: NonNullable<Options["against"]>): string {
  const nodeArgs =
    against.nodeArgs.length > 0
      ? `, with \`${against.nodeArgs.join(" ")}\` after the image's Node options`
      : "";
  return `(b) below is (c) as built by the checkout in ${against.dir}${nodeArgs}, not bare http-proxy-3.`;
}

/** Prints the markdown and writes it, with the JSON report, to <out>/results-<stamp>.{md,json}. */
export function writeResults(
  out: string,
  stamp: string,
  report: Record<string, unknown>,
  text: string,
): void {
  const base = join(out, `results-${stamp}`);
  writeFileSync(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${base}.md`, `${text}\n`);
  console.log(`\n${text}\n`);
  log(`results written to ${base}.json and ${base}.md`);
}

/** Replaces the block between the bench:latest markers of docs/performance.md with `text`. */
export function replaceLatestRun(text: string): void {
  const begin = "<!-- bench:latest:begin -->";
  const end = "<!-- bench:latest:end -->";
  const doc = readFileSync(DOC, "utf8");
  const i = doc.indexOf(begin);
  const j = doc.indexOf(end);
  if (i === -1 || j < i) throw new Error(`${DOC} has no ${begin} … ${end} block`);
  writeFileSync(DOC, `${doc.slice(0, i + begin.length)}\n${text}\n${doc.slice(j)}`);
  log(`replaced the latest-run block in ${DOC}`);
}
