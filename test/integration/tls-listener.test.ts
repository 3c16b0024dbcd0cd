// listen.tls: an HTTPS listener for deployments without an ingress.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

test("listen.tls serves the proxy over HTTPS and tells the upstream the caller used https", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-tls-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const yaml = DEMO_ROUTES_YAML.replace(
    "  adminPort: 9090\n",
    "  adminPort: 9090\n  tls: { certFile: ${TLS_CERT}, keyFile: ${TLS_KEY} }\n",
  );
  const stack = await startStack(t, {
    yaml,
    async prepare(world) {
      const cert = await world.pki.issue({ commonName: "localhost" });
      await writeFile(join(dir, "tls.crt"), cert.cert);
      await writeFile(join(dir, "tls.key"), cert.key);
      return { TLS_CERT: join(dir, "tls.crt"), TLS_KEY: join(dir, "tls.key") };
    },
  });
  assert.match(stack.proxy.proxyUrl, /^https:\/\//);
  const { port } = new URL(stack.proxy.proxyUrl);
  const body = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: "localhost",
        port,
        path: "/powerplatform/x",
        headers: { "x-api-key": stack.world.secrets.apiKey },
        ca: stack.world.pki.caCert,
      },
      async (res) => {
        let text = "";
        for await (const part of res) text += part;
        assert.equal(res.statusCode, 200, text);
        resolve(text);
      },
    );
    req.on("error", reject);
    req.end();
  });
  const echo = JSON.parse(body) as { headers: Record<string, string> };
  assert.equal(echo.headers["x-forwarded-proto"], "https");
});
