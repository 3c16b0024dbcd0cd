// Streams an upstream response body to the caller with backpressure: what `upstream.pipe(res)` does for
// this one pair, without pipe()'s general bookkeeping (eight listeners added and removed, and `pipe` /
// `unpipe` events, on every response). Every forwarded response body goes through here. The caller's
// connection closing is handled where the upstream request is made: http-proxy-3 destroys the
// upstream request then, which stops the data.
import type { Readable, Writable } from "node:stream";

/** `done` gets the number of body bytes relayed, once the source has ended. */
export function relay(from: Readable, to: Writable, done?: (bytes: number) => void): void {
  const resume = () => from.resume();
  let bytes = 0;
  from.on("data", (chunk: Buffer) => {
    bytes += chunk.length;
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", resume);
    }
  });
  from.on("end", () => {
    to.end();
    done?.(bytes);
  });
  // Like pipe(): a source that was paused explicitly (adding a data listener does not undo that) flows.
  from.resume();
}
