// A small corporate egress proxy for tests: answers HTTP CONNECT on 127.0.0.1, counts the tunnels it
// opens, can require Basic auth, refuse every tunnel (403), or go away and come back on the same port.
// A test fixture may hand-write CONNECT; the proxy under test never does.
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { TestContext } from "node:test";

export interface ConnectProxy {
  /** http://127.0.0.1:<port>, without credentials. */
  readonly url: string;
  readonly port: number;
  /** Tunnels established (answered 200). */
  tunnels: number;
  /** CONNECT requests refused (407 or 403). */
  refused: number;
  /** host:port of every CONNECT request, in order (refused ones included). */
  targets: string[];
  /** Proxy-Authorization values received, to prove what was sent. */
  authorizations: string[];
  /** Basic credentials required from now on (undefined: none). */
  requireAuth(credentials: { user: string; password: string } | undefined): void;
  /** Refuse every tunnel with 403 (a blocked destination) while true. */
  forbid(on: boolean): void;
  /** Close every open connection and tunnel (a proxy restarted with a new policy). */
  dropTunnels(): void;
  /** Stop listening and drop every tunnel: the proxy is unreachable. */
  stop(): Promise<void>;
  /** Listen again on the same port. */
  restart(): Promise<void>;
}

export async function startConnectProxy(t: TestContext): Promise<ConnectProxy> {
  let expected: string | undefined;
  let forbidden = false;
  const open = new Set<Duplex>();
  const track = (socket: Duplex) => {
    open.add(socket);
    socket.on("close", () => open.delete(socket));
  };

  const server = http.createServer((_req, res) => {
    res.writeHead(405, { connection: "close" }).end("CONNECT only\n");
  });
  server.on("connection", track);
  const state = {
    tunnels: 0,
    refused: 0,
    targets: [] as string[],
    authorizations: [] as string[],
  };
  server.on("connect", (req: http.IncomingMessage, client: Duplex, head: Buffer) => {
    const target = req.url ?? "";
    state.targets.push(target);
    const auth = req.headers["proxy-authorization"];
    if (auth !== undefined) state.authorizations.push(auth);
    if (expected !== undefined && auth !== expected) {
      state.refused++;
      client.end(
        'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="corp"\r\nContent-Length: 0\r\n\r\n',
      );
      return;
    }
    if (forbidden) {
      state.refused++;
      client.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const { hostname, port } = new URL(`http://${target}`);
    const upstream = net.connect(Number(port), hostname.replace(/^\[(.*)\]$/, "$1"), () => {
      state.tunnels++;
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    track(upstream);
    const drop = () => {
      upstream.destroy();
      client.destroy();
    };
    upstream.on("error", drop);
    client.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
  });

  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server.listening) return resolve();
      server.close(() => resolve());
      for (const socket of open) socket.destroy();
    });
  const port = await listen(0);
  t.after(stop);

  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    port,
    requireAuth(credentials: { user: string; password: string } | undefined) {
      expected =
        credentials === undefined
          ? undefined
          : `Basic ${Buffer.from(`${credentials.user}:${credentials.password}`).toString("base64")}`;
    },
    forbid(on: boolean) {
      forbidden = on;
    },
    dropTunnels() {
      for (const socket of open) socket.destroy();
    },
    stop,
    async restart() {
      await listen(port);
    },
  });
}
