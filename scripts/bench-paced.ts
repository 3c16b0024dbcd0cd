// An open-loop HTTP/1.1 load at a fixed rate, for the latency section of scripts/bench.ts.
//
// Request i is due at start + i / rate whatever happened to the requests before it, and its latency
// runs from when it was due: a server that stalls is charged for every request that queued behind the
// stall (a closed loop, such as autocannon's, sends nothing while it waits). autocannon's `overallRate`
// is no substitute: each connection sends back to back until its share of the second is used up, so
// every second starts with a saturating burst.
//
// The client is bench-client.ts's: raw sockets, one reused read buffer.
import { openConnections, type RawConnection } from "./bench-client.ts";

export interface PacedOptions {
  url: string;
  headers: Record<string, string>;
  /** Requests per second. */
  rate: number;
  seconds: number;
  /** Keep-alive connections, opened first and used in turn (the least recently used one next). */
  connections: number;
}

export interface PacedResult {
  /** Per request, ms from when it was due to its last response byte; sorted. */
  latencies: Float64Array;
  /** Per request, ms from when it was due to when it was written; sorted. */
  lags: Float64Array;
  failures: number;
  /** Requests completed per second over the whole run. */
  rps: number;
}

export async function pacedLoad(o: PacedOptions): Promise<PacedResult> {
  const total = Math.round(o.rate * o.seconds);
  const intervalMs = 1000 / o.rate;
  const latencies = new Float64Array(total);
  const lags = new Float64Array(total);
  const idle: RawConnection[] = [];
  const waiting: number[] = [];
  let failures = 0;
  let done = 0;
  let started = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const send = (c: RawConnection, i: number) => {
    lags[i] = performance.now() - (started + i * intervalMs);
    c.send(i);
  };
  const all = await openConnections(o.url, o.headers, o.connections, {
    done(c, ok, i) {
      latencies[i] = performance.now() - (started + i * intervalMs);
      if (!ok) failures++;
      if (++done === total) finish();
      if (c.socket.destroyed) return;
      const next = waiting.shift();
      if (next === undefined) idle.push(c);
      else send(c, next);
    },
    closed(c) {
      const at = idle.indexOf(c);
      if (at !== -1) idle.splice(at, 1);
    },
  });
  idle.push(...all);

  started = performance.now();
  let sent = 0;
  const tick = () => {
    const due = Math.min(total, Math.floor((performance.now() - started) / intervalMs) + 1);
    while (sent < due) {
      const c = idle.shift();
      if (c) send(c, sent);
      else waiting.push(sent);
      sent++;
    }
    if (sent < total) setTimeout(tick, Math.max(0, started + sent * intervalMs - performance.now()));
  };
  tick();
  // Requests still open long after the last was due (a server that closed every connection, say)
  // count as failed rather than hanging the bench.
  const deadline = setTimeout(
    () => {
      failures += total - done;
      finish();
    },
    o.seconds * 1000 + 30_000,
  );
  await finished;
  clearTimeout(deadline);
  const elapsed = (performance.now() - started) / 1000;
  for (const c of all) c.socket.destroy();
  return { latencies: latencies.sort(), lags: lags.sort(), failures, rps: total / elapsed };
}
