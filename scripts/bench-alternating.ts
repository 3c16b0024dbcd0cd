// A closed-loop load at saturation that alternates between two servers in short slices, for the
// alternating section of scripts/bench.ts.
//
// Each server gets its own `connections` keep-alive connections, opened once. In a slice, every
// connection of one server sends a request, and each response is followed at once by the next request
// (a closed loop, as autocannon runs it) until the slice ends; the slice is over when its last
// response is in. The slices go A B B A A B B A …, so each server is as often first as second. Short
// turns, with no process stopped or started and no connection opened between them, let both servers
// see the same spells of machine speed, which drifts over seconds (docs/performance.md).
//
// The client is bench-client.ts's: raw sockets, one reused read buffer.
import { openConnections, type RawConnection } from "./bench-client.ts";
import { percentile } from "./bench-protocol.ts";

export interface AlternatingTarget {
  url: string;
  headers: Record<string, string>;
  /** Called as each of this server's slices starts and ends (e.g. to read its CPU time). */
  onSlice?(phase: "start" | "end"): void;
}

export interface AlternatingOptions {
  targets: readonly [AlternatingTarget, AlternatingTarget];
  connections: number;
  /** Length of a slice in ms (requests are started until it ends). */
  sliceMs: number;
  /** Measured slices per server. */
  slices: number;
  /** Slices per server run first and not measured. */
  warmupSlices: number;
}

export interface AlternatingSide {
  /** Every measured response's latency in ms, from its request's write to its last byte; sorted. */
  latencies: Float64Array;
  requests: number;
  failures: number;
  /** Measured seconds: each slice from its start to its last response. */
  seconds: number;
  /** Each measured slice's requests per second, in order. */
  sliceRps: number[];
  /** Each measured slice's p99 latency in ms, in order. */
  sliceP99: number[];
}

/** Slice k (0-based) belongs to target ORDER[k % 4]: A B B A. */
const ORDER = [0, 1, 1, 0] as const;

export async function alternatingLoad(o: AlternatingOptions): Promise<[AlternatingSide, AlternatingSide]> {
  const sides = o.targets.map(() => ({
    latencies: [] as number[],
    requests: 0,
    failures: 0,
    seconds: 0,
    sliceRps: [] as number[],
    sliceP99: [] as number[],
  }));
  const sentAt = new Map<RawConnection, number>();
  let sliceEnds = 0;
  let measuring = false;
  let inFlight = 0;
  let endSlice: () => void = () => {};

  const pools = await Promise.all(
    o.targets.map((t, side) =>
      openConnections(t.url, t.headers, o.connections, {
        done(c, ok) {
          inFlight--;
          const now = performance.now();
          if (measuring) {
            const s = sides[side]!;
            s.latencies.push(now - sentAt.get(c)!);
            s.requests++;
            if (!ok) s.failures++;
          }
          if (now < sliceEnds && !c.socket.destroyed) send(c);
          else if (inFlight === 0) endSlice();
        },
      }),
    ),
  );
  const send = (c: RawConnection) => {
    inFlight++;
    sentAt.set(c, performance.now());
    c.send(0);
  };

  const total = 2 * (o.warmupSlices + o.slices);
  try {
    for (let k = 0; k < total; k++) {
      const active = ORDER[k % 4]!;
      measuring = k >= 2 * o.warmupSlices;
      const target = o.targets[active]!;
      const before = sides[active]!.requests;
      const done = new Promise<void>((resolve) => {
        endSlice = resolve;
      });
      const live = pools[active]!.filter((c) => !c.socket.destroyed);
      if (live.length === 0) throw new Error(`every connection to ${target.url} was closed`);
      if (measuring) target.onSlice?.("start");
      const started = performance.now();
      sliceEnds = started + o.sliceMs;
      for (const c of live) send(c);
      let timer: NodeJS.Timeout | undefined;
      const stuck = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${target.url}: ${inFlight} requests unanswered 30 s after a turn`)),
          o.sliceMs + 30_000,
        );
      });
      await Promise.race([done, stuck]).finally(() => clearTimeout(timer));
      const seconds = (performance.now() - started) / 1000;
      if (measuring) {
        target.onSlice?.("end");
        const s = sides[active]!;
        s.seconds += seconds;
        s.sliceRps.push((s.requests - before) / seconds);
        s.sliceP99.push(percentile(Float64Array.from(s.latencies.slice(before)).sort(), 99));
      }
    }
  } finally {
    for (const pool of pools) for (const c of pool) c.socket.destroy();
  }
  return sides.map((s) => ({ ...s, latencies: Float64Array.from(s.latencies).sort() })) as [
    AlternatingSide,
    AlternatingSide,
  ];
}
