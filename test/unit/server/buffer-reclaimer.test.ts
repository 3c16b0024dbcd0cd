import assert from "node:assert/strict";
import { test } from "node:test";
import { BufferReclaimer, heapGrowthFlag } from "../../../src/server/buffer-reclaimer.ts";

const MiB = 1024 * 1024;

test("collects when external (ArrayBuffer) memory has grown by the budget over the lowest value seen", (t) => {
  let held = 3 * MiB;
  let collected = 0;
  const reclaimer = new BufferReclaimer({
    budgetBytes: 8 * MiB,
    intervalMs: 60_000,
    externalBytes: () => held,
    collectYoung: () => {
      collected++;
      held = 2 * MiB; // the collection freed the dead chunks
    },
  });
  t.after(() => reclaimer.stop());

  held = 10 * MiB; // +7 MiB: under the budget
  reclaimer.check();
  assert.equal(collected, 0);
  held = 1 * MiB; // something freed memory: the floor follows it down
  reclaimer.check();
  held = 9 * MiB; // +8 MiB over the new floor
  reclaimer.check();
  assert.equal(collected, 1);
  assert.equal(reclaimer.collections, 1);
  reclaimer.check(); // the first check after a collection takes the floor from what is left (2 MiB)
  assert.equal(collected, 1);
  held = 9 * MiB; // +7 MiB over it
  reclaimer.check();
  assert.equal(collected, 1);
  held = 10 * MiB;
  reclaimer.check();
  assert.equal(collected, 2);
});

test("runs on its own timer and stops", async () => {
  let held = 0;
  let collected = 0;
  const reclaimer = new BufferReclaimer({
    budgetBytes: MiB,
    intervalMs: 5,
    externalBytes: () => held,
    collectYoung: () => {
      collected++;
      held = 0;
    },
  });
  held = 2 * MiB;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(collected, 1);
  reclaimer.stop();
  held = 2 * MiB;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(collected, 1, "no check after stop()");
});

test("a real young-generation collection frees dead buffers without exposing gc globally", async (t) => {
  const reclaimer = new BufferReclaimer({ budgetBytes: 8 * MiB, intervalMs: 60_000 });
  t.after(() => reclaimer.stop());
  const before = process.memoryUsage().arrayBuffers;
  // 32 MiB of chunks that are garbage at once, as relayed body chunks are.
  for (let i = 0; i < 512; i++) Buffer.allocUnsafeSlow(64 * 1024)[0] = i;
  const dead = process.memoryUsage().arrayBuffers - before;
  if (dead < 8 * MiB) t.skip(`V8 collected the chunks itself first (${(dead / MiB).toFixed(1)} MiB left)`);
  else {
    reclaimer.check();
    assert.equal(reclaimer.collections, 1);
    // V8 sweeps the freed backing stores on a helper thread: wait for the count to catch up.
    let left = dead;
    for (let i = 0; i < 100 && left >= 4 * MiB; i++) {
      await new Promise((r) => setTimeout(r, 10));
      left = process.memoryUsage().arrayBuffers - before;
    }
    assert.ok(left < 4 * MiB, `${(left / MiB).toFixed(1)} MiB of ${(dead / MiB).toFixed(1)} MiB still held`);
  }
  assert.equal(typeof (globalThis as { gc?: unknown }).gc, "undefined", "gc is not made a global");
});

test("fixes the heap growth factor unless the process chose its own", () => {
  assert.equal(heapGrowthFlag([], undefined), "--heap-growing-percent=100");
  assert.equal(
    heapGrowthFlag(["--max-semi-space-size=8"], "--enable-source-maps"),
    "--heap-growing-percent=100",
  );
  assert.equal(heapGrowthFlag(["--heap-growing-percent=50"], ""), undefined);
  assert.equal(heapGrowthFlag([], "--max-semi-space-size=8 --heap_growing_percent=30"), undefined);
});

test("a budget of zero or less is refused", () => {
  assert.throws(() => new BufferReclaimer({ budgetBytes: 0, collectYoung: () => {} }), RangeError);
});
