// Requests per second through nginx + forward auth (auth_request to the proxy's forward-auth port, then
// nginx to the upstream itself) against the product as a proxy, to the same HTTPS mock upstream with the
// same API key. Loopback only, bounded in time; the two alternate round by round (A B B A …) so drifts in
// machine speed fall on both. The load client runs in a child process of its own. Usage:
//   node scripts/bench-forward-auth.ts [--seconds 5] [--connections 16] [--rounds 4]
// Needs Debian's nginx (apt-get install nginx).
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os, { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import { configFromYaml, startDemoWorld } from "../src/demo/stack.ts";
import { MICROSOFT_API_AUDIENCES, MockUpstream } from "../src/demo/upstreams.ts";
import { createLogger, logDestination } from "../src/observability/logger.ts";
import { startProxy } from "../src/server/start.ts";
import { nginxBinary, startNginx } from "../test/helpers/nginx.ts";
import { openConnections } from "./bench-client.ts";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "16" },
    rounds: { type: "string", default: "4" },
    client: { type: "string" },
    key: { type: "string" },
  },
});
const seconds = Math.min(Math.max(Number(values.seconds), 1), 30);
const connections = Math.min(Math.max(Number(values.connections), 1), 64);
const rounds = Math.min(Math.max(Number(values.rounds), 1), 10);

/** Client mode: a closed loop on `connections` keep-alive connections for `seconds`; prints counts. */
async function client(url: string, key: string): Promise<void> {
  let ok = 0;
  let failed = 0;
  let stopping = false;
  const all = await openConnections(url, { "x-api-key": key }, connections, {
    done(c, success) {
      if (success) ok++;
      else failed++;
      if (!stopping && !c.socket.destroyed) c.send(0);
    },
  });
  const started = performance.now();
  for (const c of all) c.send(0);
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  stopping = true;
  const elapsed = (performance.now() - started) / 1000;
  for (const c of all) c.socket.destroy();
  process.stdout.write(`${JSON.stringify({ ok, failed, seconds: elapsed })}\n`);
}

async function main(): Promise<void> {
  const binary = nginxBinary();
  if (!binary) throw new Error("nginx not found: apt-get install nginx");
  const world = await startDemoWorld();
  const tls = await world.pki.issue({ commonName: "localhost" });
  const upstream = await MockUpstream.start({
    name: "powerplatform",
    audience: MICROSOFT_API_AUDIENCES.powerplatform,
    jwks: world.emulator.publicJwks(),
    tls: { cert: tls.cert, key: tls.key },
  });
  const config = configFromYaml(
    `listen: { host: 127.0.0.1, port: 0, adminPort: 0 }
forwardAuth: { port: 0 }
cloud: { authorityHost: \${DEMO_AUTHORITY_HOST} }
identities:
  app: { tenantId: \${TENANT_ID}, clientId: \${CLIENT_ID}, clientSecret: \${CLIENT_SECRET} }
routes:
  - prefix: /pp
    service: powerplatform
    upstream: ${upstream.url}
    identity: app
    forwardAuth: true
    access: { apiKeys: [{ name: bench, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`,
    world.env,
  );
  const dir = await mkdtemp(join(tmpdir(), "bench-forward-auth-"));
  // The product as deployed logs every request; both configurations pay for it.
  const logger = createLogger({ destination: logDestination(join(dir, "proxy.log")) });
  const proxy = await startProxy(config, { logger, env: world.env, defaultMetrics: false });
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, world.pki.caCert);
  const nginx = await startNginx(binary, {
    forwardAuthUrl: proxy.forwardAuthUrl!,
    routes: [{ prefix: "/pp", upstream: upstream.url }],
    caFile,
    upstreamName: "localhost",
  });
  const key = world.secrets.apiKey;
  const targets = { proxy: `${proxy.proxyUrl}/pp/environments`, nginx: `${nginx.url}/pp/environments` };
  const run = promisify(execFile);
  const measure = async (url: string) => {
    const script = fileURLToPath(import.meta.url);
    const args = [script, `--client=${url}`, `--key=${key}`, `--seconds=${seconds}`];
    const { stdout } = await run(process.execPath, [...args, `--connections=${connections}`]);
    const r = JSON.parse(stdout) as { ok: number; failed: number; seconds: number };
    if (r.failed > 0) throw new Error(`${r.failed} requests to ${url} failed`);
    return r.ok / r.seconds;
  };
  try {
    await measure(targets.proxy); // warm-up: token, TLS sessions, JIT
    await measure(targets.nginx);
    const rps: Record<"proxy" | "nginx", number[]> = { proxy: [], nginx: [] };
    for (let round = 0; round < rounds; round++) {
      const order: Array<"proxy" | "nginx"> = round % 2 === 0 ? ["proxy", "nginx"] : ["nginx", "proxy"];
      for (const which of order) rps[which].push(await measure(targets[which]));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const p = median(rps.proxy);
    const n = median(rps.nginx);
    const cpus = os.cpus();
    console.log(`machine: ${cpus.length} × ${cpus[0]?.model ?? "?"}, node ${process.version}`);
    console.log(`${rounds} rounds × ${seconds} s, ${connections} keep-alive connections, GET 1 KiB-ish JSON`);
    console.log(`proxy (the product as a proxy):   ${rps.proxy.map((x) => x.toFixed(0)).join(", ")} req/s`);
    console.log(`nginx + forward auth:             ${rps.nginx.map((x) => x.toFixed(0)).join(", ")} req/s`);
    console.log(
      `median: proxy ${p.toFixed(0)} req/s, nginx + forward auth ${n.toFixed(0)} req/s, ratio ${(n / p).toFixed(2)}`,
    );
  } finally {
    await nginx.close();
    await proxy.close(100);
    await upstream.close();
    await world.close();
    await rm(dir, { recursive: true, force: true });
  }
}

if (values.client) await client(values.client, values.key ?? "");
else await main();
