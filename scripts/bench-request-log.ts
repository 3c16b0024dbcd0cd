// Micro-benchmark of the per-request log line: pino's public API against requestLogger's writer
// (src/observability/logger.ts). The first three hand a string to the same destination, one that only
// counts characters: what is measured is building the line. The last writes fresh lines through the
// batched file destination the proxy uses (process CPU, so the thread pool's writes count too).
//   node scripts/bench-request-log.ts [--lines 200000] [--rounds 5]
// Bounded: lines × rounds × 3 candidates, a few seconds. Prints CPU time per line (the machine may be
// shared), the median of the rounds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import {
  createLogger,
  logDestination,
  type RequestLine,
  requestLogger,
} from "../src/observability/logger.ts";

const { values } = parseArgs({ options: { lines: { type: "string" }, rounds: { type: "string" } } });
const LINES = Number(values.lines ?? 200_000);
const ROUNDS = Number(values.rounds ?? 5);

/** A line with today's fields and the ones the design adds (client IP, consumer, bytes, problem). */
function lineFor(i: number): RequestLine {
  return {
    requestId: `7d1c5e9a-3b1f-4a43-9a43-${String(i).padStart(12, "0")}`,
    route: "/powerplatform",
    method: "GET",
    path: `/powerplatform/environmentmanagement/environments/${i % 100}`,
    status: 200,
    upstreamStatus: 200,
    durationMs: 3.2,
    upstreamMs: 2.9,
    identity: "platform-app",
    principal: "key:erp-nightly",
    consumer: "erp-nightly",
    clientIp: "10.1.2.3",
    bytesIn: 0,
    bytesOut: 1024,
    retried: false,
    error: undefined,
    reason: undefined,
  };
}

let chars = 0;
const logger = createLogger({
  level: "info",
  destination: { write: (line: string) => (chars += line.length) },
});
const writer = requestLogger(logger);
const child = logger.child({});
const dir = mkdtempSync(join(tmpdir(), "eap-request-log-"));
const fileLogger = createLogger({ level: "info", destination: logDestination(join(dir, "proxy.log")) });
const fileWriter = requestLogger(fileLogger);
const candidates: Record<string, (line: RequestLine) => void> = {
  "pino logger.info({ msg, ...line })": (line) => logger.info({ msg: "request", ...line }),
  "pino child.info(line, msg)": (line) => child.info(line, "request"),
  "requestLogger writer": writer,
  "requestLogger → batched file, fresh lines": (line) => fileWriter({ ...line }),
};

const lines = Array.from({ length: 1000 }, (_, i) => lineFor(i));
const results = new Map<string, number[]>();
for (let round = 0; round <= ROUNDS; round++) {
  for (const [name, write] of Object.entries(candidates)) {
    const started = process.cpuUsage();
    for (let i = 0; i < LINES; i++) write(lines[i % lines.length]!);
    // What is still batched is handed over; the writes it started finish within the pause.
    await new Promise<void>((resolve) => fileLogger.flush(() => resolve()));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const cpu = process.cpuUsage(started);
    const ns = ((cpu.user + cpu.system) * 1000) / LINES;
    if (round > 0) results.set(name, [...(results.get(name) ?? []), ns]); // round 0 warms up
  }
}
const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `${LINES} lines × ${ROUNDS} rounds, Node ${process.version}; CPU ns per line (median, then every round)`,
);
for (const [name, ns] of results) {
  console.log(
    `${name.padEnd(36)} ${median(ns).toFixed(0).padStart(6)}   ${ns.map((x) => x.toFixed(0)).join(" ")}`,
  );
}
console.log(`(${chars} characters written)`);
rmSync(dir, { recursive: true, force: true });
