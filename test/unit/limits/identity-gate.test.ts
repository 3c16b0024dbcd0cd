import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import type { ServerResponse } from "node:http";
import { test } from "node:test";
import { CallerBuckets } from "../../../src/limits/caller-limits.ts";
import { IdentityGate, LeftQueue, NO_TICKET, type Ticket } from "../../../src/limits/identity-gate.ts";
import { LimitRefusal } from "../../../src/limits/refusal.ts";

const HOST = "org.crm4.dynamics.com";

/** A stand-in for the caller's response: only its "close" event matters to the gate. */
function caller(): ServerResponse & EventEmitter {
  return new EventEmitter() as ServerResponse & EventEmitter;
}

function clock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

/** Lets promise callbacks and zero-delay timers run. */
const settle = () => new Promise((r) => setImmediate(r));

test("without limits or pauses the gate answers at once with the shared no-op ticket", () => {
  const gate = new IdentityGate("app", undefined, Date.now, () => {});
  const room = gate.enter(HOST, caller());
  assert.equal(room, NO_TICKET, "no allocation, no promise");
});

test("concurrency: the 53rd request waits (FIFO) and goes when a slot is freed", async () => {
  const c = clock();
  const waits: number[] = [];
  const gate = new IdentityGate("app", { concurrent: 52, maxWaitMs: 30_000 }, c.now, (s) => waits.push(s));
  const tickets = Array.from({ length: 52 }, () => gate.enter(HOST, caller()) as Ticket);
  assert.ok(tickets.every((t) => !(t instanceof Promise)));
  const order: number[] = [];
  const a = (gate.enter(HOST, caller()) as Promise<Ticket>).then((t) => {
    order.push(1);
    return t;
  });
  const b = (gate.enter(HOST, caller()) as Promise<Ticket>).then((t) => {
    order.push(2);
    return t;
  });
  await settle();
  assert.deepEqual(order, []);
  c.advance(250);
  tickets[0]!.done();
  tickets[0]!.done(); // idempotent: gives back one slot only
  await settle();
  assert.deepEqual(order, [1]);
  tickets[1]!.done();
  await Promise.all([a, b]);
  assert.deepEqual(order, [1, 2]);
  assert.equal(gate.inFlight, 52);
  assert.deepEqual(waits.slice(0, 1), [0.25]);
});

test("requests per window: the window's next request waits until the oldest start leaves the window", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const c = clock();
  const gate = new IdentityGate(
    "app",
    { window: { requests: 3, perMs: 1_000 }, maxWaitMs: 5_000 },
    c.now,
    () => {},
  );
  for (let i = 0; i < 3; i++) assert.equal(gate.enter(HOST, caller()), NO_TICKET);
  let admitted = false;
  const waiting = (gate.enter(HOST, caller()) as Promise<Ticket>).then(() => (admitted = true));
  c.advance(999);
  t.mock.timers.tick(999);
  await settle();
  assert.equal(admitted, false);
  c.advance(1);
  t.mock.timers.tick(1);
  await waiting;
  assert.equal(admitted, true);
});

test("a request that cannot get room within maxWaitMs gets 429 rate_limited with Retry-After", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const c = clock();
  const gate = new IdentityGate("app", { concurrent: 1, maxWaitMs: 2_000 }, c.now, () => {});
  gate.enter(HOST, caller());
  const waiting = gate.enter(HOST, caller()) as Promise<Ticket>;
  c.advance(2_000);
  t.mock.timers.tick(2_000);
  await assert.rejects(waiting, (err: unknown) => {
    assert.ok(err instanceof LimitRefusal);
    assert.equal(err.status, 429);
    assert.equal(err.limit, "identity");
    assert.ok(Number(err.headers["retry-after"]) >= 1);
    return true;
  });
  assert.equal(gate.snapshot().queued, 0);
});

test("a caller that disconnects leaves the queue; the one behind it moves up", async () => {
  const gate = new IdentityGate("app", { concurrent: 1, maxWaitMs: 30_000 }, Date.now, () => {});
  const holder = gate.enter(HOST, caller()) as Ticket;
  const leaving = caller();
  const left = gate.enter(HOST, leaving) as Promise<Ticket>;
  const next = gate.enter(HOST, caller()) as Promise<Ticket>;
  assert.equal(gate.snapshot().queued, 2);
  leaving.emit("close");
  await assert.rejects(left, LeftQueue);
  assert.equal(gate.snapshot().queued, 1);
  holder.done();
  await next;
  assert.equal(gate.snapshot().queued, 0);
});

test("a pause admits nothing for that host until Retry-After has passed, then one probe; the rest follow its answer", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const c = clock();
  const gate = new IdentityGate("app", { concurrent: 52, maxWaitMs: 30_000 }, c.now, () => {});
  gate.pause(HOST, 5_000);
  const admitted: number[] = [];
  const tickets: Ticket[] = [];
  const waiting = Array.from({ length: 20 }, (_, i) =>
    (gate.enter(HOST, caller()) as Promise<Ticket>).then((ticket) => {
      admitted.push(i);
      tickets.push(ticket);
    }),
  );
  // Another host of the same identity is not held up.
  assert.ok(!((gate.enter("other.example", caller()) as unknown) instanceof Promise));
  for (let ms = 0; ms < 4_999; ms += 500) {
    c.advance(Math.min(500, 4_999 - ms));
    t.mock.timers.tick(Math.min(500, 4_999 - ms));
    await settle();
  }
  assert.deepEqual(admitted, [], "nothing during the pause");
  c.advance(1);
  t.mock.timers.tick(1);
  await settle();
  assert.deepEqual(admitted, [0], "one probe once the pause is over");
  // The probe is throttled again: a new pause, nothing more goes.
  gate.pause(HOST, 1_000);
  tickets[0]!.done();
  await settle();
  assert.deepEqual(admitted, [0]);
  c.advance(1_000);
  t.mock.timers.tick(1_000);
  await settle();
  assert.deepEqual(admitted, [0, 1], "the next probe after the second pause");
  tickets[1]!.done(); // answered without a pause: the host is open again
  await Promise.all(waiting);
  assert.equal(admitted.length, 20);
  assert.deepEqual(gate.snapshot().pauses, []);
});

test("a paused identity without room to wait refuses at once with the remaining Retry-After", () => {
  const c = clock();
  const gate = new IdentityGate("app", undefined, c.now, () => {});
  gate.pause(HOST, 7_000);
  c.advance(2_500);
  assert.throws(
    () => gate.enter(HOST, caller()),
    (err: unknown) =>
      err instanceof LimitRefusal && err.limit === "upstream_pause" && err.headers["retry-after"] === "5",
  );
});

test("caller buckets: a burst, then 429 with Retry-After and the IETF headers; other callers unaffected", () => {
  const c = clock();
  const buckets = new CallerBuckets(c.now);
  const limit = { requests: 600, perMs: 60_000, burst: 3 };
  for (let i = 0; i < 3; i++) buckets.take("erp-nightly", limit);
  assert.throws(
    () => buckets.take("erp-nightly", limit),
    (err: unknown) => {
      assert.ok(err instanceof LimitRefusal);
      assert.equal(err.limit, "consumer");
      assert.equal(err.headers["retry-after"], "1");
      assert.equal(err.headers["ratelimit-policy"], '"caller";q=600;w=60');
      assert.equal(err.headers.ratelimit, '"caller";r=0;t=1');
      return true;
    },
  );
  buckets.take("reporting", limit);
  c.advance(100); // 600 a minute: one token every 100 ms
  buckets.take("erp-nightly", limit);
  assert.throws(() => buckets.take("erp-nightly", limit), LimitRefusal);
});

test("caller buckets: a reload that keeps the limit keeps the budget; a changed limit starts afresh", () => {
  const c = clock();
  const buckets = new CallerBuckets(c.now);
  buckets.take("erp-nightly", { requests: 10, perMs: 60_000, burst: 1 });
  // The same limit as a reload builds it: a new object with equal values.
  assert.throws(() => buckets.take("erp-nightly", { requests: 10, perMs: 60_000, burst: 1 }), LimitRefusal);
  buckets.take("erp-nightly", { requests: 10, perMs: 60_000, burst: 2 });
});

test("while the probe after a pause is out, a request that cannot wait is refused as upstream_pause", () => {
  const c = clock();
  const gate = new IdentityGate("app", undefined, c.now, () => {});
  gate.pause(HOST, 1_000);
  c.advance(1_000);
  const probe = gate.enter(HOST, caller()) as Ticket;
  assert.throws(
    () => gate.enter(HOST, caller()),
    (err: unknown) =>
      err instanceof LimitRefusal && err.limit === "upstream_pause" && err.headers["retry-after"] === "1",
  );
  probe.done();
  assert.equal(gate.enter(HOST, caller()), NO_TICKET, "the probe was answered: open again");
});
