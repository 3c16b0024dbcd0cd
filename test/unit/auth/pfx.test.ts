// PKCS#12 reading. Every key, certificate and .pfx here is made at test time: nothing is committed.
// Most files are built with pkijs itself (no external tools); the interoperability tests at the end
// build them with the `openssl` CLI and fail (not skip) when it is missing, because they are the only
// coverage of the layouts pkijs cannot write (legacy 3DES / RC2) and of OpenSSL's defaults.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createPrivateKey, createPublicKey, getCiphers, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";
import { generate } from "selfsigned";
import { readPfx } from "../../../src/auth/pfx.ts";

interface Pem {
  cert: string;
  key: string;
}

const BAG = {
  key: "1.2.840.113549.1.12.10.1.1",
  shroudedKey: "1.2.840.113549.1.12.10.1.2",
  cert: "1.2.840.113549.1.12.10.1.3",
};

let fixtures: Promise<{ ca: Pem; leaf: Pem; ec: Pem; other: Pem }> | undefined;
/** A CA, a leaf (RSA) signed by it, a self-signed EC certificate and an unrelated self-signed RSA one. */
function pki() {
  fixtures ??= (async () => {
    const pem = (r: { cert: string; private: string }): Pem => ({ cert: r.cert, key: r.private });
    const ca = pem(
      await generate([{ name: "commonName", value: "pfx test CA" }], {
        keySize: 2048,
        algorithm: "sha256",
        extensions: [
          { name: "basicConstraints", cA: true, critical: true },
          { name: "keyUsage", keyCertSign: true, cRLSign: true, critical: true },
        ],
      }),
    );
    const leaf = pem(
      await generate([{ name: "commonName", value: "pfx test leaf" }], {
        keySize: 2048,
        algorithm: "sha256",
        ca: { key: ca.key, cert: ca.cert },
      }),
    );
    const ec = pem(
      await generate([{ name: "commonName", value: "pfx test EC" }], {
        keyType: "ec",
        curve: "P-256",
        algorithm: "sha256",
      }),
    );
    const other = pem(await generate([{ name: "commonName", value: "unrelated" }], { algorithm: "sha256" }));
    return { ca, leaf, ec, other };
  })();
  return fixtures;
}

const der = (pem: string): Uint8Array<ArrayBuffer> => new Uint8Array(new X509Certificate(pem).raw);
const keyDer = (pem: string): Uint8Array<ArrayBuffer> =>
  new Uint8Array(createPrivateKey(pem).export({ type: "pkcs8", format: "der" }));
const spki = (key: string): Buffer =>
  createPublicKey(createPrivateKey(key)).export({ type: "spki", format: "der" });
const certBlocks = (pem: string): string[] =>
  pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n/g) ?? [];
const fingerprints = (pem: string): string[] =>
  certBlocks(pem).map((b) => new X509Certificate(b).fingerprint256);

/** Asserts the result holds `expected.key` and, in order, the certificates `chain` (leaf first). */
function assertExtracted(result: { certPem: string; keyPem: string }, key: string, chain: string[]): void {
  // Unencrypted PKCS#8 PEM: parses without a passphrase and exports to the same text.
  assert.equal(createPrivateKey(result.keyPem).export({ format: "pem", type: "pkcs8" }), result.keyPem);
  assert.deepEqual(spki(result.keyPem), spki(key), "same key pair as the original");
  assert.deepEqual(
    fingerprints(result.certPem),
    chain.map((c) => new X509Certificate(c).fingerprint256),
    "leaf first, then the chain",
  );
  assert.equal(result.certPem, certBlocks(result.certPem).join(""), "nothing but certificate blocks");
  assert.ok(new X509Certificate(result.certPem).checkPrivateKey(createPrivateKey(result.keyPem)));
}

interface BuildOptions {
  password: string;
  key?: string;
  certs: string[];
  /** Key as a PKCS8ShroudedKeyBag (default) or a plain KeyBag. */
  keyBag?: "shrouded" | "plain";
  /** Certificates in an encrypted SafeContents (default) or in plain Data. */
  encryptCerts?: boolean;
  /** Password-integrity MAC (default true). */
  mac?: boolean;
}

/** Writes a PKCS#12 file with pkijs: PBES2 (PBKDF2-HMAC-SHA-256, AES-256-CBC) and an HMAC-SHA-256 MAC. */
async function buildPfx(opts: BuildOptions): Promise<Buffer> {
  const engine = new pkijs.CryptoEngine({ name: "test", crypto: globalThis.crypto });
  const password = new Uint8Array(Buffer.from(opts.password, "utf8")).buffer;
  const pbes2 = {
    password,
    contentEncryptionAlgorithm: { name: "AES-CBC", length: 256 },
    hmacHashAlgorithm: "SHA-256",
    iterationCount: 2048,
  };
  const safes: Array<{ privacyMode: number; value: pkijs.SafeContents }> = [];
  const encryption: object[] = [];

  if (opts.key !== undefined) {
    const keyInfo = pkijs.PrivateKeyInfo.fromBER(keyDer(opts.key));
    let bag: pkijs.SafeBag;
    if ((opts.keyBag ?? "shrouded") === "shrouded") {
      const shrouded = new pkijs.PKCS8ShroudedKeyBag({ parsedValue: keyInfo });
      await shrouded.makeInternalValues(pbes2, engine);
      bag = new pkijs.SafeBag({ bagId: BAG.shroudedKey, bagValue: shrouded });
    } else {
      bag = new pkijs.SafeBag({ bagId: BAG.key, bagValue: keyInfo });
    }
    safes.push({ privacyMode: 0, value: new pkijs.SafeContents({ safeBags: [bag] }) });
    encryption.push({});
  }
  const certBags = opts.certs.map(
    (c) =>
      new pkijs.SafeBag({
        bagId: BAG.cert,
        bagValue: new pkijs.CertBag({ parsedValue: pkijs.Certificate.fromBER(der(c)) }),
      }),
  );
  const encryptCerts = opts.encryptCerts ?? true;
  safes.push({ privacyMode: encryptCerts ? 1 : 0, value: new pkijs.SafeContents({ safeBags: certBags }) });
  encryption.push(encryptCerts ? { ...pbes2 } : {});

  const authSafe = new pkijs.AuthenticatedSafe({ parsedValue: { safeContents: safes } });
  await authSafe.makeInternalValues({ safeContents: encryption }, engine);

  let pfx: pkijs.PFX;
  if (opts.mac ?? true) {
    pfx = new pkijs.PFX({ parsedValue: { integrityMode: 0, authenticatedSafe: authSafe } });
    await pfx.makeInternalValues(
      { password, iterations: 2048, pbkdf2HashAlgorithm: { name: "SHA-256" }, hmacHashAlgorithm: "SHA-256" },
      engine,
    );
  } else {
    pfx = new pkijs.PFX({
      authSafe: new pkijs.ContentInfo({
        contentType: pkijs.ContentInfo.DATA,
        content: new asn1js.OctetString({ valueHex: authSafe.toSchema().toBER(false) }),
      }),
    });
  }
  return Buffer.from(pfx.toSchema().toBER(false));
}

test("AES-encrypted key and certificates with a chain: key, leaf first, then the CA", async () => {
  const { ca, leaf } = await pki();
  // The CA comes first in the file: the result must still start with the certificate of the key.
  const pfx = await buildPfx({ password: "correct horse", key: leaf.key, certs: [ca.cert, leaf.cert] });
  assertExtracted(await readPfx(pfx, "correct horse"), leaf.key, [leaf.cert, ca.cert]);
});

test("plain KeyBag and unencrypted certificates, EC key, no passphrase", async () => {
  const { ec } = await pki();
  const pfx = await buildPfx({
    password: "",
    key: ec.key,
    certs: [ec.cert],
    keyBag: "plain",
    encryptCerts: false,
  });
  assertExtracted(await readPfx(pfx, undefined), ec.key, [ec.cert]);
  assertExtracted(await readPfx(pfx, ""), ec.key, [ec.cert]);
});

test("a non-ASCII passphrase is encoded as PKCS#12 expects (BMPString for the MAC, UTF-8 for PBES2)", async () => {
  const { ec } = await pki();
  const password = "pässwörd €✓";
  const pfx = await buildPfx({ password, key: ec.key, certs: [ec.cert] });
  assertExtracted(await readPfx(pfx, password), ec.key, [ec.cert]);
});

test("the certificate is picked by its public key, not by position; unrelated certificates go last", async () => {
  const { ca, leaf, other } = await pki();
  const pfx = await buildPfx({ password: "pw", key: leaf.key, certs: [other.cert, leaf.cert, ca.cert] });
  assertExtracted(await readPfx(pfx, "pw"), leaf.key, [leaf.cert, ca.cert, other.cert]);
});

test("a wrong or missing passphrase is reported as such (MAC check)", async () => {
  const { leaf } = await pki();
  const pfx = await buildPfx({ password: "right", key: leaf.key, certs: [leaf.cert] });
  await assert.rejects(readPfx(pfx, "wrong"), { message: "wrong passphrase for the PFX file" });
  await assert.rejects(readPfx(pfx, undefined), /^Error: wrong passphrase for the PFX file \(none was given/);
});

test("without a MAC, a wrong passphrase is still reported as such (decryption failure)", async () => {
  const { ec } = await pki();
  const pfx = await buildPfx({ password: "right", key: ec.key, certs: [ec.cert], mac: false });
  assertExtracted(await readPfx(pfx, "right"), ec.key, [ec.cert]);
  await assert.rejects(readPfx(pfx, "wrong"), /^Error: wrong passphrase for the PFX file/);
});

test("a file without a private key, or without its certificate, is rejected", async () => {
  const { ca, leaf } = await pki();
  const certsOnly = await buildPfx({ password: "pw", certs: [leaf.cert, ca.cert] });
  await assert.rejects(readPfx(certsOnly, "pw"), /^Error: the PFX file contains no private key/);

  const mismatched = await buildPfx({ password: "pw", key: leaf.key, certs: [ca.cert] });
  await assert.rejects(readPfx(mismatched, "pw"), {
    message: "no certificate in the PFX file matches its private key",
  });
});

test("something that is not a PFX file is rejected", async () => {
  const { leaf } = await pki();
  await assert.rejects(readPfx(Buffer.from(leaf.cert), "pw"), /^Error: not a PKCS#12 \(\.pfx\/\.p12\) file/);
  await assert.rejects(readPfx(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x03]), "pw"), /^Error: not a PKCS#12/);
});

// --- Interoperability with `openssl pkcs12 -export` --------------------------------------------------

const dir = mkdtempSync(join(tmpdir(), "pfx-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Runs the openssl CLI; throws (failing the test) when it is not installed. */
function openssl(args: string[]): void {
  try {
    execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") {
      throw new Error(
        "`openssl` is not on PATH: the PKCS#12 interoperability tests need it to write .pfx files",
      );
    }
    throw new Error(`openssl ${args.join(" ")} failed: ${(error as { stderr?: Buffer }).stderr ?? error}`);
  }
}

/** Exports leaf + key + CA with `openssl pkcs12 -export <options>` and returns the file. */
async function opensslPfx(name: string, password: string, options: string[]): Promise<Buffer> {
  const { ca, leaf } = await pki();
  const files = {
    cert: join(dir, `${name}.crt`),
    key: join(dir, `${name}.key`),
    ca: join(dir, `${name}.ca`),
  };
  writeFileSync(files.cert, leaf.cert);
  writeFileSync(files.key, leaf.key, { mode: 0o600 });
  writeFileSync(files.ca, ca.cert);
  const out = join(dir, `${name}.pfx`);
  openssl([
    "pkcs12",
    "-export",
    "-in",
    files.cert,
    "-inkey",
    files.key,
    "-certfile",
    files.ca,
    "-out",
    out,
    "-passout",
    `pass:${password}`,
    ...options,
  ]);
  return readFileSync(out);
}

test("openssl default export (PBES2 AES-256-CBC, HMAC-SHA-256)", async () => {
  const { ca, leaf } = await pki();
  const pfx = await opensslPfx("aes", "s3cret", []);
  assertExtracted(await readPfx(pfx, "s3cret"), leaf.key, [leaf.cert, ca.cert]);
  await assert.rejects(readPfx(pfx, "nope"), { message: "wrong passphrase for the PFX file" });
});

test("openssl 3DES export (pbeWithSHAAnd3-KeyTripleDES-CBC, HMAC-SHA-1, as Windows / Key Vault write)", async () => {
  const { ca, leaf } = await pki();
  const pfx = await opensslPfx("3des", "s3cret", [
    "-keypbe",
    "PBE-SHA1-3DES",
    "-certpbe",
    "PBE-SHA1-3DES",
    "-macalg",
    "sha1",
  ]);
  assertExtracted(await readPfx(pfx, "s3cret"), leaf.key, [leaf.cert, ca.cert]);
  await assert.rejects(readPfx(pfx, "nope"), { message: "wrong passphrase for the PFX file" });
});

test("openssl export without encryption and an empty password (KeyBag)", async () => {
  const { ca, leaf } = await pki();
  const pfx = await opensslPfx("plain", "", ["-keypbe", "NONE", "-certpbe", "NONE"]);
  assertExtracted(await readPfx(pfx, undefined), leaf.key, [leaf.cert, ca.cert]);
});

test("openssl export without a MAC", async () => {
  const { ca, leaf } = await pki();
  const pfx = await opensslPfx("nomac", "s3cret", ["-nomac"]);
  assertExtracted(await readPfx(pfx, "s3cret"), leaf.key, [leaf.cert, ca.cert]);
  await assert.rejects(readPfx(pfx, "nope"), /^Error: wrong passphrase for the PFX file/);
});

test("openssl -legacy export (RC2-40 certificates): clear error here, works with the legacy provider", async () => {
  const { ca, leaf } = await pki();
  const pfx = await opensslPfx("legacy", "s3cret", ["-legacy"]);
  if (getCiphers().includes("rc2-40-cbc")) {
    assertExtracted(await readPfx(pfx, "s3cret"), leaf.key, [leaf.cert, ca.cert]);
  } else {
    await assert.rejects(readPfx(pfx, "s3cret"), (error: Error) => {
      assert.match(error.message, /pbeWithSHAAnd40BitRC2-CBC \(1\.2\.840\.113549\.1\.12\.1\.6\)/);
      assert.match(error.message, /--openssl-legacy-provider/);
      assert.match(
        error.message,
        /openssl pkcs12 -export -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256/,
      );
      return true;
    });
  }
  // The same file in a Node with OpenSSL's legacy provider (RC2 for the certificates, 3DES for the key).
  const file = join(dir, "legacy.pfx");
  const script = `
    import { readFileSync } from "node:fs";
    import { readPfx } from ${JSON.stringify(new URL("../../../src/auth/pfx.ts", import.meta.url).href)};
    const { certPem, keyPem } = await readPfx(readFileSync(${JSON.stringify(file)}), "s3cret");
    process.stdout.write(JSON.stringify({ certPem, keyPem }));`;
  const output = execFileSync(process.execPath, [
    "--openssl-legacy-provider",
    "--input-type=module",
    "-e",
    script,
  ]);
  assertExtracted(JSON.parse(output.toString()), leaf.key, [leaf.cert, ca.cert]);
});
