// listen.tls: a certificate and key rotated in place (cert-manager) are served to new connections after a
// reload; a missing or broken pair rejects the reload and the old pair keeps being served.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect } from "node:tls";
import { DEMO_ROUTES_YAML, demoConfig } from "../../src/demo/stack.ts";
import { type Stack, startStack } from "../helpers/stack.ts";

const TLS_YAML = DEMO_ROUTES_YAML.replace(
  "  adminPort: 9090\n",
  "  adminPort: 9090\n  tls: { certFile: ${TLS_CERT}, keyFile: ${TLS_KEY} }\n",
);

/** The SHA-256 fingerprint of the certificate a new TLS connection to the proxy is shown. */
function servedFingerprint(stack: Stack): Promise<string> {
  const { port } = new URL(stack.proxy.proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: "127.0.0.1", port: Number(port), servername: "localhost", ca: stack.world.pki.caCert },
      () => {
        resolve(socket.getPeerX509Certificate()!.fingerprint256);
        socket.end();
      },
    );
    socket.on("error", reject);
  });
}

const fingerprintOf = (pem: string) => new X509Certificate(pem).fingerprint256;

test("a rotated certificate is served after reload; a missing or mismatched pair is rejected and the old one kept", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-tls-rotation-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files = { TLS_CERT: join(dir, "tls.crt"), TLS_KEY: join(dir, "tls.key") };
  const stack = await startStack(t, {
    yaml: TLS_YAML,
    async prepare(world) {
      const first = await world.pki.issue({ commonName: "localhost" });
      await writeFile(files.TLS_CERT, first.cert);
      await writeFile(files.TLS_KEY, first.key);
      return files;
    },
  });
  const reload = () => stack.proxy.reload(demoConfig(stack.world, TLS_YAML, files));
  const first = await servedFingerprint(stack);

  const second = await stack.world.pki.issue({ commonName: "localhost" });
  await writeFile(files.TLS_CERT, second.cert);
  await writeFile(files.TLS_KEY, second.key);
  await reload();
  const rotated = await servedFingerprint(stack);
  assert.notEqual(rotated, first, "a new connection sees the rotated certificate");
  assert.equal(rotated, fingerprintOf(second.cert));

  // Half-way through a rotation: the new certificate with the old key.
  const third = await stack.world.pki.issue({ commonName: "localhost" });
  await writeFile(files.TLS_CERT, third.cert);
  await assert.rejects(reload(), /listen\.tls: .*key values mismatch/);
  assert.equal(await servedFingerprint(stack), rotated, "the old pair keeps being served");

  await rm(files.TLS_KEY);
  await assert.rejects(reload(), /listen\.tls: ENOENT/);
  assert.equal(await servedFingerprint(stack), rotated, "the old pair keeps being served");
  assert.equal((await stack.call("/powerplatform/x")).status, 200);
});
