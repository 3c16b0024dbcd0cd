// A keep-alive HTTP upstream on 127.0.0.1 that records, per TCP connection, every request its parser
// saw (method, target, headers, body length) and the raw bytes that arrived. Bytes smuggled past a
// proxy show up here as an extra request on the connection that carried them.
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { TestContext } from "node:test";

export interface RecordedRequest {
  connection: number;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  bodyBytes: number;
}

export interface RecordingUpstream {
  url: string;
  requests: RecordedRequest[];
  /** Raw bytes received, per connection number. */
  raw: Map<number, string>;
  /** Resolves once `count` requests have been recorded. */
  waitFor(count: number): Promise<void>;
}

export async function startRecordingUpstream(
  t: TestContext,
  respond: (req: http.IncomingMessage, res: http.ServerResponse) => void = (_req, res) =>
    res.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}'),
): Promise<RecordingUpstream> {
  const requests: RecordedRequest[] = [];
  const raw = new Map<number, string>();
  const ids = new WeakMap<Socket, number>();
  const waiters: Array<{ count: number; resolve: () => void }> = [];
  let next = 0;
  const server = http.createServer({ keepAliveTimeout: 30_000 }, (req, res) => {
    let bodyBytes = 0;
    req.on("data", (chunk: Buffer) => {
      bodyBytes += chunk.length;
    });
    req.on("end", () => {
      requests.push({
        connection: ids.get(req.socket) ?? -1,
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        bodyBytes,
      });
      for (const w of waiters.splice(0)) {
        if (requests.length >= w.count) w.resolve();
        else waiters.push(w);
      }
      respond(req, res);
    });
  });
  server.on("connection", (socket: Socket) => {
    const id = next++;
    ids.set(socket, id);
    raw.set(id, "");
    socket.on("data", (chunk: Buffer) => raw.set(id, raw.get(id) + chunk.toString("latin1")));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    raw,
    waitFor(count) {
      if (requests.length >= count) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
  };
}
