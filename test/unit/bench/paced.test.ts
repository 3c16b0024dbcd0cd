// The fixed-rate load generator of `npm run bench` (scripts/bench-paced.ts): its figures are only as
// good as its HTTP reading and its clock.
import assert from "node:assert/strict";
import { once } from "node:events";
import net from "node:net";
import { test } from "node:test";
import { pacedLoad } from "../../../scripts/bench-paced.ts";

/** A raw server: `answer` writes the response for each request head it reads. */
async function rawServer(answer: (socket: net.Socket, head: string, n: number) => void) {
  let n = 0;
  const heads: string[] = [];
  const server = net.createServer({ noDelay: true }, (socket) => {
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      let end = buffered.indexOf("\r\n\r\n");
      while (end !== -1) {
        const head = buffered.slice(0, end);
        buffered = buffered.slice(end + 4);
        heads.push(head);
        answer(socket, head, n++);
        end = buffered.indexOf("\r\n\r\n");
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as net.AddressInfo;
  return { url: `http://127.0.0.1:${port}/path?q=1`, heads, close: () => server.close() };
}

test("paced load: heads and bodies split across reads, the request line and headers as given", async () => {
  const body = Buffer.alloc(100_000, 0x61);
  const server = await rawServer((socket) => {
    // Head in three pieces, the body's first bytes with the last piece, the rest in uneven writes.
    const head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
    socket.write(head.slice(0, 7));
    setImmediate(() => {
      socket.write(head.slice(7, 30));
      setImmediate(() => {
        socket.write(Buffer.concat([Buffer.from(head.slice(30)), body.subarray(0, 10)]));
        setImmediate(() => {
          socket.write(body.subarray(10, 70_000));
          setImmediate(() => socket.write(body.subarray(70_000)));
        });
      });
    });
  });
  try {
    const r = await pacedLoad({
      url: server.url,
      headers: { "x-api-key": "k" },
      rate: 200,
      seconds: 0.5,
      connections: 4,
    });
    assert.equal(r.latencies.length, 100);
    assert.equal(r.failures, 0);
    assert.equal(server.heads.length, 100, "one request per due time, none repeated");
    assert.match(server.heads[0]!, /^GET \/path\?q=1 HTTP\/1\.1\r\nhost: 127\.0\.0\.1:\d+\r\nx-api-key: k$/);
    assert.ok(
      r.latencies[0]! > 0 && r.latencies[99]! < 250,
      `latencies ${r.latencies[0]} … ${r.latencies[99]}`,
    );
    assert.ok(r.rps > 150 && r.rps < 210, `${r.rps} req/s`);
  } finally {
    server.close();
  }
});

test("paced load: a stalled server is charged for the requests that were due during the stall", async () => {
  // One connection; the 10th response is held for 200 ms. At 100 req/s the requests due meanwhile
  // queue behind it, and each is timed from when it was due, not from when it could be sent.
  const server = await rawServer((socket, _head, n) => {
    const reply = () => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    if (n === 10) setTimeout(reply, 200);
    else reply();
  });
  try {
    const r = await pacedLoad({ url: server.url, headers: {}, rate: 100, seconds: 1, connections: 1 });
    assert.equal(r.failures, 0);
    assert.equal(r.latencies.length, 100);
    // Request 10 waited ~200 ms, request 11 (due 10 ms later) ~190 ms, … : about 20 requests ≥ 10 ms.
    const slow = r.latencies.filter((ms) => ms >= 10).length;
    assert.ok(slow >= 15 && slow <= 60, `${slow} requests at ≥ 10 ms`);
    assert.ok(r.latencies[99]! >= 195, `max ${r.latencies[99]} ms`);
    assert.ok(r.lags[99]! >= 150, "the queued requests were written late, and that shows as lag");
  } finally {
    server.close();
  }
});

test("paced load: non-200 answers, answers without Content-Length and closed connections count as failures", async () => {
  const server = await rawServer((socket, _head, n) => {
    if (n === 0) socket.write("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    else if (n === 1) socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    else if (n === 2) socket.destroy();
    else socket.write("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  });
  try {
    const r = await pacedLoad({ url: server.url, headers: {}, rate: 100, seconds: 0.2, connections: 4 });
    assert.equal(r.latencies.length, 20);
    assert.equal(r.failures, 3);
  } finally {
    server.close();
  }
});
