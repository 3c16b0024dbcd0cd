// serve as a real child process: SIGTERM drains in-flight requests, SIGHUP and file changes reload
// the config atomically, a broken config is rejected while the old one keeps serving.
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { request } from "node:http";
import { test } from "node:test";
import { DEMO_ROUTES_YAML, startDemoWorld } from "../../src/demo/stack.ts";
import { startServeChild } from "../helpers/child.ts";
import { trustedPki } from "../helpers/pki.ts";
import { metricValue } from "../helpers/stack.ts";

const CHILD_YAML = DEMO_ROUTES_YAML.replace("port: 8080", "port: 0").replace(
  "adminPort: 9090",
  "adminPort: 0",
);

async function setup(t: Parameters<typeof startServeChild>[0], yaml = CHILD_YAML) {
  const pki = await trustedPki();
  const world = await startDemoWorld({ pki });
  t.after(() => world.close());
  const serve = await startServeChild(t, yaml, world.env, pki.caCert);
  await serve.waitFor((l) => l.msg === "warm-up finished");
  return { world, serve, key: world.secrets.apiKey };
}

/** A slow upload: sends `chunks` pieces `gapMs` apart, then reads the echo. */
function slowUpload(
  url: string,
  key: string,
  chunks: number,
  gapMs: number,
): Promise<{ status: number; bodyBytes: number }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: { "x-api-key": key, "content-type": "application/octet-stream" },
    });
    req.on("response", async (res) => {
      let text = "";
      for await (const part of res) text += part;
      resolve({ status: res.statusCode ?? 0, bodyBytes: JSON.parse(text).bodyBytes });
    });
    req.on("error", reject);
    let sent = 0;
    const tick = setInterval(() => {
      req.write(Buffer.alloc(16 * 1024, 1));
      if (++sent === chunks) {
        clearInterval(tick);
        req.end();
      }
    }, gapMs);
  });
}

test("SIGTERM: readiness turns 503 at once, in-flight requests (a slow upload too) finish, exit 0", async (t) => {
  const { serve, key } = await setup(t);
  assert.equal((await fetch(`${serve.adminUrl}/readyz`)).status, 200);
  const slowGets = Array.from({ length: 5 }, () =>
    fetch(`${serve.proxyUrl}/powerplatform/slow/1200`, { headers: { "x-api-key": key } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    }),
  );
  const upload = slowUpload(`${serve.proxyUrl}/powerplatform/upload`, key, 10, 100);
  await new Promise((r) => setTimeout(r, 300)); // all six are in flight
  serve.child.kill("SIGTERM");
  await serve.waitFor((l) => l.msg === "shutting down");
  const ready = await fetch(`${serve.adminUrl}/readyz`);
  assert.equal(ready.status, 503, "readiness fails as soon as draining starts");
  await assert.rejects(
    fetch(`${serve.proxyUrl}/powerplatform/x`, { headers: { "x-api-key": key } }),
    "new connections are refused",
  );
  const statuses = await Promise.all(slowGets);
  const uploaded = await upload;
  assert.deepEqual(statuses, [200, 200, 200, 200, 200]);
  assert.deepEqual(uploaded, { status: 200, bodyBytes: 10 * 16 * 1024 });
  const { code } = await serve.exit;
  assert.equal(code, 0);
  t.diagnostic(`in flight at SIGTERM: 6 (5 slow GETs + 1 slow upload); failed: 0`);
});

test("a second SIGTERM exits at once without waiting for the drain", async (t) => {
  const { serve, key } = await setup(t);
  const slow = fetch(`${serve.proxyUrl}/powerplatform/slow/5000`, { headers: { "x-api-key": key } }).catch(
    () => "cut",
  );
  await new Promise((r) => setTimeout(r, 200));
  const started = Date.now();
  serve.child.kill("SIGTERM");
  await serve.waitFor((l) => l.msg === "shutting down");
  serve.child.kill("SIGTERM");
  const { code } = await serve.exit;
  assert.equal(code, 2);
  assert.ok(Date.now() - started < 3000, "did not wait for the 5 s request");
  await slow;
});

test("SIGHUP reloads routes atomically; a broken config is rejected and the old one keeps serving", async (t) => {
  const { world, serve, key } = await setup(t);
  const ccRequests = () =>
    world.emulator.tokenRequests.filter((r) => r.grantType === "client_credentials").length;
  const call = (path: string) =>
    fetch(`${serve.proxyUrl}${path}`, { headers: { "x-api-key": key } }).then(async (r) => {
      await r.arrayBuffer();
      return r.status;
    });
  assert.equal(await call("/pp2/x"), 404);
  const tokensBefore = ccRequests();

  // A new route for the same identity and scope: added without dropping the cached token.
  const added = `${CHILD_YAML}  - prefix: /pp2
    service: powerplatform
    upstream: \${POWERPLATFORM_UPSTREAM}
    identity: platform-app
    access: { apiKeys: [{ name: demo, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;
  await writeFile(serve.configFile, added);
  serve.child.kill("SIGHUP");
  await serve.waitFor((l) => l.msg === "config reloaded");
  assert.equal(await call("/pp2/x"), 200);
  assert.equal(await call("/powerplatform/x"), 200);
  assert.equal(ccRequests(), tokensBefore, "token caches of unchanged identities survive the reload");

  // Broken: unknown identity and a bad key. Rejected with file:line errors; /pp2 keeps working.
  await writeFile(
    serve.configFile,
    added
      .replace("identity: platform-app\n    access: { apiKeys", "identity: nobody\n    access: { apiKeys")
      .replace("warmup: true", "warmup: true\nbogus: 1"),
  );
  serve.child.kill("SIGHUP");
  const rejected = await serve.waitFor(
    (l) => l.msg === "config reload rejected; the previous config keeps serving",
  );
  const errors = (rejected.errors as string[]).join("\n");
  assert.match(errors, /routes\.yaml:\d+:\d+ bogus/);
  assert.match(errors, /routes\.yaml:\d+:\d+ routes\[0\]\.identity: unknown identity "nobody"/);
  assert.equal(await call("/pp2/x"), 200);
  assert.equal(
    await call("/powerplatform/x"),
    200,
    "the route the broken config would have changed still works",
  );
  const metrics = await (await fetch(`${serve.adminUrl}/metrics`)).text();
  assert.equal(metricValue(metrics, "entra_proxy_config_reloads_total", { result: "success" }), 1);
  assert.equal(metricValue(metrics, "entra_proxy_config_reloads_total", { result: "failure" }), 1);

  // A changed file is picked up without a signal (mounted ConfigMaps change in place).
  await writeFile(serve.configFile, CHILD_YAML);
  await serve.waitFor(
    (l) => l.msg === "config reloaded" && !JSON.stringify(l.routes).includes("/pp2"),
    5_000,
  );
  assert.equal(await call("/pp2/x"), 404);
  serve.child.kill("SIGTERM");
  assert.equal((await serve.exit).code, 0);
});
