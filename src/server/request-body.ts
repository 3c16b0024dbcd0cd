// The caller's request body, taken into the form it is forwarded in (design.md, Forwarding rules):
// - none: no Content-Length (or 0) and no Transfer-Encoding;
// - buffered: a body of at most REPLAY_LIMIT_BYTES, however framed, held so a 401 can be retried;
// - stream: anything longer, piped as it arrives, counted against maxBodyBytes.
// A body on GET, HEAD, DELETE or OPTIONS is refused: the forwarding library reframes bodies on DELETE
// and OPTIONS, and no Microsoft API this proxy fronts takes one on these methods.
// A body that stalls for idleMs ends the request with 408 request_timeout.
import type { IncomingMessage } from "node:http";
import { PassThrough } from "node:stream";
import { ProxyError } from "../errors.ts";
import type { OutgoingBody } from "../proxy/forward.ts";

/** Bodies up to this size are held so the request can be replayed after an upstream 401. */
export const REPLAY_LIMIT_BYTES = 64 * 1024;

const NO_BODY_METHODS = new Set(["GET", "HEAD", "DELETE", "OPTIONS"]);
export const NO_BODY: OutgoingBody = { kind: "none" };

export interface BodyLimits {
  maxBytes: number;
  /** The longest the caller may go without sending a byte of its body. */
  idleMs: number;
  /** Told the running total of body bytes received, as they arrive. */
  onBytes?: (total: number) => void;
}

export function tooLarge(maxBytes: number): ProxyError {
  return new ProxyError("payload_too_large", `request body exceeds ${maxBytes} bytes`);
}

/** Whether the caller declared a body: a Transfer-Encoding, or a Content-Length other than 0. */
export function declaresBody(req: IncomingMessage): boolean {
  const declared = req.headers["content-length"];
  return req.headers["transfer-encoding"] !== undefined || (declared !== undefined && declared !== "0");
}

/** The body as the caller declared it: refuses what must not be forwarded before anything is read. */
export function declaredBody(
  req: IncomingMessage,
  limits: BodyLimits,
): { length: number | undefined } | undefined {
  if (!declaresBody(req)) return undefined;
  const chunked = req.headers["transfer-encoding"] !== undefined;
  const declared = req.headers["content-length"];
  const method = req.method ?? "GET";
  if (NO_BODY_METHODS.has(method)) {
    throw new ProxyError("bad_request", `a request body is not accepted on ${method}`);
  }
  const length = chunked ? undefined : Number(declared);
  if (length !== undefined && length > limits.maxBytes) throw tooLarge(limits.maxBytes);
  return { length };
}

/** A body that was already checked by declaredBody is replayable when it was held in memory. */
export function isReplayable(body: OutgoingBody): boolean {
  return body.kind !== "stream";
}

/**
 * Reads the body into its forwarded form. Faults found once the body streams (too large, stalled,
 * the caller gone) go to `onStreamFault`, since by then the request is already on its way upstream.
 */
export function readBody(
  req: IncomingMessage,
  limits: BodyLimits,
  onStreamFault: (error: ProxyError) => void,
): OutgoingBody | Promise<OutgoingBody> {
  const declared = declaredBody(req, limits);
  if (declared === undefined) return NO_BODY;
  const { length } = declared;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let seen = 0;
    let stream: PassThrough | undefined;
    let settled = false;
    const timer = setTimeout(
      () => fault(new ProxyError("request_timeout", `the request body stalled for ${limits.idleMs} ms`)),
      limits.idleMs,
    );
    function streamFromHere(): void {
      stream = new PassThrough();
      for (const chunk of chunks) stream.write(chunk);
      chunks.length = 0;
      req.pipe(stream);
      resolve({ kind: "stream", stream, length });
    }
    function fault(error: ProxyError): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off("data", onData);
      if (stream) {
        req.unpipe(stream);
        stream.destroy();
        onStreamFault(error);
      } else {
        reject(error);
      }
    }
    function onData(chunk: Buffer): void {
      timer.refresh();
      seen += chunk.length;
      limits.onBytes?.(seen);
      if (seen > limits.maxBytes) {
        fault(tooLarge(limits.maxBytes));
        return;
      }
      if (stream) return;
      chunks.push(chunk);
      if (seen > REPLAY_LIMIT_BYTES) streamFromHere();
    }
    req.on("data", onData);
    req.once("end", () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!stream) resolve({ kind: "buffered", bytes: Buffer.concat(chunks, seen) });
    });
    req.once("error", () => fault(new ProxyError("bad_request", "the request body could not be read")));
    req.once("close", () => {
      if (!req.complete)
        fault(new ProxyError("bad_request", "the caller closed the connection during the body"));
    });
    if (length !== undefined && length > REPLAY_LIMIT_BYTES) streamFromHere();
  });
}
