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

const CENSOR = "[redacted]";

/** Where each logger made by createLogger writes (pino exposes no public way to ask a logger). */
const destinations = new WeakMap<Logger, DestinationStream>();

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

/**
 * LOG_FORMAT `json` or `pretty` decides; unset, a person at a terminal gets readable lines and pipes
 * and log collectors get JSON.
 */
export function logFormat(value: string | undefined, isTTY: boolean): "json" | "pretty" {
  if (value === "json" || value === "pretty") return value;
  return isTTY ? "pretty" : "json";
}

export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  const config = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { service: "entra-auth-proxy" },
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    timestamp: isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
  };
  if (!options.destination && logFormat(process.env.LOG_FORMAT, process.stdout.isTTY === true) === "pretty") {
    return pino({ ...config, transport: { target: "pino-pretty", options: { colorize: true } } });
  }
  const destination = options.destination ?? logDestination();
  const logger = pino(config, destination);
  destinations.set(logger, destination);
  return logger;
}

/**
 * Lines are handed to the file writer in batches of about this many characters: each write costs a
 * hand-off to libuv's thread pool and a file-system call whatever its size.
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
    // Handed bytes, sonic-boom writes them as they are; handed a string, it measures it, has fs.write
    // encode it, and encodes it once more after the write to account for the bytes written.
    contentMode: "buffer",
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
  /** The writer's `write`: in contentMode "buffer" it takes bytes (sonic-boom's README); its typings name only strings. */
  private readonly writeBytes: (data: Buffer) => boolean;

  constructor(writer: SonicBoom) {
    this.writer = writer;
    this.writeBytes = writer.write.bind(writer) as unknown as (data: Buffer) => boolean;
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
    const batch = Buffer.from(lines.join(""));
    this.lines = [];
    this.chars = 0;
    this.writeBytes(batch);
  }

  private clearTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * The per-request line (design.md "Logs"), its fields in the order they are written. Undefined ones are
 * left out, as pino leaves them out. Only these fields are written: nothing else a caller puts on the
 * object (a header, a key) can reach the log.
 */
export interface RequestLine {
  requestId: string;
  /** Which listener answered, when not the proxy's own (e.g. forward-auth). */
  listener?: string | undefined;
  route: string;
  method?: string | undefined;
  /** Without the query (see safePath). */
  path?: string | undefined;
  status: number;
  upstreamStatus?: number | undefined;
  durationMs: number;
  upstreamMs?: number | undefined;
  identity?: string | undefined;
  principal?: string | undefined;
  clientIp?: string | undefined;
  bytesIn?: number | undefined;
  bytesOut?: number | undefined;
  consumer?: string | undefined;
  retried?: boolean | undefined;
  /** For a refusal or a failure: the problem code, and why access was refused (e.g. invalid_key). */
  error?: string | undefined;
  reason?: string | undefined;
}

/**
 * The writer of the per-request line: exactly the JSON `logger.info({ msg: "request", ...line })`
 * writes (same level, time, bindings, key order), to the destination createLogger gave the logger.
 * pino's general path — redaction with wildcard paths and a key-by-key walk that handles any value —
 * costs several times the rest of the line at thousands of requests a second
 * (scripts/bench-request-log.ts), and the line holds only named plain values. With the batched
 * destination the line waits in the batch as its fields and is formatted with the rest of the batch,
 * which costs less than formatting it between the other work of its request. It uses pino's public
 * API only (level and bindings); a logger not made by createLogger, such as the pretty one at a
 * terminal, gets pino's own path.
 */
export function requestLogger(logger: Logger): (line: RequestLine) => void {
  const destination = destinations.get(logger);
  if (destination === undefined) {
    return (line) => logger.info({ msg: "request", ...line });
  }
  let bindings = "";
  for (const [key, value] of Object.entries(logger.bindings())) {
    bindings += `,${JSON.stringify(key)}:${JSON.stringify(value)}`;
  }
  if (destination instanceof BatchedDestination) {
    return (line) => {
      if (logger.isLevelEnabled("info")) destination.writeRequestLine(line, Date.now(), bindings);
    };
  }
  return (line) => {
    if (logger.isLevelEnabled("info")) destination.write(formatRequestLine(line, Date.now(), bindings));
  };
}

function formatRequestLine(l: RequestLine, time: number, bindings: string): string {
  return (
    `{"level":"info"${isoTimeAt(time)}${bindings},"msg":"request"` +
    text(',"requestId":', l.requestId) +
    LISTENER.format(l.listener) +
    ROUTE.format(l.route) +
    METHOD.format(l.method) +
    text(',"path":', l.path) +
    number(',"status":', l.status) +
    number(',"upstreamStatus":', l.upstreamStatus) +
    number(',"durationMs":', l.durationMs) +
    number(',"upstreamMs":', l.upstreamMs) +
    IDENTITY.format(l.identity) +
    PRINCIPAL.format(l.principal) +
    CLIENT_IP.format(l.clientIp) +
    number(',"bytesIn":', l.bytesIn) +
    number(',"bytesOut":', l.bytesOut) +
    CONSUMER.format(l.consumer) +
    flag(',"retried":', l.retried) +
    ERROR.format(l.error) +
    REASON.format(l.reason) +
    "}\n"
  );
}

function text(key: string, value: string | undefined): string {
  return value === undefined ? "" : key + JSON.stringify(value);
}

/** A field whose values repeat line after line (names from the config, addresses, codes): each is escaped once. */
class RepeatedField {
  private readonly key: string;
  private readonly written = new Map<string, string>();

  constructor(name: string) {
    this.key = `,"${name}":`;
  }

  format(value: string | undefined): string {
    if (value === undefined) return "";
    let field = this.written.get(value);
    if (field === undefined) {
      field = this.key + JSON.stringify(value);
      // A bound keeps values that do not repeat (a caller's odd method, many addresses) from growing it.
      if (this.written.size >= 1024) this.written.clear();
      this.written.set(value, field);
    }
    return field;
  }
}

const LISTENER = new RepeatedField("listener");
const ROUTE = new RepeatedField("route");
const METHOD = new RepeatedField("method");
const IDENTITY = new RepeatedField("identity");
const PRINCIPAL = new RepeatedField("principal");
const CLIENT_IP = new RepeatedField("clientIp");
const CONSUMER = new RepeatedField("consumer");
const ERROR = new RepeatedField("error");
const REASON = new RepeatedField("reason");

/** As JSON.stringify writes numbers: NaN and the infinities as null. */
function number(key: string, value: number | undefined): string {
  return value === undefined ? "" : key + (Number.isFinite(value) ? String(value) : "null");
}

function flag(key: string, value: boolean | undefined): string {
  return value === undefined ? "" : key + (value ? "true" : "false");
}

/**
 * An error as an internal-error line logs it: its name, code, message and stack, not the other properties
 * it carries, which may hold request data (a URL error's `input` is the whole URL, signed query and all).
 */
export function loggedError(err: unknown): { type: string; code?: string; message?: string; stack?: string } {
  if (!(err instanceof Error)) return { type: typeof err };
  const { code } = err as NodeJS.ErrnoException;
  return {
    type: err.name,
    ...(typeof code === "string" ? { code } : {}),
    message: err.message,
    ...(err.stack === undefined ? {} : { stack: err.stack }),
  };
}

/** Removes query values that must never be logged (SAS signatures, codes, keys). */
export function safePath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
