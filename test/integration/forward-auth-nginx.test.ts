// A real gateway in front: Debian's nginx asks the forward-auth listener (auth_request) and proxies to
// the mock Microsoft API over HTTPS with the token it was handed, never with the caller's API key.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { MICROSOFT_API_AUDIENCES, MockUpstream } from "../../src/demo/upstreams.ts";
import { nginxBinary, startNginx } from "../helpers/nginx.ts";
import { PLATFORM_APP_YAML, startStack } from "../helpers/stack.ts";

const YAML = `listen: { host: 127.0.0.1 }
forwardAuth:
  port: 0
  trustedPeers: [127.0.0.1]
warmup: true
${PLATFORM_APP_YAML}  - prefix: /pp
    service: powerplatform
    upstream: \${TLS_UPSTREAM}
    identity: platform-app
    forwardAuth: true
    access: { apiKeys: [{ name: current, sha256: "\${DEMO_API_KEY_SHA256}" }] }
  - prefix: /pp-untrusted
    service: powerplatform
    upstream: \${TLS_UPSTREAM}
    identity: platform-app
    forwardAuth: true
    access: { apiKeys: [{ name: current, sha256: "\${DEMO_API_KEY_SHA256}" }] }
`;

test("nginx auth_request: a valid key passes with a token the upstream verifies; refusals reach nothing", async (t) => {
  const binary = nginxBinary();
  // npm test must work with only Node and npm, so a missing nginx skips the test and says why.
  // .ci/run sets REQUIRE_NGINX=1 after installing nginx: there a missing nginx is a failure.
  if (!binary) {
    assert.notEqual(
      process.env.REQUIRE_NGINX,
      "1",
      "nginx not found and REQUIRE_NGINX=1: apt-get install nginx",
    );
    t.skip("nginx not found: apt-get install nginx to run the forward-auth gateway test");
    return;
  }
  let upstream: MockUpstream | undefined;
  const stack = await startStack(t, {
    yaml: YAML,
    async prepare(world) {
      const tls = await world.pki.issue({ commonName: "localhost" });
      upstream = await MockUpstream.start({
        name: "powerplatform",
        audience: MICROSOFT_API_AUDIENCES.powerplatform,
        jwks: world.emulator.publicJwks(),
        tls: { cert: tls.cert, key: tls.key },
      });
      t.after(() => upstream?.close());
      return { TLS_UPSTREAM: upstream.url };
    },
  });
  const mock = upstream!;
  const dir = await mkdtemp(join(tmpdir(), "entra-nginx-ca-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const caFile = join(dir, "ca.pem");
  await writeFile(caFile, stack.world.pki.caCert);
  const nginx = await startNginx(binary, {
    forwardAuthUrl: stack.proxy.forwardAuthUrl!,
    routes: [{ prefix: "/pp", upstream: mock.url }],
    caFile,
    upstreamName: "localhost",
    untrustedBind: "127.0.0.2",
  });
  t.after(() => nginx.close());
  const key = stack.world.secrets.apiKey;
  const via = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${nginx.url}${path}`, { headers });

  const ok = await via("/pp/environments?x=1", { "x-api-key": key });
  assert.equal(ok.status, 200, `${await ok.clone().text()}\n${await nginx.errorLog()}`);
  assert.equal(mock.received, 1);
  const seen = mock.requests[0]!;
  assert.equal(seen.path, "/environments");
  assert.equal(seen.status, 200);
  assert.equal(seen.claims?.aud, MICROSOFT_API_AUDIENCES.powerplatform, "the upstream verified the token");
  assert.equal(seen.headers["x-api-key"], undefined, "the upstream never sees the caller's key");
  assert.ok(!JSON.stringify(seen.headers).includes(key));

  const missing = await via("/pp/environments");
  assert.equal(missing.status, 401);
  assert.match(
    missing.headers.get("www-authenticate") ?? "",
    /realm="entra-auth-proxy"/,
    "the challenge passes through",
  );
  const wrong = await via("/pp/environments", { "x-api-key": "not-the-key" });
  assert.equal(wrong.status, 403);
  // nginx asks from 127.0.0.2 for this location: not a trusted peer, so 403 and no token.
  const untrusted = await via("/pp-untrusted/environments", { "x-api-key": key });
  assert.equal(untrusted.status, 403);
  assert.equal(mock.received, 1, "the upstream sees nothing of the refused requests");
  assert.ok(stack.logs.some((l) => l.includes('"error":"untrusted_peer"')));
  const token = /^Bearer (\S+)$/.exec(String(seen.headers.authorization))?.[1];
  assert.ok(token && !stack.logs.join("").includes(token), "the token is not in the proxy's log");
});
