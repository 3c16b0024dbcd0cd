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

let lastMs = 0;
let lastTime = "";

/** pino's isoTime, formatted once per millisecond (several request lines share one at load). */
function isoTime(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = `,"time":"${new Date(now).toISOString()}"`;
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
 * Where JSON lines go: stdout, or a file. Asynchronous and batched — a write is issued once 4 KiB are
 * buffered, or every second — because one write per request line costs a syscall and a thread-pool
 * round trip per request under load. pino flushes the buffer synchronously when the process exits.
 */
export function logDestination(file?: string): DestinationStream {
  return pino.destination({
    dest: file ?? 1,
    sync: false,
    minLength: 4096,
    periodicFlush: 1000,
    ...(file ? { mkdir: true, append: false } : {}),
  });
}

/**
 * The logger for the per-request line. That line is built only from values the proxy produced (ids,
 * route and identity names, a query-less path, status codes), never from headers or bodies, so it
 * skips redaction: the wildcard paths above cost more per line than the rest of the line.
 */
export function requestLogger(logger: Logger): Logger {
  return logger.child({}, { redact: [] });
}

/** Removes query values that must never be logged (SAS signatures, codes, keys). */
export function safePath(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
