// The throw-away PKI: a CA that signs server and client certificates the process can trust.
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:https";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { trustedPki } from "../../helpers/pki.ts";

test("server certificates chain to the CA, name loopback hosts and are trusted by fetch", async (t) => {
  const pki = await trustedPki();
  const issued = await pki.issue({ commonName: "localhost", hosts: ["proxy.test"] });
  const ca = new X509Certificate(pki.caCert);
  const cert = new X509Certificate(issued.cert);
  assert.equal(ca.ca, true);
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey));
  for (const name of ["DNS:localhost", "DNS:proxy.test", "IP Address:127.0.0.1"]) {
    assert.ok(cert.subjectAltName?.includes(name), name);
  }
  assert.equal(issued.thumbprintSha256, cert.fingerprint256.replaceAll(":", ""));
  assert.equal(issued.thumbprintSha1, cert.fingerprint.replaceAll(":", ""));

  const server = createServer({ cert: issued.cert, key: issued.key }, (_req, res) => res.end("tls ok"));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  t.after(() => server.close());
  const { port } = server.address() as AddressInfo;
  assert.equal(await (await fetch(`https://localhost:${port}/`)).text(), "tls ok");
  assert.equal(await (await fetch(`https://127.0.0.1:${port}/`)).text(), "tls ok");
});

test("client certificates can carry a passphrase-protected key", async () => {
  const pki = await trustedPki();
  const issued = await pki.issue({ commonName: "proxy-app", client: true, passphrase: "open sesame" });
  assert.throws(() => createPrivateKey(issued.key), "encrypted: unusable without the passphrase");
  const key = createPrivateKey({ key: issued.key, passphrase: "open sesame" });
  assert.ok(new X509Certificate(issued.cert).checkPrivateKey(key));
  assert.equal(await trustedPki(), pki, "one PKI per process");
});
