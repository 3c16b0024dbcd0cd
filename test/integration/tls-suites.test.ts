// listen.tls offers Mozilla's "intermediate" set: TLS 1.2+ with forward-secret AEAD suites only.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { connect, type SecureVersion } from "node:tls";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

const TLS_YAML = DEMO_ROUTES_YAML.replace(
  "  adminPort: 9090\n",
  "  adminPort: 9090\n  tls: { certFile: ${TLS_CERT}, keyFile: ${TLS_KEY} }\n",
);

test("TLS 1.2 clients offering only non-forward-secret or CBC suites are refused; ECDHE with AES-GCM is accepted", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-tls-suites-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const stack = await startStack(t, {
    yaml: TLS_YAML,
    async prepare(world) {
      const cert = await world.pki.issue({ commonName: "localhost" });
      await writeFile(join(dir, "tls.crt"), cert.cert);
      await writeFile(join(dir, "tls.key"), cert.key);
      return { TLS_CERT: join(dir, "tls.crt"), TLS_KEY: join(dir, "tls.key") };
    },
  });
  const port = Number(new URL(stack.proxy.proxyUrl).port);
  /** The suite negotiated by a client offering only `ciphers`, or the error that refused it. */
  const handshake = (ciphers: string, version: SecureVersion = "TLSv1.2") =>
    new Promise<string>((resolve) => {
      const socket = connect(
        {
          host: "127.0.0.1",
          port,
          servername: "localhost",
          ca: stack.world.pki.caCert,
          ciphers,
          minVersion: version,
          maxVersion: version,
        },
        () => {
          resolve(socket.getCipher().standardName);
          socket.end();
        },
      );
      socket.on("error", (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
    });

  for (const weak of ["AES128-SHA", "AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384"]) {
    assert.match(await handshake(weak), /^refused: /, `${weak} is refused`);
  }
  assert.equal(await handshake("ECDHE-RSA-AES128-GCM-SHA256"), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  assert.equal(await handshake("ECDHE-RSA-CHACHA20-POLY1305"), "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256");
  assert.match(await handshake("DEFAULT", "TLSv1.3"), /^TLS_(AES_128_GCM|AES_256_GCM|CHACHA20_POLY1305)_SHA/);
});
