// One server under test per process, started by scripts/bench.ts over IPC:
//
//   node --expose-gc scripts/bench-servers.ts upstream
//   node --expose-gc scripts/bench-servers.ts entra
//   node --expose-gc scripts/bench-servers.ts bare  --upstream http://127.0.0.1:PORT [--bearer-length N]
//   BENCH_WORLD=<json from entra> node --expose-gc scripts/bench-servers.ts proxy --upstream URL [--cold] [--log FILE]
//        [--variant product|no-request-log|no-metrics|no-log-no-metrics|plus-50us-cpu|with-limits]   (what-if ablations)
//
// upstream: a plain node:http server with fixed 1 KiB / 64 KiB JSON answers and streaming endpoints;
//           it accepts any (or no) bearer, so all three configurations hit the identical upstream.
// entra:    the demo world's Entra ID emulator (HTTPS, real signed tokens), in its own process the way
//           Entra ID is another machine in production.
// bare:     configuration (b): http-proxy-3 with a keep-alive agent adding a static bearer header
//           (random, as long as the emulator's tokens, so (b) and (c) send the same header bytes).
// proxy:    configuration (c): entra-auth-proxy with one API-key route whose upstream is the benchmark
//           upstream and whose client-secret identity gets its token from the entra child; pino at
//           info to a file (logs on), prom-client metrics on (the admin server runs).
//
// Each child reports {type:"ready", url} on the IPC channel, answers {type:"stats"} with its RSS (and,
// for entra, the emulator's token request count), and exits on {type:"shutdown"} or when the parent
// goes away. Everything listens on 127.0.0.1 port 0.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { createProxyServer } from "http-proxy-3";
import type { DestinationStream } from "pino";
import { Counter, Histogram } from "prom-client";
import { configFromYaml, startDemoWorld, trustCaInProcess } from "../src/demo/stack.ts";
import { createLogger, logDestination } from "../src/observability/logger.ts";
import { AnsweredRequests } from "../src/observability/metrics.ts";
import { startProxy } from "../src/server/start.ts";
import {
  type BenchWorld,
  type ChildMessage,
  fixedJson,
  PATHS,
  type ParentMessage,
  PROXY_PREFIX,
  PROXY_VARIANTS,
  type ProxyVariant,
  type ReadyMessage,
  type Role,
  type StatsReply,
  writeGenerated,
} from "./bench-protocol.ts";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    upstream: { type: "string" },
    "bearer-length": { type: "string", default: "1500" },
    cold: { type: "boolean", default: false },
    log: { type: "string", default: "/tmp/eap-bench/proxy.log" },
    variant: { type: "string", default: "product" },
  },
});
const role = positionals[0] as Role | undefined;

function send(message: ChildMessage): void {
  process.send?.(message);
}

/** Same server settings as the proxy's front door (src/server/start.ts), for every role. */
const SERVER_OPTIONS: http.ServerOptions = {
  headersTimeout: 20_000,
  requestTimeout: 0,
  keepAliveTimeout: 65_000,
  maxHeaderSize: 32 * 1024,
  optimizeEmptyRequests: true,
};

function listen(server: http.Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

// ------------------------------------------------------------------------------------ upstream

async function startUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const bodies = new Map<string, Buffer>([
    [PATHS.json1k, fixedJson(1024)],
    [PATHS.json64k, fixedJson(64 * 1024)],
  ]);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const server = http.createServer(SERVER_OPTIONS, (req, res) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const body = bodies.get(path);
    if (body) {
      req.resume();
      res.writeHead(200, { "content-type": "application/json", "content-length": body.length });
      res.end(body);
      return;
    }
    if (path === PATHS.download) {
      req.resume();
      const total = Number(new URLSearchParams(url.slice(q + 1)).get("bytes") ?? 0);
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total });
      writeGenerated(res, chunk, total);
      return;
    }
    if (path === PATHS.upload) {
      let bytes = 0;
      req.on("data", (c: Buffer) => {
        bytes += c.length;
      });
      req.once("end", () => {
        const text = JSON.stringify({ bytes });
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
      });
      return;
    }
    if (path === PATHS.echoAuth) {
      req.resume();
      const authorization = req.headers.authorization ?? "";
      const bearer = /^Bearer \S+$/.test(authorization);
      const text = JSON.stringify({ bearer, length: bearer ? authorization.length - 7 : 0 });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
      return;
    }
    req.resume();
    res.writeHead(404, { "content-length": 0 });
    res.end();
  });
  return { url: await listen(server), close: () => closeServer(server) };
}

// ------------------------------------------------------------------------------------ bare (b)

function httpProxy3Version(): string {
  const file = new URL("../node_modules/http-proxy-3/package.json", import.meta.url);
  return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
}

/** A token-shaped static bearer as long as the one (c) attaches, so both send the same header bytes. */
function staticBearer(length: number): string {
  return randomBytes(length).toString("base64url").slice(0, length);
}

async function startBare(
  upstream: string,
  bearerLength: number,
): Promise<{ url: string; close(): Promise<void> }> {
  // The same agent settings as src/proxy/forward.ts.
  const agent = new http.Agent({ keepAlive: true, maxSockets: 512, scheduling: "lifo" });
  const proxy = createProxyServer({
    target: upstream,
    agent,
    headers: { authorization: `Bearer ${staticBearer(bearerLength)}` },
    changeOrigin: true,
    xfwd: false,
  });
  proxy.on("error", (_err, _req, res) => {
    if (res instanceof http.ServerResponse && !res.headersSent) {
      res.writeHead(502, { "content-length": 0 });
      res.end();
    } else {
      res.destroy();
    }
  });
  const server = http.createServer(SERVER_OPTIONS, (req, res) => proxy.web(req, res));
  return {
    url: await listen(server),
    close: async () => {
      await closeServer(server);
      agent.destroy();
    },
  };
}

// ------------------------------------------------------------------------------------ proxy (c)

/** routes.yaml for (c): one API-key route to the benchmark upstream, identity from the emulator. */
function benchRoutesYaml(warmup: boolean, variant: ProxyVariant): string {
  // with-limits: identity limits and a per-caller rate limit that the load never reaches.
  const limits = variant === "with-limits";
  const identityLimits = limits ? "\n    limits: { concurrent: 10000, requests: 1000000, per: 1s }" : "";
  const routeLimit = limits ? "\n    rateLimit: { requests: 1000000, per: 1s, burst: 1000000 }" : "";
  return `listen:
  host: 127.0.0.1
  port: 0
  adminPort: 0
warmup: ${warmup}
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}${identityLimits}
routes:
  - prefix: ${PROXY_PREFIX}
    service: powerplatform
    upstream: \${BENCH_UPSTREAM}
    identity: platform-app
    # 200 MiB streaming runs exceed the 100 MiB default; the 1,000-request burst exceeds the default 256.
    maxBodyBytes: 1073741824
    maxConcurrent: 5000${routeLimit}
    access: { apiKeys: [{ name: bench, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;
}

/** The logger of (c): src/observability/logger.ts as production builds it, or a what-if variant. */
function benchLogger(variant: ProxyVariant, destination: DestinationStream) {
  if (variant === "no-request-log" || variant === "no-log-no-metrics") {
    return createLogger({ level: "warn", destination });
  }
  return createLogger({ level: "info", destination });
}

async function startEntraAuthProxy(
  upstream: string,
  cold: boolean,
  logFile: string,
  variant: ProxyVariant,
): Promise<{ ready: Omit<ReadyMessage, "type" | "role">; close(): Promise<void> }> {
  if (variant === "no-metrics" || variant === "no-log-no-metrics") {
    // What-if only: this child's prom-client updates become no-ops (the registry still serves /metrics).
    Counter.prototype.inc = () => {};
    Histogram.prototype.observe = () => {};
    AnsweredRequests.prototype.record = () => {};
  }
  if (variant === "plus-50us-cpu") {
    // What-if only: a known extra cost per request (where its metrics are recorded), which the
    // bench's measures must see.
    const record = AnsweredRequests.prototype.record;
    AnsweredRequests.prototype.record = function (route, method, status, consumer, seconds) {
      const until = performance.now() + 0.05;
      while (performance.now() < until) {
        // busy: the cost being priced
      }
      record.call(this, route, method, status, consumer, seconds);
    };
  }
  if (!process.env.BENCH_WORLD) throw new Error("proxy needs BENCH_WORLD (the entra child's ready.world)");
  const world = JSON.parse(process.env.BENCH_WORLD) as BenchWorld;
  trustCaInProcess(world.caCert);
  const env = { ...world.env, BENCH_UPSTREAM: upstream };
  const config = configFromYaml(benchRoutesYaml(!cold, variant), env, "bench-routes.yaml");
  const destination = logDestination(logFile); // as in production: batched, asynchronous
  const logger = benchLogger(variant, destination);
  const proxy = await startProxy(config, {
    logger,
    env,
    ports: { proxy: 0, admin: 0 },
  });
  if (!cold) {
    // warmup: true acquires the token in the background; the throughput runs start with it cached.
    const deadline = Date.now() + 30_000;
    while (!proxy.tokens.all().every((p) => p.state().valid)) {
      if (Date.now() > deadline) throw new Error("token warm-up did not finish within 30 s");
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  return {
    ready: { url: proxy.proxyUrl, adminUrl: proxy.adminUrl, apiKey: world.apiKey, logFile },
    async close() {
      await proxy.close(100);
      (destination as { flushSync?: () => void }).flushSync?.();
    },
  };
}

// ------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  let close: () => Promise<void>;
  let tokenRequests: (() => [number, number]) | undefined;
  if (role === "upstream") {
    const s = await startUpstream();
    close = s.close;
    send({ type: "ready", role, url: s.url });
  } else if (role === "entra") {
    const world = await startDemoWorld();
    close = world.close;
    tokenRequests = () => {
      const all = world.emulator.tokenRequests;
      return [all.length, all.filter((r) => r.outcome === "success").length];
    };
    send({
      type: "ready",
      role,
      url: world.emulator.url,
      world: { env: world.env, caCert: world.pki.caCert, apiKey: world.secrets.apiKey },
    });
  } else if (role === "bare" || role === "proxy") {
    if (!values.upstream) throw new Error(`${role} needs --upstream`);
    if (role === "bare") {
      const s = await startBare(values.upstream, Number(values["bearer-length"]));
      close = s.close;
      send({ type: "ready", role, url: s.url, http_proxy_3: httpProxy3Version() });
    } else {
      const variant = values.variant as ProxyVariant;
      if (!PROXY_VARIANTS.includes(variant))
        throw new Error(`--variant must be one of ${PROXY_VARIANTS.join(", ")}`);
      const s = await startEntraAuthProxy(values.upstream, values.cold ?? false, values.log!, variant);
      close = s.close;
      send({ type: "ready", role, ...s.ready, http_proxy_3: httpProxy3Version() });
    }
  } else {
    throw new Error(
      `usage: bench-servers.ts upstream|entra|bare|proxy [--upstream URL] [--cold] [--log FILE]`,
    );
  }

  let closing = false;
  const shutdown = async () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(0), 5_000);
    force.unref();
    try {
      await close();
    } finally {
      // process.exit (not a signal) so that --cpu-prof writes its profile.
      process.exit(0);
    }
  };
  process.on("message", (m: ParentMessage) => {
    if (m.type === "shutdown") {
      void shutdown();
      return;
    }
    if (m.type === "stats") {
      if (m.gc) (globalThis as { gc?: () => void }).gc?.();
      const mem = process.memoryUsage();
      const reply: StatsReply = {
        type: "stats",
        id: m.id,
        rss: mem.rss,
        heapUsed: mem.heapUsed,
        monoUs: Number(process.hrtime.bigint() / 1000n),
      };
      if (tokenRequests) [reply.tokenRequests, reply.tokenRequestsSuccess] = tokenRequests();
      send(reply);
    }
  });
  process.on("disconnect", () => void shutdown());
  process.on("SIGTERM", () => void shutdown());
}

main().catch((err: unknown) => {
  console.error(`bench-servers ${role ?? "?"}:`, err);
  process.exit(1);
});
