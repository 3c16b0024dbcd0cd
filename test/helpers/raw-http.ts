// Raw HTTP/1.1 over a TCP socket, for requests no HTTP client would send (smuggling attempts,
// stalled bodies, bodies on GET). The request should say `Connection: close`; the reply is read to EOF.
import { connect } from "node:net";

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/** Parses one HTTP/1.1 response (Content-Length or chunked body). */
export function parseResponse(data: string): RawResponse {
  const split = data.indexOf("\r\n\r\n");
  const head = split === -1 ? data : data.slice(0, split);
  let body = split === -1 ? "" : data.slice(split + 4);
  if (/\r\ntransfer-encoding: chunked/i.test(head)) {
    let out = "";
    let rest = body;
    for (;;) {
      const nl = rest.indexOf("\r\n");
      const size = Number.parseInt(rest.slice(0, nl), 16);
      if (!size) break;
      out += rest.slice(nl + 2, nl + 2 + size);
      rest = rest.slice(nl + 2 + size + 2);
    }
    body = out;
  }
  return { status: Number(head.split(" ")[1]), head, body };
}

/** Writes `raw` (in pieces, if an array) and resolves with the response once the server closes. */
export function sendRaw(base: string, raw: string | string[]): Promise<RawResponse> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), "127.0.0.1", () => {
      for (const piece of Array.isArray(raw) ? raw : [raw]) socket.write(piece);
    });
    let data = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => {
      data += d;
    });
    socket.on("error", (err: NodeJS.ErrnoException) =>
      err.code === "ECONNRESET" && data ? resolve(parseResponse(data)) : reject(err),
    );
    socket.on("end", () => resolve(parseResponse(data)));
  });
}

/** A chunked body in one chunk, terminated. */
export function chunked(body: string): string {
  return `${Buffer.byteLength(body, "latin1").toString(16)}\r\n${body}\r\n0\r\n\r\n`;
}
