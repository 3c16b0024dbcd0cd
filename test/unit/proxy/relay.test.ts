import assert from "node:assert/strict";
import { once } from "node:events";
import { PassThrough, Writable } from "node:stream";
import { test } from "node:test";
import { relay } from "../../../src/proxy/relay.ts";

test("relay: every byte in order, the source held back while the destination is full, then ended", async () => {
  const source = new PassThrough();
  const received: Buffer[] = [];
  let pausedWhileFull = false;
  const slow = new Writable({
    highWaterMark: 1024,
    write(chunk: Buffer, _encoding, done) {
      received.push(chunk);
      if (source.isPaused()) pausedWhileFull = true;
      setImmediate(done);
    },
  });
  relay(source, slow);
  const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(512, i));
  for (const c of chunks) source.write(c);
  source.end();
  await once(slow, "finish");
  assert.deepEqual(Buffer.concat(received), Buffer.concat(chunks));
  assert.ok(
    pausedWhileFull,
    "the source was paused while the destination buffered more than its high-water mark",
  );
});

test("relay: a source that was paused explicitly flows (as with pipe)", { timeout: 2000 }, async () => {
  const source = new PassThrough();
  source.pause();
  let bytes = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      done();
    },
  });
  relay(source, sink);
  source.end(Buffer.alloc(10));
  await once(sink, "finish");
  assert.equal(bytes, 10);
});
