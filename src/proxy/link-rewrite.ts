// rewriteLinks: true — @odata.nextLink / nextLink in JSON responses point back through the proxy.
// Only the link values change: a byte-level scan finds them and every other byte is copied as the
// upstream sent it (numbers digit for digit, string escapes, whitespace, non-UTF-8 bytes). Bodies up to
// a size cap are held (compressed ones are decoded and encoded again with the same coding); anything
// larger, not JSON or in a coding we do not know streams through untouched (and is counted), so a huge
// listing never sits in memory.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import {
  brotliCompress,
  brotliDecompress,
  deflate,
  gunzip,
  gzip,
  inflate,
  constants as zlibConstants,
} from "node:zlib";
import { relay } from "./relay.ts";
import { rewriteWithMappings, type UrlMapping } from "./rewrite.ts";

export const LINK_REWRITE_MAX_BYTES = 4 * 1024 * 1024;

export type LinkRewriteResult =
  | "rewritten"
  | "unchanged"
  | "too_large"
  | "not_json"
  | "encoded"
  | "invalid_json";

export interface LinkRewriteOptions {
  /** The caller's request method: a response to HEAD has no body, whatever its Content-Length says. */
  readonly method?: string;
  /** The largest body (before and after decoding) that is held to be rewritten. */
  readonly maxBytes?: number;
}

/**
 * Sends `upstream` to `res` with `headers`, rewriting links when the body qualifies.
 * `done` reports what happened (for metrics).
 */
export function sendWithLinkRewrite(
  upstream: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  mappings: readonly UrlMapping[],
  done: (result: LinkRewriteResult) => void,
  options: LinkRewriteOptions = {},
): void {
  const { method, maxBytes = LINK_REWRITE_MAX_BYTES } = options;
  const passThrough = (result: LinkRewriteResult) => {
    res.writeHead(status, upstream.statusMessage, headers);
    relay(upstream, res);
    done(result);
  };
  if (!/\bjson\b/i.test(String(headers["content-type"] ?? ""))) {
    passThrough("not_json");
    return;
  }
  // No body to rewrite: the upstream's framing (a HEAD's Content-Length, none on 204/304) goes as is.
  if (method === "HEAD" || status === 204 || status === 304) {
    passThrough("unchanged");
    return;
  }
  const coding = String(headers["content-encoding"] ?? "identity")
    .trim()
    .toLowerCase();
  const codec = CODECS.get(coding);
  if (coding !== "identity" && !codec) {
    passThrough("encoded");
    return;
  }
  if (Number(headers["content-length"] ?? Number.NaN) > maxBytes) {
    passThrough("too_large");
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  // While the body is held the caller may be answered otherwise (its own body refused) or leave:
  // then nothing more is written to it.
  const answeredElsewhere = () => res.headersSent || res.destroyed;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    chunks.push(chunk);
    if (size > maxBytes) {
      // Larger than the cap after all (chunked): send what we hold, then stream the rest as is.
      upstream.off("data", onData);
      upstream.off("end", onEnd);
      if (answeredElsewhere()) {
        chunks.length = 0;
        upstream.resume();
        return;
      }
      upstream.pause();
      res.writeHead(status, upstream.statusMessage, headers);
      for (const c of chunks) res.write(c);
      chunks.length = 0;
      relay(upstream, res);
      done("too_large");
    }
  };
  const send = (body: Buffer, result: LinkRewriteResult) => {
    if (answeredElsewhere()) return;
    const sent: OutgoingHttpHeaders = { ...headers, "content-length": String(body.length) };
    delete sent["transfer-encoding"];
    res.writeHead(status, upstream.statusMessage, sent);
    res.end(body);
    done(result);
  };
  const onEnd = () => {
    const raw = Buffer.concat(chunks);
    if (!codec) {
      const { result, body } = rewriteJsonLinks(raw, mappings);
      send(body, result);
      return;
    }
    codec.decode(raw, maxBytes, (decodeError, plain) => {
      if (decodeError) {
        send(
          raw,
          (decodeError as { code?: string }).code === "ERR_BUFFER_TOO_LARGE" ? "too_large" : "encoded",
        );
        return;
      }
      const { result, body } = rewriteJsonLinks(plain, mappings);
      // Unchanged or invalid: the upstream's own compressed bytes go out, not an encoding of ours.
      if (result !== "rewritten") {
        send(raw, result);
        return;
      }
      codec.encode(body, (encodeError, packed) => {
        if (encodeError) send(raw, "encoded");
        else send(packed, "rewritten");
      });
    });
  };
  upstream.on("data", onData);
  upstream.on("end", onEnd);
}

type ZlibCallback = (error: Error | null, result: Buffer) => void;

interface Codec {
  decode(body: Buffer, maxOutputLength: number, callback: ZlibCallback): void;
  encode(body: Buffer, callback: ZlibCallback): void;
}

const GZIP: Codec = {
  decode: (body, maxOutputLength, callback) => gunzip(body, { maxOutputLength }, callback),
  encode: (body, callback) => gzip(body, callback),
};

/** The Content-Encoding values that are decoded and encoded again (asynchronously, off the event loop). */
const CODECS: ReadonlyMap<string, Codec> = new Map([
  ["gzip", GZIP],
  ["x-gzip", GZIP],
  [
    "deflate",
    {
      decode: (body, maxOutputLength, callback) => inflate(body, { maxOutputLength }, callback),
      encode: (body, callback) => deflate(body, callback),
    },
  ],
  [
    "br",
    {
      decode: (body, maxOutputLength, callback) => brotliDecompress(body, { maxOutputLength }, callback),
      // Brotli's default quality (11) is meant for static assets; a middle quality keeps a page's
      // re-encoding cheap while still compressing about as well as gzip.
      encode: (body, callback) =>
        brotliCompress(
          body,
          {
            params: {
              [zlibConstants.BROTLI_PARAM_QUALITY]: 5,
              [zlibConstants.BROTLI_PARAM_SIZE_HINT]: body.length,
            },
          },
          callback,
        ),
    },
  ],
]);

export interface JsonLinkRewrite {
  readonly result: "rewritten" | "unchanged" | "invalid_json";
  /** The body to send: the input itself unless a link changed. */
  readonly body: Buffer;
}

/**
 * Rewrites the link values in a JSON text, copying every other byte as is. Link keys (any case):
 * `@odata.nextLink`, `nextLink`, `@odata.deltaLink` and `<property>@odata.nextLink`, at any depth.
 */
export function rewriteJsonLinks(body: Buffer, mappings: readonly UrlMapping[]): JsonLinkRewrite {
  const pieces: Buffer[] = [];
  let copiedTo = 0;
  const valid = scanJson(body, (start, end) => {
    const value = JSON.parse(body.toString("utf8", start, end)) as string;
    const mapped = rewriteWithMappings(value, mappings);
    if (mapped === value) return;
    pieces.push(body.subarray(copiedTo, start), Buffer.from(JSON.stringify(mapped), "utf8"));
    copiedTo = end;
  });
  if (!valid) return { result: "invalid_json", body };
  if (pieces.length === 0) return { result: "unchanged", body };
  pieces.push(body.subarray(copiedTo));
  return { result: "rewritten", body: Buffer.concat(pieces) };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MINUS = 0x2d;

/**
 * Checks that `buf` is one JSON value (RFC 8259 grammar; string contents are bytes, so any encoding
 * passes) and calls `onLinkValue(start, end)` with the span, quotes included, of each string value of
 * a link key. Returns false for anything that is not JSON.
 */
function scanJson(buf: Buffer, onLinkValue: (start: number, end: number) => void): boolean {
  const n = buf.length;
  /** For each container we are inside, the byte that closes it. */
  const closers: number[] = [];
  let linkValue = false;
  /** Reads `"key" :` at `at`; returns where its value starts, or -1. */
  const member = (at: number): number => {
    if (buf[at] !== QUOTE) return -1;
    const keyEnd = stringEnd(buf, at);
    if (keyEnd < 0) return -1;
    linkValue = isLinkKey(buf, at, keyEnd);
    const colon = skipWhitespace(buf, keyEnd);
    return buf[colon] === COLON ? skipWhitespace(buf, colon + 1) : -1;
  };
  let i = skipWhitespace(buf, 0);
  for (;;) {
    // `i` is where a value starts.
    const isLink = linkValue;
    linkValue = false;
    const b = buf[i];
    if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
      const close = b === OPEN_OBJECT ? CLOSE_OBJECT : CLOSE_ARRAY;
      i = skipWhitespace(buf, i + 1);
      if (buf[i] === close) {
        i++;
      } else {
        closers.push(close);
        if (close === CLOSE_OBJECT) i = member(i);
        if (i < 0) return false;
        continue;
      }
    } else if (b === QUOTE) {
      const end = stringEnd(buf, i);
      if (end < 0) return false;
      if (isLink) onLinkValue(i, end);
      i = end;
    } else if (b === MINUS || isDigit(b)) {
      i = numberEnd(buf, i);
    } else if (b === 0x74) {
      i = literalEnd(buf, i, TRUE);
    } else if (b === 0x66) {
      i = literalEnd(buf, i, FALSE);
    } else if (b === 0x6e) {
      i = literalEnd(buf, i, NULL);
    } else {
      return false;
    }
    if (i < 0) return false;
    // After a value: close finished containers, then move on to the next element or member.
    for (;;) {
      i = skipWhitespace(buf, i);
      const close = closers.at(-1);
      if (close === undefined) return i === n;
      const c = buf[i];
      if (c === close) {
        closers.pop();
        i++;
      } else if (c === COMMA) {
        i = skipWhitespace(buf, i + 1);
        if (close === CLOSE_OBJECT) i = member(i);
        if (i < 0) return false;
        break;
      } else {
        return false;
      }
    }
  }
}

function skipWhitespace(buf: Buffer, i: number): number {
  for (;;) {
    const c = buf[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
}

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function isHexDigit(c: number | undefined): boolean {
  return c !== undefined && (isDigit(c) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66));
}

/** `"`, `\`, `/`, b, f, n, r, t: the escapes besides \uXXXX. */
const SIMPLE_ESCAPES = new Set([0x22, 0x5c, 0x2f, 0x62, 0x66, 0x6e, 0x72, 0x74]);

/** Given the index of an opening quote, the index just after the closing one, or -1. */
function stringEnd(buf: Buffer, i: number): number {
  const n = buf.length;
  for (i++; i < n; i++) {
    const c = buf[i]!;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      const e = buf[++i];
      if (e === 0x75) {
        if (
          !(
            isHexDigit(buf[i + 1]) &&
            isHexDigit(buf[i + 2]) &&
            isHexDigit(buf[i + 3]) &&
            isHexDigit(buf[i + 4])
          )
        )
          return -1;
        i += 4;
      } else if (e === undefined || !SIMPLE_ESCAPES.has(e)) {
        return -1;
      }
    } else if (c < 0x20) {
      return -1;
    }
  }
  return -1;
}

/** `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` from `i`: the index after it, or -1. */
function numberEnd(buf: Buffer, i: number): number {
  if (buf[i] === MINUS) i++;
  if (buf[i] === 0x30) i++;
  else if (isDigit(buf[i])) while (isDigit(buf[i])) i++;
  else return -1;
  if (buf[i] === 0x2e) {
    i++;
    if (!isDigit(buf[i])) return -1;
    while (isDigit(buf[i])) i++;
  }
  if (buf[i] === 0x65 || buf[i] === 0x45) {
    i++;
    if (buf[i] === 0x2b || buf[i] === MINUS) i++;
    if (!isDigit(buf[i])) return -1;
    while (isDigit(buf[i])) i++;
  }
  return i;
}

const TRUE = Buffer.from("true");
const FALSE = Buffer.from("false");
const NULL = Buffer.from("null");

function literalEnd(buf: Buffer, i: number, literal: Buffer): number {
  const end = i + literal.length;
  return end <= buf.length && buf.compare(literal, 0, literal.length, i, end) === 0 ? end : -1;
}

const NEXT_LINK = Buffer.from("nextlink");
const DELTA_LINK = Buffer.from("@odata.deltalink");
const ODATA_NEXT_LINK = Buffer.from("@odata.nextlink");

/** Whether the key token `buf[start, end)` (quotes included) names a link, in any case. */
function isLinkKey(buf: Buffer, start: number, end: number): boolean {
  const from = start + 1;
  const to = end - 1;
  // Every link key ends in "k"; nearly all other keys are ruled out by that byte alone.
  if (to - from < NEXT_LINK.length || ((buf[to - 1] ?? 0) | 0x20) !== 0x6b) return false;
  if (buf.indexOf(BACKSLASH, from) < to) {
    // Escapes in a key (rare): compare the decoded text.
    const key = (JSON.parse(buf.toString("utf8", start, end)) as string).toLowerCase();
    return key === "nextlink" || key === "@odata.deltalink" || key.endsWith("@odata.nextlink");
  }
  return (
    equalsIgnoringCase(buf, from, to, NEXT_LINK) ||
    equalsIgnoringCase(buf, from, to, DELTA_LINK) ||
    (to - from >= ODATA_NEXT_LINK.length &&
      equalsIgnoringCase(buf, to - ODATA_NEXT_LINK.length, to, ODATA_NEXT_LINK))
  );
}

/** Compares `buf[from, to)` with a lower-case ASCII `pattern`, letters in either case. */
function equalsIgnoringCase(buf: Buffer, from: number, to: number, pattern: Buffer): boolean {
  if (to - from !== pattern.length) return false;
  for (let k = 0; k < pattern.length; k++) {
    const p = pattern[k]!;
    const c = buf[from + k]!;
    if (c !== p && !(p >= 0x61 && p <= 0x7a && (c | 0x20) === p)) return false;
  }
  return true;
}
