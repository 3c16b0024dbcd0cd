// Returns the memory of relayed body chunks to the allocator soon after they are written.
//
// Node makes a new Buffer for every socket read (64 KiB while a body streams), and a relayed chunk
// is garbage once the other socket has taken it. Its memory is freed only when V8 collects the small
// JS object that owns it, and a stream allocates little else on the JS heap, so without help those
// chunks wait for an old-generation collection: the proxy's RSS rose 35–60 MiB during a 200 MiB
// transfer (docs/performance.md, "Streaming memory"). The chunks die young, so a young-generation
// collection (under a millisecond at the proxy's heap size) frees them.
//
// Every `intervalMs` the reclaimer reads V8's external memory, which includes the bytes held by
// ArrayBuffers, and runs a young-generation collection when it has grown by `budgetBytes` over the
// lowest value seen since the last one. Small requests never reach the budget between two checks; a
// stream at 400 MB/s does every 20 ms. The figure is `v8.getHeapStatistics().external_memory` (about
// 1 µs), not `process.memoryUsage().arrayBuffers`: that one also reads the RSS from /proc (15 µs in a
// tight loop, ~90 µs per call under load in CPU profiles — 1 % of the proxy's CPU at 100 calls a
// second). V8 lowers external memory one collection late (the chunks a collection frees are
// subtracted at the next), which moves the floor but not the trigger: a collection still follows
// every `budgetBytes` of new chunks.
//
// It also fixes V8's old-generation growth factor at 2 (`--heap-growing-percent=100`) unless the
// process was started with its own. With the adaptive factor, a heap of the proxy's size (25 MiB live)
// got a limit only 10 MiB above its live size, less than the young generation, so V8 marked the old
// generation without pause while a body streamed: a major collection every 60–150 ms, and young
// collections in the middle of marking made each of them longer. With the factor at 2 a 200 MiB
// stream ran with no major collection and 1.5–1.7 times faster (docs/performance.md).
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Bytes of external (ArrayBuffer) memory the reclaimer lets accumulate before a young-generation
 * collection.
 */
export const DEFAULT_RECLAIM_BUDGET_BYTES = 8 * 1024 * 1024;
const DEFAULT_INTERVAL_MS = 10;

type GcFunction = (options?: { type?: "major" | "minor"; execution?: "sync" | "async" }) => void;

export interface BufferReclaimerOptions {
  budgetBytes?: number;
  intervalMs?: number;
  /** Bytes of V8's external memory, ArrayBuffers included (tests replace it). */
  externalBytes?: () => number;
  /** Runs a young-generation collection (tests replace it). */
  collectYoung?: () => void;
}

export class BufferReclaimer {
  /** Young-generation collections run so far. */
  collections = 0;
  private readonly budget: number;
  private readonly read: () => number;
  private readonly collect: () => void;
  private readonly timer: NodeJS.Timeout;
  private floor: number;

  constructor(options: BufferReclaimerOptions = {}) {
    this.budget = options.budgetBytes ?? DEFAULT_RECLAIM_BUDGET_BYTES;
    if (!(this.budget > 0)) throw new RangeError(`budgetBytes must be positive, got ${this.budget}`);
    this.read = options.externalBytes ?? (() => getHeapStatistics().external_memory);
    if (!options.collectYoung) fixHeapGrowth();
    this.collect = options.collectYoung ?? youngCollector();
    this.floor = this.read();
    this.timer = setInterval(() => this.check(), options.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
  }

  /** One check; the timer calls it every intervalMs. */
  check(): void {
    const held = this.read();
    if (held - this.floor < this.budget) {
      this.floor = Math.min(this.floor, held);
      return;
    }
    this.collect();
    this.collections++;
    // V8 releases the freed memory on a helper thread, so reading it now would see the chunks still
    // held: the next check takes the floor from what is left by then.
    this.floor = Number.POSITIVE_INFINITY;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

let gc: GcFunction | undefined;

/**
 * The V8 flag that fixes the heap growth factor, or undefined when the process was started with its
 * own (`node --heap-growing-percent=N` or the same in NODE_OPTIONS; V8 accepts `_` for `-`).
 */
export function heapGrowthFlag(execArgv: readonly string[], nodeOptions = ""): string | undefined {
  const own = [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) =>
    arg.replaceAll("_", "-").startsWith("--heap-growing-percent"),
  );
  return own ? undefined : "--heap-growing-percent=100";
}

function fixHeapGrowth(): void {
  const flag = heapGrowthFlag(process.execArgv, process.env.NODE_OPTIONS);
  if (flag) setFlagsFromString(flag);
}

/**
 * V8's collection function without making `gc` a global of the application: the flag applies to
 * contexts created while it is set, so a throw-away context hands the function out and the flag is
 * cleared again (the same way Jest's leak detector obtains it). With --expose-gc it is the global.
 */
function youngCollector(): () => void {
  if (!gc) {
    const global = (globalThis as { gc?: GcFunction }).gc;
    if (typeof global === "function") gc = global;
    else {
      setFlagsFromString("--expose-gc");
      try {
        gc = runInNewContext("gc") as GcFunction;
      } finally {
        setFlagsFromString("--no-expose-gc");
      }
    }
  }
  const collect = gc;
  return () => collect({ type: "minor" });
}
