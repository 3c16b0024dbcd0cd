// Debian's nginx as a child process with its own prefix, config and temp paths in a temp dir, on a
// free 127.0.0.1 port, configured as a gateway that asks the forward-auth listener (auth_request)
// before it proxies to an HTTPS upstream. Used by the forward-auth gateway test and its bench.
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";

/** The nginx binary on PATH or in /usr/sbin, or undefined. */
export function nginxBinary(): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/usr/local/sbin"];
  return dirs.map((d) => join(d, "nginx")).find((p) => existsSync(p));
}

export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface GatewayRoute {
  /** The path prefix nginx serves and the proxy's route matches, e.g. "/pp". */
  prefix: string;
  /** The HTTPS upstream origin, e.g. https://127.0.0.1:4443. */
  upstream: string;
}

export interface GatewayOptions {
  /** http://127.0.0.1:PORT of the forward-auth listener. */
  forwardAuthUrl: string;
  routes: GatewayRoute[];
  /** PEM file of the CA that signed the upstreams' certificates. */
  caFile: string;
  /** The name the upstream certificates carry. */
  upstreamName: string;
  /** Routes served as "<prefix>-untrusted" whose auth requests leave from this address (an untrusted peer). */
  untrustedBind?: string;
}

/**
 * The http{} block of the tested nginx config: the one docs/forward-auth.md shows, with test paths.
 * The caller's X-Api-Key is dropped before the request leaves the gateway.
 */
export function forwardAuthServerBlock(o: GatewayOptions, listenPort: number): string {
  const authLocation = (name: string, bind: string | undefined) => `
    location = ${name} {
      internal;
      proxy_pass http://entra_forward_auth/;
      ${bind ? `proxy_bind ${bind};` : ""}
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }`;
  // Named upstreams with keepalive, so nginx reuses its connections (and TLS sessions) to each.
  const apiUpstream = (i: number) => `entra_api_${i}`;
  const apiLocation = (path: string, auth: string, upstream: string) => `
    location ${path}/ {
      auth_request ${auth};
      auth_request_set $auth $upstream_http_authorization;
      proxy_set_header Authorization $auth;
      proxy_set_header X-Api-Key "";
      proxy_pass https://${upstream}/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host ${o.upstreamName};
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate ${o.caFile};
      proxy_ssl_name ${o.upstreamName};
      proxy_ssl_server_name on;
      proxy_ssl_session_reuse on;
    }`;
  const fa = new URL(o.forwardAuthUrl);
  return `
  upstream entra_forward_auth {
    server ${fa.host};
    keepalive 16;
  }
  ${o.routes.map((r, i) => `upstream ${apiUpstream(i)} {\n    server ${new URL(r.upstream).host};\n    keepalive 16;\n  }`).join("\n  ")}
  server {
    listen 127.0.0.1:${listenPort};
    ${authLocation("/_entra_auth", undefined)}
    ${o.untrustedBind ? authLocation("/_entra_auth_untrusted", o.untrustedBind) : ""}
    ${o.routes.map((r, i) => apiLocation(r.prefix, "/_entra_auth", apiUpstream(i))).join("\n")}
    ${
      o.untrustedBind
        ? o.routes
            .map((r, i) => apiLocation(`${r.prefix}-untrusted`, "/_entra_auth_untrusted", apiUpstream(i)))
            .join("\n")
        : ""
    }
  }`;
}

export interface RunningNginx {
  url: string;
  /** nginx's error log so far (for failure messages). */
  errorLog(): Promise<string>;
  close(): Promise<void>;
}

/** Starts nginx in the foreground with a config of its own; resolves once it accepts connections. */
export async function startNginx(binary: string, options: GatewayOptions): Promise<RunningNginx> {
  const dir = await mkdtemp(join(tmpdir(), "entra-nginx-"));
  for (const sub of ["body", "proxy", "fastcgi", "uwsgi", "scgi"]) await mkdir(join(dir, sub));
  const port = await freePort();
  const conf = `
${process.getuid?.() === 0 ? "user root;" : ""}
worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path ${join(dir, "body")};
  proxy_temp_path ${join(dir, "proxy")};
  fastcgi_temp_path ${join(dir, "fastcgi")};
  uwsgi_temp_path ${join(dir, "uwsgi")};
  scgi_temp_path ${join(dir, "scgi")};
  ${forwardAuthServerBlock(options, port)}
}
`;
  await writeFile(join(dir, "nginx.conf"), conf);
  const child: ChildProcess = spawn(
    binary,
    ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf"), "-g", "daemon off;"],
    {
      stdio: ["ignore", "ignore", "pipe"],
    },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const errorLog = async () => {
    const log = await readFile(join(dir, "error.log"), "utf8").catch(() => "");
    return `${stderr}${log}`;
  };
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await untilAccepting(port, exited);
  } catch (err) {
    const log = await errorLog();
    await close();
    throw new Error(`nginx did not start: ${(err as Error).message}\n${log}`);
  }
  return { url: `http://127.0.0.1:${port}`, errorLog, close };
}

/** Retries a connection (on each refusal) until nginx listens, it exits, or 10 s pass. */
async function untilAccepting(port: number, exited: Promise<void>): Promise<void> {
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + 10_000;
  for (let attempt = 0; ; attempt++) {
    if (gone) throw new Error("nginx exited");
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error("nginx is not listening after 10 s");
    // Back off a little between refusals while nginx binds its port.
    await new Promise((resolve) => setTimeout(resolve, Math.min(10 * 2 ** attempt, 200)));
  }
}
