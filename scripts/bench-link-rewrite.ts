// Rewriting the links of a ~1 MiB OData page (5,000 records with numbers and a page nextLink; with
// --expanded, also a <property>@odata.nextLink on every record, as $expand gives): the earlier JSON.parse / JSON.stringify round trip (copied
// here as the baseline) against rewriteJsonLinks, the byte-preserving scan; and the gzip route's whole
// work (decode, scan, encode), which the earlier code skipped. The two approaches alternate run by run
// (A B B A …) so that drifts in machine speed fall on both. Usage:
//   node scripts/bench-link-rewrite.ts [--runs 40] [--records 5000] [--expanded]
import { parseArgs } from "node:util";
import { gunzipSync, gzipSync } from "node:zlib";
import { rewriteJsonLinks } from "../src/proxy/link-rewrite.ts";
import { rewriteWithMappings, type UrlMapping } from "../src/proxy/rewrite.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "40" },
    records: { type: "string", default: "5000" },
    expanded: { type: "boolean", default: false },
  },
});
const runs = Math.min(Math.max(Number(values.runs), 1), 500);
const records = Math.min(Math.max(Number(values.records), 1), 100_000);

const MAPPINGS: UrlMapping[] = [[new URL("https://org.crm.dynamics.com"), "https://proxy.example/dataverse"]];

/** The rewrite as it was before the byte-preserving scan. */
const BASELINE_LINK_KEYS = new Set(["@odata.nextlink", "nextlink", "@odata.deltalink"]);
function baselineRewriteLinksIn(value: unknown, mappings: readonly UrlMapping[]): boolean {
  if (Array.isArray(value)) {
    let changed = false;
    for (const item of value) changed = baselineRewriteLinksIn(item, mappings) || changed;
    return changed;
  }
  if (value === null || typeof value !== "object") return false;
  let changed = false;
  const record = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(record)) {
    if (typeof v === "string" && BASELINE_LINK_KEYS.has(key.toLowerCase())) {
      const rewritten = rewriteWithMappings(v, mappings);
      if (rewritten !== v) {
        record[key] = rewritten;
        changed = true;
      }
    } else if (typeof v === "object" && v !== null) {
      changed = baselineRewriteLinksIn(v, mappings) || changed;
    }
  }
  return changed;
}
function baseline(body: Buffer): Buffer {
  const doc = JSON.parse(body.toString("utf8")) as unknown;
  return baselineRewriteLinksIn(doc, mappings()) ? Buffer.from(JSON.stringify(doc), "utf8") : body;
}
function mappings(): readonly UrlMapping[] {
  return MAPPINGS;
}

function page(count: number): Buffer {
  const base = "https://org.crm.dynamics.com/api/data/v9.2";
  const value = Array.from({ length: count }, (_, i) => ({
    "@odata.etag": `W/"${1_000_000 + i}"`,
    accountid: `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`,
    name: `Account ${i} — Müller & Söhne`,
    versionnumber: 12345678901234567000 + i,
    creditlimit: 922337203685477.5 - i,
    statecode: i % 2,
    ...(values.expanded
      ? { "contact_customer_accounts@odata.nextLink": `${base}/accounts(${i})/contacts?$skiptoken=${i}` }
      : {}),
  }));
  return Buffer.from(
    JSON.stringify({
      "@odata.context": `${base}/$metadata#accounts`,
      value,
      "@odata.nextLink": `${base}/accounts?$skiptoken=%3Ccookie%20pagenumber=%222%22%3E`,
    }),
  );
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const body = page(records);
const packed = gzipSync(body);
const cases: ReadonlyArray<readonly [string, () => unknown]> = [
  ["before: JSON.parse / JSON.stringify", () => baseline(body)],
  ["after: rewriteJsonLinks (byte-preserving)", () => rewriteJsonLinks(body, MAPPINGS)],
];
const gzipRoute = () => gzipSync(rewriteJsonLinks(gunzipSync(packed), MAPPINGS).body);

// Warm-up, so both are measured after the JIT has settled.
for (let i = 0; i < 5; i++) {
  for (const [, run] of cases) run();
  gzipRoute();
}
const times = cases.map(() => [] as number[]);
for (let r = 0; r < runs; r++) {
  const order = r % 4 === 0 || r % 4 === 3 ? [0, 1] : [1, 0];
  for (const c of order) {
    const start = process.hrtime.bigint();
    cases[c]![1]();
    times[c]!.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
}
const gzipTimes: number[] = [];
for (let r = 0; r < runs; r++) {
  const start = process.hrtime.bigint();
  gzipRoute();
  gzipTimes.push(Number(process.hrtime.bigint() - start) / 1e6);
}

const mib = body.length / (1024 * 1024);
console.log(
  `page: ${records} records, ${body.length} bytes (${mib.toFixed(2)} MiB), gzip ${packed.length} bytes; ${runs} runs, median`,
);
const report = (label: string, ms: number) =>
  console.log(
    `${label.padEnd(50)} ${ms.toFixed(2).padStart(8)} ms/page ${(mib / (ms / 1000)).toFixed(0).padStart(6)} MiB/s`,
  );
for (const [c, [label]] of cases.entries()) report(label, median(times[c]!));
report("after, gzip route: gunzip + rewriteJsonLinks + gzip", median(gzipTimes));
