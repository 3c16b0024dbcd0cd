// design.md "Corporate egress proxy": token requests and forwarded API calls both leave through the
// egress proxy (a local CONNECT proxy that counts tunnels), tunnels are reused, noProxy bypasses it,
// its password appears nowhere, and its refusals (407, 403, unreachable) give 502 upstream_unreachable
// (API calls) or 503 token_unavailable (tokens) naming the proxy — until it is fixed.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { run as runCheck } from "../../src/commands/check.ts";
import { DEMO_ROUTES_YAML, type DemoWorld } from "../../src/demo/stack.ts";
import { MockUpstream } from "../../src/demo/upstreams.ts";
import { type ConnectProxy, startConnectProxy } from "../helpers/connect-proxy.ts";
import { captureIO } from "../helpers/io.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

const USER = "svc-proxy";
const PASSWORD = "Egr3ss-pa55word-never-shown";

/** The demo config with an egress block; loopback is proxied too, since noProxy is explicit. */
function yamlWithEgress(noProxy = "[]", base = DEMO_ROUTES_YAML): string {
  return `${base}egress:\n  proxy: \${EGRESS_PROXY}\n  noProxy: ${noProxy}\n`;
}

function proxyUrlWith(proxy: ConnectProxy, password: string): string {
  return `http://${USER}:${encodeURIComponent(password)}@127.0.0.1:${proxy.port}`;
}

function hostOf(url: string): string {
  const u = new URL(url);
  return `${u.hostname}:${u.port}`;
}

/**
 * The demo's mock APIs speak plain HTTP on loopback, which never goes through a proxy: /powerplatform
 * is pointed at an HTTPS mock instead, as the real API is.
 */
async function httpsPowerPlatform(t: TestContext, world: DemoWorld): Promise<MockUpstream> {
  const mock = await MockUpstream.start({
    name: "powerplatform",
    audience: "https://api.powerplatform.com",
    jwks: world.emulator.publicJwks(),
    tls: await world.pki.issue({ commonName: "localhost" }),
  });
  t.after(() => mock.close());
  return mock;
}

/** A stack whose /powerplatform upstream is HTTPS; `api` is that upstream. */
async function startHttpsStack(
  t: TestContext,
  options: Omit<Parameters<typeof startStack>[1] & object, "prepare"> & {
    env?: Record<string, string>;
    prepare?: (world: DemoWorld, api: MockUpstream) => Record<string, string>;
  },
): Promise<{ stack: Stack; api: MockUpstream }> {
  let api: MockUpstream | undefined;
  const { prepare, ...rest } = options;
  const stack = await startStack(t, {
    ...rest,
    async prepare(world) {
      api = await httpsPowerPlatform(t, world);
      return { POWERPLATFORM_UPSTREAM: api.url, ...prepare?.(world, api) };
    },
  });
  return { stack, api: api! };
}

async function body(res: Response): Promise<string> {
  return res.text();
}

/** Calls `path` until it answers 200 or `ms` pass (the token back-off is short in these tests). */
async function until200(stack: Stack, path: string, ms = 5_000): Promise<Response> {
  const deadline = Date.now() + ms;
  for (;;) {
    const res = await stack.call(path);
    if (res.status === 200 || Date.now() > deadline) return res;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 25));
  }
}

test("tokens and API calls go through the egress proxy; 200 sequential requests reuse a handful of tunnels", async (t) => {
  const proxy = await startConnectProxy(t);
  const { stack, api: mock } = await startHttpsStack(t, {
    yaml: yamlWithEgress(),
    env: { EGRESS_PROXY: proxy.url },
  });
  const emulator = hostOf(stack.world.emulator.url);
  const api = hostOf(mock.url);

  const first = await stack.call("/powerplatform/environments");
  assert.equal(first.status, 200, await body(first));
  assert.ok(proxy.targets.includes(emulator), `token request tunnelled (targets: ${proxy.targets})`);
  assert.ok(proxy.targets.includes(api), `API call tunnelled (targets: ${proxy.targets})`);
  assert.ok(stack.world.emulator.tokenRequests.length > 0 && mock.requests.length === 1);

  const before = proxy.tunnels;
  for (let i = 0; i < 200; i++) {
    const res = await stack.call("/powerplatform/environments");
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
  const tunnels = proxy.tunnels - before;
  const apiTunnels = proxy.targets.filter((target) => target === api).length;
  t.diagnostic(
    `tunnels: ${tunnels} opened during 200 sequential API requests; ${apiTunnels} to the API for all 201; ${proxy.tunnels} in all, token requests included`,
  );
  assert.ok(tunnels <= 3, `200 sequential requests opened ${tunnels} tunnels`);
  assert.ok(apiTunnels <= 3, `201 API requests used ${apiTunnels} tunnels`);
  assert.equal(mock.requests.length, 201);
});

test("noProxy bypasses the egress proxy for matching destinations only", async (t) => {
  const proxy = await startConnectProxy(t);
  const { stack, api: mock } = await startHttpsStack(t, {
    // The API's address and port bypass the proxy; the emulator (localhost, another port) does not.
    prepare: (_world, api) => ({ NO_PROXY_API: `127.0.0.1:${new URL(api.url).port}` }),
    yaml: yamlWithEgress('["${NO_PROXY_API}"]'),
    env: { EGRESS_PROXY: proxy.url },
  });
  const res = await stack.call("/powerplatform/environments");
  assert.equal(res.status, 200, await body(res));
  const api = hostOf(mock.url);
  assert.equal(mock.requests.length, 1);
  assert.ok(
    proxy.targets.includes(hostOf(stack.world.emulator.url)),
    "the emulator is reached via the proxy",
  );
  assert.ok(!proxy.targets.includes(api), `the API bypassed the proxy (targets: ${proxy.targets})`);
});

test("NO_PROXY from the environment applies when egress.noProxy is absent", async (t) => {
  const proxy = await startConnectProxy(t);
  const { stack, api } = await startHttpsStack(t, {
    yaml: `${DEMO_ROUTES_YAML}egress:\n  proxy: \${EGRESS_PROXY}\n`,
    // The API is on 127.0.0.1 (in the block); the emulator is reached by the name localhost (not).
    env: { EGRESS_PROXY: proxy.url, NO_PROXY: "example.invalid,127.0.0.0/8" },
  });
  const res = await stack.call("/powerplatform/environments");
  assert.equal(res.status, 200, await body(res));
  assert.ok(
    proxy.targets.includes(hostOf(stack.world.emulator.url)),
    "the emulator is reached via the proxy",
  );
  assert.ok(
    !proxy.targets.includes(hostOf(api.url)),
    `the API bypassed the proxy (targets: ${proxy.targets})`,
  );
});

test("proxy Basic auth works, and the password is in no log line, check output, status page or metrics", async (t) => {
  const proxy = await startConnectProxy(t);
  proxy.requireAuth({ user: USER, password: PASSWORD });
  const egressUrl = proxyUrlWith(proxy, PASSWORD);
  const { stack, api } = await startHttpsStack(t, {
    yaml: yamlWithEgress(),
    env: { EGRESS_PROXY: egressUrl },
  });
  const res = await stack.call("/powerplatform/environments");
  assert.equal(res.status, 200, await body(res));
  assert.ok(proxy.tunnels >= 2, "token and API tunnels were opened with the credentials");
  const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;
  assert.ok(proxy.authorizations.every((a) => a === expected));

  // check --online acquires through the proxy too, and names it without the password.
  const dir = await mkdtemp(join(tmpdir(), "eap-egress-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(file, yamlWithEgress());
  const io = captureIO({ ...stack.world.env, POWERPLATFORM_UPSTREAM: api.url, EGRESS_PROXY: egressUrl });
  const tunnelsBefore = proxy.tunnels;
  assert.equal(await runCheck(["--config", file, "--online"], io), 0, io.err());
  assert.match(
    io.out(),
    new RegExp(`egress: HTTPS via proxy http://127\\.0\\.0\\.1:${proxy.port} with Basic`),
  );
  assert.ok(proxy.tunnels > tunnelsBefore, "check --online tunnelled its token requests");

  const outputs = [
    stack.logs.join("\n"),
    io.out(),
    io.err(),
    await (await fetch(`${stack.proxy.adminUrl}/status`)).text(),
    await (await fetch(`${stack.proxy.adminUrl}/status.json`)).text(),
    await stack.metrics(),
  ];
  const status = JSON.parse(outputs[4]!) as { egress?: string };
  assert.match(status.egress ?? "", new RegExp(`proxy http://127\\.0\\.0\\.1:${proxy.port}`));
  for (const [i, text] of outputs.entries()) {
    for (const secret of [PASSWORD, encodeURIComponent(PASSWORD), expected.slice(6)]) {
      assert.ok(!text.includes(secret), `output ${i} contains the proxy password`);
    }
  }
});

/**
 * A stack serving /powerplatform through a working proxy with credentials; without warm-up, the
 * token for /powerapps (another scope) is not acquired until that route is first called.
 */
async function servingStack(t: TestContext) {
  const proxy = await startConnectProxy(t);
  proxy.requireAuth({ user: USER, password: PASSWORD });
  const { stack } = await startHttpsStack(t, {
    yaml: yamlWithEgress("[]", DEMO_ROUTES_YAML.replace("warmup: true", "warmup: false")),
    env: { EGRESS_PROXY: proxyUrlWith(proxy, PASSWORD) },
    backoff: { initialMs: 20, maxMs: 100 },
  });
  const ok = await until200(stack, "/powerplatform/environments");
  assert.equal(ok.status, 200, await body(ok));
  return { proxy, stack };
}

/**
 * With the proxy broken by `breakIt`: an API call whose token is cached gets 502 upstream_unreachable,
 * one that needs a token gets 503 token_unavailable, both naming the proxy and not its password; once
 * `fixIt` has run, the same requests succeed again without a restart.
 */
async function refusalAndRecovery(
  t: TestContext,
  breakIt: (proxy: ConnectProxy) => Promise<void> | void,
  fixIt: (proxy: ConnectProxy) => Promise<void> | void,
  expectedDetail: RegExp,
) {
  const { proxy, stack } = await servingStack(t);
  await breakIt(proxy);
  const proxyName = `http://127.0.0.1:${proxy.port}`;

  const api = await stack.call("/powerplatform/environments");
  const apiProblem = (await api.json()) as { code: string; detail: string };
  assert.equal(api.status, 502, JSON.stringify(apiProblem));
  assert.equal(apiProblem.code, "upstream_unreachable");
  assert.ok(apiProblem.detail.includes(`egress proxy ${proxyName}`), apiProblem.detail);
  assert.match(apiProblem.detail, expectedDetail);

  const token = await stack.call("/powerapps/apps");
  const tokenProblem = (await token.json()) as { code: string; detail: string };
  assert.equal(token.status, 503, JSON.stringify(tokenProblem));
  assert.equal(tokenProblem.code, "token_unavailable");
  assert.ok(tokenProblem.detail.includes(`egress proxy ${proxyName}`), tokenProblem.detail);
  assert.match(tokenProblem.detail, expectedDetail);

  for (const text of [JSON.stringify(apiProblem), JSON.stringify(tokenProblem), stack.logs.join("\n")]) {
    assert.ok(!text.includes(PASSWORD) && !text.includes(encodeURIComponent(PASSWORD)));
  }
  const status = await (await fetch(`${stack.proxy.adminUrl}/status.json`)).text();
  assert.ok(status.includes(`egress proxy ${proxyName}`), "/status shows why the refresh failed");
  assert.ok(!status.includes(PASSWORD));

  await fixIt(proxy);
  for (const path of ["/powerplatform/environments", "/powerapps/apps"]) {
    const recovered = await until200(stack, path);
    assert.equal(recovered.status, 200, await body(recovered));
  }
}

test("egress proxy answering 407: 502 for API calls, 503 for tokens, naming the proxy; serving again once fixed", async (t) => {
  await refusalAndRecovery(
    t,
    (proxy) => {
      proxy.requireAuth({ user: USER, password: "rotated-on-the-proxy" });
      proxy.dropTunnels();
    },
    (proxy) => proxy.requireAuth({ user: USER, password: PASSWORD }),
    /refused the tunnel to (localhost|127\.0\.0\.1):\d+ \(HTTP 407\): proxy authentication required/,
  );
});

test("egress proxy answering 403: 502 for API calls, 503 for tokens, naming the proxy; serving again once fixed", async (t) => {
  await refusalAndRecovery(
    t,
    (proxy) => {
      proxy.forbid(true);
      proxy.dropTunnels();
    },
    (proxy) => proxy.forbid(false),
    /refused the tunnel to (localhost|127\.0\.0\.1):\d+ \(HTTP 403\): the proxy does not allow this destination/,
  );
});

test("egress proxy unreachable: 502 for API calls, 503 for tokens, naming the proxy; serving again once it is back", async (t) => {
  await refusalAndRecovery(
    t,
    (proxy) => proxy.stop(),
    (proxy) => proxy.restart(),
    /could not be reached \(ECONNREFUSED\)/,
  );
});
