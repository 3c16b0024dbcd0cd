// An open-loop HTTP/1.1 load at a fixed rate, for the latency section of scripts/bench.ts.
//
// Request i is due at start + i / rate whatever happened to the requests before it, and its latency
// runs from when it was due: a server that stalls is charged for every request that queued behind the
// stall (a closed loop, such as autocannon's, sends nothing while it waits). autocannon's `overallRate`
// is no substitute: each connection sends back to back until its share of the second is used up, so
// every second starts with a saturating burst.
//
// The client is a minimal one on raw sockets that reads into one reused buffer: node:http allocates a
// Buffer per read, and at 64 KiB responses the generator's own major GCs (external memory) stalled it
// for 20–30 ms twice a second, which then showed as everyone's tail latency. It speaks just enough
// HTTP/1.1 for the bench's servers: GET, keep-alive, responses with Content-Length.
import net from "node:net";

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

interface Connection {
  socket: net.Socket;
  /** The request in flight (index), or -1. */
  current: number;
  head: string;
  /** Body bytes still to come; -1 while the head is being read. */
  remaining: number;
  status: number;
}

const READ_BUFFER = Buffer.alloc(256 * 1024);

export async function pacedLoad(o: PacedOptions): Promise<PacedResult> {
  const url = new URL(o.url);
  const head = Object.entries(o.headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const request = Buffer.from(
    `GET ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\n${head}\r\n`,
  );
  const total = Math.round(o.rate * o.seconds);
  const intervalMs = 1000 / o.rate;
  const latencies = new Float64Array(total);
  const lags = new Float64Array(total);
  const all: Connection[] = [];
  const idle: Connection[] = [];
  const waiting: number[] = [];
  let failures = 0;
  let done = 0;
  let started = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const complete = (c: Connection, ok: boolean) => {
    const i = c.current;
    c.current = -1;
    latencies[i] = performance.now() - (started + i * intervalMs);
    if (!ok) failures++;
    if (++done === total) finish();
    if (!c.socket.destroyed) next(c);
  };
  const next = (c: Connection) => {
    const i = waiting.shift();
    if (i === undefined) idle.push(c);
    else send(c, i);
  };
  const send = (c: Connection, i: number) => {
    c.current = i;
    c.head = "";
    c.remaining = -1;
    lags[i] = performance.now() - (started + i * intervalMs);
    c.socket.write(request);
  };
  const onData = (c: Connection, bytes: number) => {
    if (c.current === -1) return;
    let body = bytes;
    if (c.remaining === -1) {
      // Only the head is kept as text; the bench's heads are a few hundred bytes.
      const before = c.head.length;
      c.head += READ_BUFFER.toString("latin1", 0, Math.min(bytes, 8192));
      const end = c.head.indexOf("\r\n\r\n");
      if (end === -1) {
        if (c.head.length >= 64 * 1024) c.socket.destroy();
        return;
      }
      c.status = Number(c.head.slice(9, 12));
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(c.head.slice(0, end))?.[1];
      if (length === undefined) {
        c.socket.destroy(); // not a response this client reads: the request counts as failed
        return;
      }
      body = bytes - (end + 4 - before);
      c.remaining = Number(length);
    }
    c.remaining -= body;
    if (c.remaining <= 0) complete(c, c.status === 200);
  };

  await Promise.all(
    Array.from(
      { length: o.connections },
      () =>
        new Promise<void>((resolve, reject) => {
          const c: Connection = {
            socket: undefined as never,
            current: -1,
            head: "",
            remaining: -1,
            status: 0,
          };
          c.socket = net.connect({
            host: url.hostname,
            port: Number(url.port),
            noDelay: true,
            onread: {
              buffer: READ_BUFFER,
              callback: (n: number) => {
                onData(c, n);
                return true;
              },
            },
          });
          all.push(c);
          c.socket.once("connect", () => {
            idle.push(c);
            resolve();
          });
          c.socket.on("error", reject); // before connect: fails the run; after: the close below
          c.socket.once("close", () => {
            const at = idle.indexOf(c);
            if (at !== -1) idle.splice(at, 1);
            if (c.current !== -1) complete(c, false);
          });
        }),
    ),
  );

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
