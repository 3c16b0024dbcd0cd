import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import {
  BATCH_CHARS,
  createLogger,
  isoTimeAt,
  logDestination,
  logFormat,
  loggedError,
  type RequestLine,
  requestLogger,
} from "../../../src/observability/logger.ts";

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "eap-log-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function linesOf(file: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(file, "utf8").catch(() => "");
  // A write may be under way: only complete lines count.
  return text
    .slice(0, text.lastIndexOf("\n") + 1)
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await sleep(20);
  }
}

test("log lines are batched: a partial batch is written within about 250 ms, a full one at once, in order", async (t) => {
  const file = join(await tempDir(t), "proxy.log");
  const destination = logDestination(file);
  const logger = createLogger({ level: "info", destination });
  logger.info({ msg: "first", n: 0 });
  // Nothing is written per line.
  await sleep(30);
  assert.equal((await linesOf(file)).length, 0);
  const firstSeen = Date.now();
  const first = await until(
    () => linesOf(file),
    (l) => l.length === 1,
    2000,
  );
  assert.deepEqual(
    first.map((l) => l.msg),
    ["first"],
  );
  assert.ok(Date.now() - firstSeen < 1000, "a partial batch is written within the batch interval");

  // A full batch is handed over without waiting for the timer: lines appear well before it fires.
  const padding = "x".repeat(200);
  const count = Math.ceil((1.5 * BATCH_CHARS) / 300); // lines of ≈ 300 characters: one batch and a half
  const handedAt = Date.now();
  for (let n = 1; n <= count; n++) logger.info({ msg: "line", n, padding });
  const firstBatch = await until(
    () => linesOf(file),
    (l) => l.length > 1,
    2000,
  );
  assert.ok(firstBatch.length > 1 && Date.now() - handedAt < 200, "a full batch is written at once");
  const all = await until(
    () => linesOf(file),
    (l) => l.length === count + 1,
    2000,
  );
  assert.equal(all.length, count + 1);
  assert.deepEqual(
    all.map((l) => l.n),
    Array.from({ length: count + 1 }, (_, i) => i),
    "every line once, in order",
  );
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  (destination as unknown as { end(): void }).end();
});

test("lines of any length and any characters are written whole and in order across batches", async (t) => {
  const file = join(await tempDir(t), "mixed.log");
  const destination = logDestination(file);
  const logger = createLogger({ level: "info", destination });
  // Multi-byte characters (2, 3 and 4 bytes of UTF-8) fill batches unevenly; one line is longer than a batch.
  const texts = ["é".repeat(700), "€".repeat(500), "😀".repeat(300), "x".repeat(2 * BATCH_CHARS), "plain"];
  const count = 400;
  for (let n = 0; n < count; n++) logger.info({ msg: "line", n, text: texts[n % texts.length] });
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const lines = await until(
    () => linesOf(file),
    (l) => l.length === count,
    5000,
  );
  assert.deepEqual(
    lines.map((l) => l.n),
    Array.from({ length: count }, (_, n) => n),
  );
  for (const l of lines) assert.equal(l.text, texts[(l.n as number) % texts.length]);
  (destination as unknown as { end(): void }).end();
});

test("lines still in a batch are written when the process exits", async (t) => {
  const dir = await tempDir(t);
  const file = join(dir, "exit.log");
  const loggerModule = new URL("../../../src/observability/logger.ts", import.meta.url).href;
  const script = `
    import { createLogger, logDestination, requestLogger } from ${JSON.stringify(loggerModule)};
    const destination = logDestination(${JSON.stringify(file)});
    const logger = createLogger({ level: "info", destination });
    const writeLine = requestLogger(logger);
    // The file opens asynchronously: log once it is open, then exit before the batch timer fires.
    setTimeout(() => {
      for (let n = 0; n < 5; n++) logger.info({ msg: "pending", n });
      writeLine({ requestId: "r", route: "/", method: "GET", path: "/", status: 200, durationMs: 1, retried: false });
      process.exit(3);
    }, 100);
  `;
  const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(child.status, 3, child.stderr);
  const lines = await linesOf(file);
  assert.deepEqual(
    lines.map((l) => l.n ?? l.msg),
    [0, 1, 2, 3, 4, "request"],
  );
});

test("the request line is byte for byte what pino writes for the same fields, and follows the level", () => {
  const written: string[] = [];
  const logger = createLogger({ level: "info", destination: { write: (l: string) => written.push(l) } });
  const writeLine = requestLogger(logger);
  const lines: RequestLine[] = [
    {
      requestId: "7d1c5e9a-3b1f-4a43-9a43-9d2f6b9b0c11",
      route: "/powerplatform",
      method: "GET",
      path: "/powerplatform/environments",
      status: 200,
      upstreamStatus: 200,
      durationMs: 3.2,
      identity: "platform-app",
      principal: "key:erp-nightly",
      retried: false,
      error: undefined,
    },
    {
      requestId: "req-1",
      route: "unmatched",
      method: undefined,
      path: '/weird/"quoted"\\back\nslash/\u00e9\u2028/\u0001',
      status: 0,
      upstreamStatus: undefined,
      durationMs: 1234.5,
      identity: undefined,
      principal: undefined,
      retried: true,
      error: "route_not_found",
    },
  ];
  // Route, method, identity, principal and error strings are escaped once and then remembered: the
  // same odd values twice, the second time from that memory.
  const odd: RequestLine = {
    ...lines[0]!,
    route: '/r"o\\ute',
    method: "PATCH",
    identity: "id\u2028\ttab",
    principal: 'jwt:su"b\n\u0001',
    error: 'e"rr',
  };
  lines.push(odd, { ...odd });
  for (const line of lines) {
    writeLine(line);
    logger.info({ msg: "request", ...line });
  }
  assert.equal(written.length, 2 * lines.length);
  const withoutTime = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
  for (let i = 0; i < written.length; i += 2) {
    assert.equal(withoutTime(written[i]!), withoutTime(written[i + 1]!), `line ${i / 2}`);
  }
  assert.deepEqual(JSON.parse(written[2]!).path, lines[1]!.path);
  assert.equal(JSON.parse(written[6]!).principal, odd.principal);

  logger.level = "warn";
  writeLine(lines[0]!);
  assert.equal(written.length, 2 * lines.length, "no request line below the configured level");
});

test("request lines wait in the batch as fields: written in order with other lines, as pino writes them, with the time of the call", async (t) => {
  const file = join(await tempDir(t), "proxy.log");
  const destination = logDestination(file);
  const logger = createLogger({ level: "info", destination });
  const writeLine = requestLogger(logger);
  const line: RequestLine = {
    requestId: "req-1",
    route: "/powerplatform",
    method: "POST",
    path: '/powerplatform/"odd"\\path\u2028',
    status: 502,
    upstreamStatus: undefined,
    durationMs: 12.5,
    identity: "platform-app",
    principal: "key:erp",
    bytesOut: 1024,
    consumer: "erp-nightly",
    retried: true,
    error: "upstream_unreachable",
  };
  logger.info({ msg: "before" });
  const calledAt = Date.now();
  writeLine(line);
  logger.warn({ msg: "after" });
  writeLine({ ...line, requestId: "req-2" });
  await sleep(60); // formatting happens at hand-over, later than the calls
  await new Promise<void>((resolve) => logger.flush(() => resolve()));
  const lines = await until(
    () => linesOf(file),
    (l) => l.length === 4,
    2000,
  );
  assert.deepEqual(
    lines.map((l) => l.msg),
    ["before", "request", "after", "request"],
  );
  assert.deepEqual(
    lines.map((l) => l.requestId),
    [undefined, "req-1", undefined, "req-2"],
  );
  assert.ok(
    Date.parse(lines[1]!.time as string) <= calledAt + 5,
    "the time is the call's, not the hand-over's",
  );

  // The same bytes as pino's own path for the same fields (time aside).
  const expected: string[] = [];
  const reference = createLogger({ level: "info", destination: { write: (l: string) => expected.push(l) } });
  reference.info({ msg: "request", ...line });
  const text = await readFile(file, "utf8");
  const withoutTime = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
  assert.equal(withoutTime(`${text.split("\n")[1]}\n`), withoutTime(expected[0]!));
  (destination as unknown as { end(): void }).end();
});

test("the time field is pino's isoTime for every millisecond, across seconds and a clock set back", () => {
  const start = Date.UTC(2026, 10, 23, 23, 59, 58, 990);
  const times = [
    start,
    start, // the same millisecond again
    start + 1,
    start + 9, // .999
    start + 10, // the next second, .000
    start + 15,
    start + 105,
    start + 1010, // the next day, 00:00:00.000
    start - 60_000 + 7, // a clock set back a minute
    start - 60_000 + 7,
    0,
    Date.now(),
  ];
  for (const ms of times) assert.equal(isoTimeAt(ms), `,"time":"${new Date(ms).toISOString()}"`, String(ms));
});

test("every field is written as pino writes it, in the line's order; undefined ones are left out", () => {
  const written: string[] = [];
  const logger = createLogger({ level: "info", destination: { write: (l: string) => written.push(l) } });
  const writeLine = requestLogger(logger);
  const line: RequestLine = {
    requestId: "req-1",
    listener: "forward-auth",
    route: "/powerplatform",
    method: "DELETE",
    path: "/powerplatform/x",
    status: 200,
    upstreamStatus: 204,
    durationMs: -0.5,
    upstreamMs: 12.25,
    identity: "platform-app",
    principal: "key:erp",
    clientIp: "2001:db8::1",
    bytesIn: 0,
    bytesOut: 1_048_576,
    consumer: 'erp "nightly"\n',
    retried: false,
    error: "upstream_reset",
    reason: "cidr",
  };
  const odd: RequestLine = {
    ...line,
    upstreamStatus: undefined,
    durationMs: Number.NaN,
    upstreamMs: Number.POSITIVE_INFINITY,
    bytesIn: undefined,
    retried: true,
    reason: undefined,
  };
  for (const l of [line, odd]) {
    writeLine(l);
    logger.info({ msg: "request", ...l });
  }
  const withoutTime = (l: string) => l.replace(/"time":"[^"]+"/, '"time":"T"');
  assert.equal(withoutTime(written[0]!), withoutTime(written[1]!));
  assert.equal(withoutTime(written[2]!), withoutTime(written[3]!));
  const parsed = JSON.parse(written[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), ["level", "time", "service", "msg", ...Object.keys(line)]);
  assert.equal(parsed.consumer, line.consumer);
  const second = JSON.parse(written[2]!) as Record<string, unknown>;
  assert.equal(second.durationMs, null);
  assert.equal(second.upstreamMs, null);
  assert.ok(
    !("upstreamStatus" in second) && !("bytesIn" in second) && !("reason" in second),
    "undefined fields are left out",
  );
});

test("only the line's own fields are written: anything else on the object (a key, a token, a header) is not", () => {
  const written: string[] = [];
  const logger = createLogger({ level: "info", destination: { write: (l: string) => written.push(l) } });
  const writeLine = requestLogger(logger);
  const secrets = {
    token: "eyJhbGciOiJSUzI1NiJ9.secret-token.sig",
    clientSecret: "secret-client-secret",
    apiKey: "secret-api-key",
    authorization: "Bearer secret-bearer",
    headers: { cookie: "session=secret-cookie" },
  };
  const line = { requestId: "req-1", route: "/lcs", status: 401, durationMs: 1, ...secrets } as RequestLine;
  writeLine(line);
  assert.equal(written.length, 1);
  for (const value of [
    "secret-token",
    "secret-client-secret",
    "secret-api-key",
    "secret-bearer",
    "secret-cookie",
  ]) {
    assert.ok(!written[0]!.includes(value), `${value} is not written`);
  }
  const parsed = JSON.parse(written[0]!) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), [
    "level",
    "time",
    "service",
    "msg",
    "requestId",
    "route",
    "status",
    "durationMs",
  ]);
});

test("a logger not made by createLogger gets pino's own path for the request line", () => {
  const written: string[] = [];
  const logger = pino({ base: { service: "other" } }, { write: (l: string) => written.push(l) });
  const writeLine = requestLogger(logger);
  writeLine({ requestId: "req-1", route: "/x", status: 200, durationMs: 1 });
  const parsed = JSON.parse(written[0]!) as Record<string, unknown>;
  assert.equal(parsed.msg, "request");
  assert.equal(parsed.service, "other");
  assert.equal(parsed.requestId, "req-1");
});

test("LOG_FORMAT json|pretty decides the format; unset, a terminal gets pretty and a pipe JSON", () => {
  assert.equal(logFormat("json", true), "json");
  assert.equal(logFormat("pretty", false), "pretty");
  assert.equal(logFormat(undefined, true), "pretty");
  assert.equal(logFormat(undefined, false), "json");
});

test("an internal error is logged with its name, code, message and stack, not the request data it carries", () => {
  let urlError: unknown;
  try {
    new URL("https://flow host/invoke?sp=%2Ftriggers&sig=SIGNATURE-OF-THE-FLOW");
  } catch (err) {
    urlError = err;
  }
  assert.ok(urlError instanceof Error);
  assert.match(String((urlError as { input?: string }).input), /SIGNATURE/, "Node's error carries the URL");
  const logged = loggedError(urlError);
  assert.equal(logged.type, "TypeError");
  assert.equal(logged.code, "ERR_INVALID_URL");
  assert.match(logged.stack ?? "", /Invalid URL/);
  assert.doesNotMatch(JSON.stringify(logged), /SIGNATURE/);
  assert.deepEqual(loggedError("a thrown string with a secret"), { type: "string" });
});
