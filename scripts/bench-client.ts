// The HTTP/1.1 client of the bench's own load generators (bench-paced.ts, bench-alternating.ts): keep-
// alive connections on raw sockets that read into one reused buffer, because node:http's Buffer per
// read made the generator's own major GCs show up as every server's tail latency. It speaks just enough
// HTTP/1.1 for the bench's servers: GET, keep-alive, responses with Content-Length.
import net from "node:net";

const READ_BUFFER = Buffer.alloc(256 * 1024);

export interface ConnectionEvents {
  /**
   * The response to request `index` is complete (ok: status 200), or the connection closed with it
   * in flight. The connection is free to send again.
   */
  done(c: RawConnection, ok: boolean, index: number): void;
  /** The connection closed (after `done`, if a request was in flight). */
  closed?(c: RawConnection): void;
}

export class RawConnection {
  readonly socket: net.Socket;
  /** The caller's index of the request in flight, or -1. */
  current = -1;
  private readonly request: Buffer;
  private readonly events: ConnectionEvents;
  private head = "";
  /** Body bytes still to come; -1 while the head is being read. */
  private remaining = -1;
  private status = 0;

  constructor(url: URL, request: Buffer, events: ConnectionEvents) {
    this.request = request;
    this.events = events;
    this.socket = net.connect({
      host: url.hostname,
      port: Number(url.port),
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (n: number) => {
          this.onData(n);
          return true;
        },
      },
    });
    this.socket.once("close", () => {
      if (this.current !== -1) this.finish(false);
      this.events.closed?.(this);
    });
  }

  /** Writes the request; `index` is the caller's (see `current`). */
  send(index: number): void {
    this.current = index;
    this.head = "";
    this.remaining = -1;
    this.socket.write(this.request);
  }

  private onData(bytes: number): void {
    if (this.current === -1) return;
    let body = bytes;
    if (this.remaining === -1) {
      // Only the head is kept as text; the bench's heads are a few hundred bytes.
      const before = this.head.length;
      this.head += READ_BUFFER.toString("latin1", 0, Math.min(bytes, 8192));
      const end = this.head.indexOf("\r\n\r\n");
      if (end === -1) {
        if (this.head.length >= 64 * 1024) this.socket.destroy();
        return;
      }
      this.status = Number(this.head.slice(9, 12));
      const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(this.head.slice(0, end))?.[1];
      if (length === undefined) {
        this.socket.destroy(); // not a response this client reads: the request counts as failed
        return;
      }
      body = bytes - (end + 4 - before);
      this.remaining = Number(length);
    }
    this.remaining -= body;
    if (this.remaining <= 0) this.finish(this.status === 200);
  }

  private finish(ok: boolean): void {
    const index = this.current;
    this.current = -1;
    this.events.done(this, ok, index);
  }
}

/** `count` connections to `url`, each sending GET url with `headers`, once all are connected. */
export async function openConnections(
  url: string,
  headers: Record<string, string>,
  count: number,
  events: ConnectionEvents,
): Promise<RawConnection[]> {
  const target = new URL(url);
  const head = Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("");
  const request = Buffer.from(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nhost: ${target.host}\r\n${head}\r\n`,
  );
  const connections = Array.from({ length: count }, () => new RawConnection(target, request, events));
  await Promise.all(
    connections.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          c.socket.once("connect", resolve);
          c.socket.on("error", reject); // before connect: fails the run; after: the close handler
        }),
    ),
  );
  return connections;
}
