// pino JSON logs to stdout, with redaction of everything secret-looking (design.md "Logs").
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger };

/** Paths redacted wherever they appear; the request log line never carries headers or queries anyway. */
const REDACT_PATHS = [
  "token",
  "accessToken",
  "access_token",
  "clientSecret",
  "password",
  "apiKey",
  "authorization",
  "cookie",
  "*.token",
  "*.accessToken",
  "*.clientSecret",
  "*.password",
  "*.authorization",
  "*.cookie",
  'headers["x-api-key"]',
  'headers["authorization"]',
  'headers["cookie"]',
];

let lastMs = -1;
let lastTime = "";
let lastSecond = Number.NaN;
/** `,"time":"2026-11-23T19:10:05.` for lastSecond. */
let secondPrefix = "";

/** pino's isoTime. */
function isoTime(): string {
  return isoTimeAt(Date.now());
}

/**
 * `,"time":"<ISO 8601>"` as pino's isoTime writes it, remembered for the last millisecond (several
 * lines share one at load) with the date and time up to the second formatted once a second: the lines
 * of a batch carry a different millisecond each, and `toISOString` for each cost more than the rest
 * of the time field.
 */
export function isoTimeAt(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    const second = Math.floor(ms / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
    }
    const milli = ms - second * 1000;
    lastTime = `${secondPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z"`;
  }
  return lastTime;
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const config = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: "entra-auth-proxy" },
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    timestamp: isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (options.destination) return pino(config, options.destination);
  // A person at a terminal gets readable lines; pipes and log collectors get JSON.
  if (process.stdout.isTTY && process.env.LOG_FORMAT !== "json") {
    return pino({ ...config, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  return pino(config, logDestination());
}

/**
 * Lines are handed to the file writer in batches of about this many characters. Each write costs a
 * hand-off to libuv's thread pool and a file-system call whatever its size: writing 64 MiB of request
 * lines to a file took 1.1 µs of CPU per line in 16 KiB writes, 0.35–0.48 in 64 KiB ones, 0.24–0.34
 * in 128 KiB ones.
 */
export const BATCH_CHARS = 64 * 1024;
/** A batch that is not full is handed over after at most this long. */
const BATCH_MS = 250;

/**
 * Where JSON lines go: stdout, or a file. Asynchronous and batched: lines are collected in an array
 * and handed to pino's writer (sonic-boom) about 64 KiB at a time, or every 250 ms, because one write
 * per request line costs a syscall and a thread-pool round trip per request under load. (sonic-boom's
 * own `minLength` batching appends to one string and measures its byte length on every line, which
 * copies the growing buffer once per line.) Request lines wait in the batch as their fields and are
 * turned into text when the batch is handed over (see requestLogger). Pending lines are written
 * synchronously at exit.
 */
export function logDestination(file?: string): DestinationStream {
  const writer = pino.destination({
    dest: file ?? 1,
    sync: false,
    ...(file ? { mkdir: true, append: false } : {}),
  });
  return new BatchedDestination(writer);
}

type SonicBoom = ReturnType<typeof pino.destination>;

const unflushed = new Set<BatchedDestination>();
let exitHookInstalled = false;

/** A request line waiting in a batch, as fields: formatted when the batch is handed over. */
class PendingRequestLine {
  readonly line: RequestLine;
  readonly time: number;
  readonly bindings: string;
  constructor(line: RequestLine, time: number, bindings: string) {
    this.line = line;
    this.time = time;
    this.bindings = bindings;
  }
}

/** Characters a request line is counted as toward the batch size before it is formatted. */
const REQUEST_LINE_CHARS = 300;

class BatchedDestination implements DestinationStream {
  private lines: Array<string | PendingRequestLine> = [];
  private chars = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly writer: SonicBoom;

  constructor(writer: SonicBoom) {
    this.writer = writer;
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on("exit", () => {
        for (const d of unflushed) {
          try {
            d.flushSync();
          } catch {
            // a file still opening, or already closed: nothing can be written at exit
          }
        }
      });
    }
    // Once the file writer is closed there is nothing left to flush into.
    writer.once("close", () => {
      this.clearTimer();
      unflushed.delete(this);
    });
  }

  write(line: string): void {
    this.add(line, line.length);
  }

  /** A request line, kept as its fields until the batch is handed over. */
  writeRequestLine(line: RequestLine, time: number, bindings: string): void {
    this.add(new PendingRequestLine(line, time, bindings), REQUEST_LINE_CHARS);
  }

  private add(line: string | PendingRequestLine, chars: number): void {
    this.lines.push(line);
    this.chars += chars;
    if (this.chars >= BATCH_CHARS) {
      this.handOver();
    } else if (this.timer === undefined) {
      unflushed.add(this);
      this.timer = setTimeout(() => this.handOver(), BATCH_MS).unref();
    }
  }

  /** pino's `logger.flush(cb)`. */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    this.writer.flush(cb);
  }

  /** pino's exit handling and `pino.final` call this. */
  flushSync(): void {
    this.handOver();
    this.writer.flushSync();
  }

  end(): void {
    this.handOver();
    this.writer.end();
  }

  private handOver(): void {
    this.clearTimer();
    unflushed.delete(this);
    if (this.chars === 0) return;
    const lines = this.lines;
    for (let i = 0; i < lines.length; i++) {
      const l = lines[i]!;
      if (typeof l !== "string") lines[i] = formatRequestLine(l.line, l.time, l.bindings);
    }
    const batch = lines.join("");
    this.lines = [];
    this.chars = 0;
    this.writer.write(batch);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** The per-request line's fields (design.md "Logs"), in the order they are written. */
export interface RequestLine {
  requestId: string;
  route: string;
  method: string | undefined;
  /** Without the query (see safePath). */
  path: string;
  status: number;
  upstreamStatus: number | undefined;
  durationMs: number;
  identity: string | undefined;
  principal: string | undefined;
  retried: boolean;
  error: string | undefined;
}

/**
 * The writer of the per-request line: exactly the JSON `logger.info({ msg: "request", ...line })`
 * writes (same level, time, bindings, key order, undefined fields left out), to the logger's own
 * destination, built by one fixed-shape function. pino's general path — redaction, serializers, a
 * key-by-key walk — costs more than the rest of the line at thousands of requests a second, and the
 * line carries only values the proxy produced (ids, route and identity names, a query-less path,
 * status codes), never headers or bodies. With the batched destination the line waits in the batch as
 * its fields (and the time) and is formatted with the rest of the batch: formatting fifty lines in a
 * row costs a fraction of formatting each one between the other work of its request.
 */
export function requestLogger(logger: Logger): (line: RequestLine) => void {
  const internals = logger as unknown as Record<symbol, unknown>;
  const stream = internals[pino.symbols.streamSym] as DestinationStream;
  const bindings = internals[pino.symbols.chindingsSym] as string;
  if (stream instanceof BatchedDestination) {
    return (l) => {
      if (logger.isLevelEnabled("info")) stream.writeRequestLine(l, Date.now(), bindings);
    };
  }
  return (l) => {
    if (logger.isLevelEnabled("info")) stream.write(formatRequestLine(l, Date.now(), bindings));
  };
}

function formatRequestLine(l: RequestLine, time: number, bindings: string): string {
  let line = `{"level":"info"${isoTimeAt(time)}${bindings},"msg":"request","requestId":${JSON.stringify(l.requestId)},"route":${quoted(l.route)}`;
  if (l.method !== undefined) line += `,"method":${quoted(l.method)}`;
  line += `,"path":${JSON.stringify(l.path)},"status":${l.status}`;
  if (l.upstreamStatus !== undefined) line += `,"upstreamStatus":${l.upstreamStatus}`;
  line += `,"durationMs":${l.durationMs}`;
  if (l.identity !== undefined) line += `,"identity":${quoted(l.identity)}`;
  if (l.principal !== undefined) line += `,"principal":${quoted(l.principal)}`;
  line += `,"retried":${l.retried}`;
  if (l.error !== undefined) line += `,"error":${quoted(l.error)}`;
  return `${line}}\n`;
}

/** How many distinct values `quoted` remembers. */
const QUOTED_MAX = 512;
const quotedCache = new Map<string, string>();

/**
 * JSON.stringify of a value from a small set — a route, method, identity, principal or error code —
 * remembered: the same few strings recur on every line, and a lookup costs less than re-escaping them
 * (0.75–0.96 µs a line instead of 1.07–1.87, format and join, in a tight loop). Past QUOTED_MAX
 * values (principals of many JWT callers, say) new ones are no longer remembered.
 */
function quoted(value: string): string {
  let json = quotedCache.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (quotedCache.size < QUOTED_MAX) quotedCache.set(value, json);
  }
  return json;
}

/** Removes query values that must never be logged (SAS signatures, codes, keys). */
export function safePath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
