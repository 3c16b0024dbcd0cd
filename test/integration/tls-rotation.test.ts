// listen.tls: a certificate and key rotated in place (cert-manager) are served to new connections after a
// reload (SIGHUP or the files changing); a missing or broken pair rejects the reload and the old pair stays.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect } from "node:tls";
import { DEMO_ROUTES_YAML, demoConfig, startDemoWorld } from "../../src/demo/stack.ts";
import { startServeChild } from "../helpers/child.ts";
import { trustedPki } from "../helpers/pki.ts";
import { startStack } from "../helpers/stack.ts";

const TLS_YAML = DEMO_ROUTES_YAML.replace(
  "  adminPort: 9090\n",
  "  adminPort: 9090\n  tls: { certFile: ${TLS_CERT}, keyFile: ${TLS_KEY} }\n",
);

/** The SHA-256 fingerprint of the certificate a new TLS connection to the proxy is shown. */
function servedFingerprint(proxyUrl: string, ca: string): Promise<string> {
  const { port } = new URL(proxyUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: Number(port), servername: "localhost", ca }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
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
  const first = await servedFingerprint(stack.proxy.proxyUrl, stack.world.pki.caCert);

  const second = await stack.world.pki.issue({ commonName: "localhost" });
  await writeFile(files.TLS_CERT, second.cert);
  await writeFile(files.TLS_KEY, second.key);
  await reload();
  const rotated = await servedFingerprint(stack.proxy.proxyUrl, stack.world.pki.caCert);
  assert.notEqual(rotated, first, "a new connection sees the rotated certificate");
  assert.equal(rotated, fingerprintOf(second.cert));

  // Half-way through a rotation: the new certificate with the old key.
  const third = await stack.world.pki.issue({ commonName: "localhost" });
  await writeFile(files.TLS_CERT, third.cert);
  await assert.rejects(reload(), /listen\.tls: .*key values mismatch/);
  assert.equal(
    await servedFingerprint(stack.proxy.proxyUrl, stack.world.pki.caCert),
    rotated,
    "the old pair keeps being served",
  );

  await rm(files.TLS_KEY);
  await assert.rejects(reload(), /listen\.tls: ENOENT/);
  assert.equal(
    await servedFingerprint(stack.proxy.proxyUrl, stack.world.pki.caCert),
    rotated,
    "the old pair keeps being served",
  );
  assert.equal((await stack.call("/powerplatform/x")).status, 200);
});

test("serve: a certificate rotated in place is picked up when the files change, and on SIGHUP", async (t) => {
  const pki = await trustedPki();
  const world = await startDemoWorld({ pki });
  t.after(() => world.close());
  const dir = await mkdtemp(join(tmpdir(), "eap-tls-rotation-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const files = { TLS_CERT: join(dir, "tls.crt"), TLS_KEY: join(dir, "tls.key") };
  const rotate = async () => {
    const pair = await pki.issue({ commonName: "localhost" });
    await writeFile(files.TLS_CERT, pair.cert);
    await writeFile(files.TLS_KEY, pair.key);
    return fingerprintOf(pair.cert);
  };
  const first = await rotate();
  const yaml = TLS_YAML.replace("port: 8080", "port: 0").replace("adminPort: 9090", "adminPort: 0");
  const serve = await startServeChild(t, yaml, { ...world.env, ...files }, pki.caCert);
  const served = () => servedFingerprint(serve.proxyUrl, pki.caCert);
  assert.equal(await served(), first);

  const second = await rotate();
  await serve.waitFor((l) => l.msg === "config reloaded", 5_000);
  assert.equal(await served(), second, "the file change alone rotates the certificate");

  // Broken on disk (the old key with a new certificate): SIGHUP rejects it and the old pair stays.
  await writeFile(files.TLS_CERT, (await pki.issue({ commonName: "localhost" })).cert);
  serve.child.kill("SIGHUP");
  const rejected = await serve.waitFor(
    (l) => l.msg === "config reload rejected; the previous config keeps serving",
  );
  assert.match(JSON.stringify(rejected.errors), /listen\.tls: .*key values mismatch/);
  assert.equal(await served(), second);

  serve.child.kill("SIGTERM");
  assert.equal((await serve.exit).code, 0);
});
