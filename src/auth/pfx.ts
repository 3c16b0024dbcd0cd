// Reads the certificate (with its chain) and the private key out of a PKCS#12 (.pfx / .p12) file, in
// memory only, for the `certificate: { pfxFile, passphrase }` credential: msal-node wants PEM.
//
// Node has no PKCS#12 parser, so pkijs (with asn1js) parses the ASN.1 and decrypts PBES2 (PBKDF2 +
// AES-CBC, what OpenSSL 3 and recent Windows write) through WebCrypto. The rest is done here with
// node:crypto: the password MAC (RFC 7292 appendix B key derivation + HMAC, which also lets us tell a
// wrong passphrase from a damaged file) and the legacy PKCS#12 PBE schemes that WebCrypto lacks
// (pbeWithSHAAnd3-KeyTripleDES-CBC, common in Windows / Azure Key Vault exports; RC2 and RC4 only when
// Node runs with OpenSSL's legacy provider).
import {
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  type KeyObject,
  timingSafeEqual,
  X509Certificate,
} from "node:crypto";
import * as asn1js from "asn1js";
import * as pkijs from "pkijs";

export interface PfxContents {
  /** PEM: the certificate matching the key first, then the rest of the chain (issuer order where known). */
  certPem: string;
  /** PEM, unencrypted PKCS#8. */
  keyPem: string;
}

const REEXPORT_HINT =
  "re-export it with `openssl pkcs12 -export -keypbe AES-256-CBC -certpbe AES-256-CBC -macalg sha256` " +
  "(OpenSSL 3 reads the old file with `openssl pkcs12 -legacy -in old.pfx`)";

const OID = {
  data: "1.2.840.113549.1.7.1",
  signedData: "1.2.840.113549.1.7.2",
  envelopedData: "1.2.840.113549.1.7.3",
  encryptedData: "1.2.840.113549.1.7.6",
  pbes2: "1.2.840.113549.1.5.13",
  pbkdf2: "1.2.840.113549.1.5.12",
  pbmac1: "1.2.840.113549.1.5.14",
} as const;

/** Hashes a PKCS#12 MAC may use: output (u) and block (v) sizes in bytes for the appendix B KDF. */
const DIGESTS: Readonly<Record<string, { hash: string; u: number; v: number }>> = {
  "1.3.14.3.2.26": { hash: "sha1", u: 20, v: 64 },
  "2.16.840.1.101.3.4.2.4": { hash: "sha224", u: 28, v: 64 },
  "2.16.840.1.101.3.4.2.1": { hash: "sha256", u: 32, v: 64 },
  "2.16.840.1.101.3.4.2.2": { hash: "sha384", u: 48, v: 128 },
  "2.16.840.1.101.3.4.2.3": { hash: "sha512", u: 64, v: 128 },
  "2.16.840.1.101.3.4.2.5": { hash: "sha512-224", u: 28, v: 128 },
  "2.16.840.1.101.3.4.2.6": { hash: "sha512-256", u: 32, v: 128 },
};
const SHA1 = DIGESTS["1.3.14.3.2.26"]!;

/** RFC 7292 appendix C password-based encryption schemes (all SHA-1 based). */
const PKCS12_PBE: Readonly<
  Record<string, { name: string; cipher: string; keyLength: number; ivLength: number; legacy: boolean }>
> = {
  "1.2.840.113549.1.12.1.1": {
    name: "pbeWithSHAAnd128BitRC4",
    cipher: "rc4",
    keyLength: 16,
    ivLength: 0,
    legacy: true,
  },
  "1.2.840.113549.1.12.1.2": {
    name: "pbeWithSHAAnd40BitRC4",
    cipher: "rc4-40",
    keyLength: 5,
    ivLength: 0,
    legacy: true,
  },
  "1.2.840.113549.1.12.1.3": {
    name: "pbeWithSHAAnd3-KeyTripleDES-CBC",
    cipher: "des-ede3-cbc",
    keyLength: 24,
    ivLength: 8,
    legacy: false,
  },
  "1.2.840.113549.1.12.1.4": {
    name: "pbeWithSHAAnd2-KeyTripleDES-CBC",
    cipher: "des-ede-cbc",
    keyLength: 16,
    ivLength: 8,
    legacy: false,
  },
  "1.2.840.113549.1.12.1.5": {
    name: "pbeWithSHAAnd128BitRC2-CBC",
    cipher: "rc2-cbc",
    keyLength: 16,
    ivLength: 8,
    legacy: true,
  },
  "1.2.840.113549.1.12.1.6": {
    name: "pbeWithSHAAnd40BitRC2-CBC",
    cipher: "rc2-40-cbc",
    keyLength: 5,
    ivLength: 8,
    legacy: true,
  },
};

/** PBES2 encryption schemes handed to pkijs / WebCrypto. */
const PBES2_CIPHERS: Readonly<Record<string, string>> = {
  "2.16.840.1.101.3.4.1.2": "AES-128-CBC",
  "2.16.840.1.101.3.4.1.22": "AES-192-CBC",
  "2.16.840.1.101.3.4.1.42": "AES-256-CBC",
};
const KNOWN_UNSUPPORTED: Readonly<Record<string, string>> = {
  "1.2.840.113549.3.7": "DES-EDE3-CBC",
  "1.3.14.3.2.7": "DES-CBC",
  "1.2.840.113549.3.2": "RC2-CBC",
  "1.2.840.113549.1.5.3": "pbeWithMD5AndDES-CBC",
  "1.2.840.113549.1.5.10": "pbeWithSHA1AndDES-CBC",
};

/** The errors this module means to throw; anything else is wrapped as "could not read the PFX file". */
class PfxError extends Error {
  override name = "PfxError";
}

let engine: pkijs.CryptoEngine | undefined;
function cryptoEngine(): pkijs.CryptoEngine {
  // Passed explicitly to pkijs rather than installed with setEngine(): no global state to share.
  engine ??= new pkijs.CryptoEngine({ name: "node", crypto: globalThis.crypto });
  return engine;
}

/** The passphrase in the encodings PKCS#12 needs. */
interface Password {
  /** PBES2 / PBKDF2 input: the UTF-8 bytes. */
  utf8: Uint8Array<ArrayBuffer>;
  /** MAC and PKCS#12 PBE input: BMPString (UTF-16BE) with a two-byte NUL terminator. */
  bmp: Buffer;
  /** No passphrase was given (or an empty one). */
  empty: boolean;
}

/**
 * Extracts the private key and its certificate (plus the rest of the chain) from a PKCS#12 file.
 * Rejects with a clear message on a wrong passphrase, on a file without a private key or matching
 * certificate, and on protection schemes that are not supported (naming them).
 */
export async function readPfx(pfx: Buffer, passphrase: string | undefined): Promise<PfxContents> {
  try {
    return await read(pfx, passphrase ?? "");
  } catch (error) {
    if (error instanceof PfxError) throw new Error(error.message);
    throw new Error(
      `could not read the PFX file: ${error instanceof Error ? error.message : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

async function read(data: Buffer, passphrase: string): Promise<PfxContents> {
  let pfx: pkijs.PFX;
  try {
    pfx = pkijs.PFX.fromBER(data);
  } catch (error) {
    throw new PfxError(
      "not a PKCS#12 (.pfx/.p12) file: it does not parse as DER" +
        (data[0] === 0x30 ? "" : " (a base64 or PEM text file must be decoded / converted first)") +
        `: ${error instanceof Error ? error.message : String(error)}`,
    );
  }

  const authSafe = pfx.authSafe;
  if (authSafe.contentType === OID.signedData) {
    throw new PfxError(
      `the PFX file uses public-key integrity (a signed authSafe), which is not supported; ${REEXPORT_HINT}`,
    );
  }
  if (authSafe.contentType !== OID.data || !(authSafe.content instanceof asn1js.OctetString)) {
    throw new PfxError(
      `not a PKCS#12 (.pfx/.p12) file: unexpected authSafe content type ${authSafe.contentType}`,
    );
  }
  const authSafeBytes = Buffer.from(authSafe.content.getValue());

  const password = checkIntegrity(pfx, authSafeBytes, passphrase);
  const safe = pkijs.AuthenticatedSafe.fromBER(authSafeBytes);

  const keys: KeyObject[] = [];
  const certs: X509Certificate[] = [];
  for (const info of safe.safeContents) {
    let contents: pkijs.SafeContents;
    switch (info.contentType) {
      case OID.data: {
        if (!(info.content instanceof asn1js.OctetString))
          throw new PfxError("malformed PFX file: bad SafeContents");
        contents = pkijs.SafeContents.fromBER(info.content.getValue());
        break;
      }
      case OID.encryptedData: {
        const encrypted = new pkijs.EncryptedData({ schema: info.content });
        const plain = await decrypt(encrypted.encryptedContentInfo, password, "certificates");
        try {
          contents = pkijs.SafeContents.fromBER(plain);
        } catch {
          // Only reachable without a MAC (or with a separate encryption password): the bytes are garbage.
          throw new PfxError(`${wrongPassphrase(password.empty)} (the decrypted certificates do not parse)`);
        }
        break;
      }
      case OID.envelopedData:
        throw new PfxError(
          `the PFX file uses public-key privacy (EnvelopedData), which is not supported; ${REEXPORT_HINT}`,
        );
      default:
        throw new PfxError(`malformed PFX file: unknown SafeContents type ${info.contentType}`);
    }
    await collect(contents.safeBags, password, keys, certs);
  }

  if (keys.length === 0) {
    throw new PfxError("the PFX file contains no private key (export the certificate together with its key)");
  }
  if (certs.length === 0) throw new PfxError("the PFX file contains no certificate");

  for (const key of keys) {
    const leaf = certs.find((cert) => matches(cert, key));
    if (leaf === undefined) continue;
    return {
      certPem: orderChain(leaf, certs)
        .map((cert) => pem(cert))
        .join(""),
      keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    };
  }
  throw new PfxError("no certificate in the PFX file matches its private key");
}

/** Verifies the password MAC; returns the passphrase encoding that verified (or the default when there is no MAC). */
function checkIntegrity(pfx: pkijs.PFX, authSafe: Buffer, passphrase: string): Password {
  const utf8 = new Uint8Array(Buffer.from(passphrase, "utf8"));
  const empty = passphrase === "";
  const candidates = [bmpString(passphrase)];
  // An empty password may have been fed to the KDF as "no password at all" (zero bytes, no terminator).
  if (empty) candidates.push(Buffer.alloc(0));
  // Files from OpenSSL < 1.1.0 converted a non-ASCII passphrase byte-by-byte (its UTF-8 read as Latin-1).
  if (Buffer.byteLength(passphrase, "utf8") !== passphrase.length)
    candidates.push(bmpString(Buffer.from(passphrase, "utf8").toString("latin1")));

  const macData = pfx.macData;
  if (macData === undefined) return { utf8, bmp: candidates[0]!, empty };

  const macOid = macData.mac.digestAlgorithm.algorithmId;
  if (macOid === OID.pbmac1) {
    throw new PfxError(
      `the PFX file uses a PBMAC1 integrity check, which is not supported; ${REEXPORT_HINT}`,
    );
  }
  const digest = DIGESTS[macOid];
  if (digest === undefined) {
    throw new PfxError(`the PFX file uses an unsupported MAC digest (${macOid}); ${REEXPORT_HINT}`);
  }
  const salt = Buffer.from(macData.macSalt.getValue());
  const expected = Buffer.from(macData.mac.digest.getValue());
  const iterations = macData.iterations ?? 1;
  for (const bmp of candidates) {
    const key = pkcs12Kdf(digest, bmp, salt, iterations, 3, digest.u);
    const actual = createHmac(digest.hash, key).update(authSafe).digest();
    if (actual.length === expected.length && timingSafeEqual(actual, expected)) return { utf8, bmp, empty };
  }
  throw new PfxError(wrongPassphrase(empty));
}

function wrongPassphrase(empty: boolean): string {
  return empty
    ? "wrong passphrase for the PFX file (none was given: set certificate.passphrase)"
    : "wrong passphrase for the PFX file";
}

async function collect(
  bags: readonly pkijs.SafeBag[],
  password: Password,
  keys: KeyObject[],
  certs: X509Certificate[],
): Promise<void> {
  for (const bag of bags) {
    const value = bag.bagValue;
    if (value instanceof pkijs.PKCS8ShroudedKeyBag) {
      const info = new pkijs.EncryptedContentInfo({
        contentType: OID.data,
        contentEncryptionAlgorithm: value.encryptionAlgorithm,
        encryptedContent: value.encryptedData,
      });
      keys.push(privateKey(await decrypt(info, password, "private key"), password));
    } else if (value instanceof pkijs.PrivateKeyInfo) {
      keys.push(privateKey(Buffer.from(value.toSchema().toBER(false)), undefined));
    } else if (value instanceof pkijs.CertBag) {
      if (
        value.certId === pkijs.id_CertBag_X509Certificate &&
        value.certValue instanceof asn1js.OctetString
      ) {
        certs.push(new X509Certificate(Buffer.from(value.certValue.getValue())));
      }
    } else if (value instanceof pkijs.SafeContents) {
      await collect(value.safeBags, password, keys, certs);
    }
    // CRL and secret bags are of no use here.
  }
}

function privateKey(der: Buffer, password: Password | undefined): KeyObject {
  try {
    return createPrivateKey({ key: der, format: "der", type: "pkcs8" });
  } catch (error) {
    // Without a MAC, a wrong passphrase can decrypt to garbage that still has valid padding.
    if (password !== undefined) {
      throw new PfxError(`${wrongPassphrase(password.empty)} (the decrypted private key does not parse)`);
    }
    throw new PfxError(
      `the private key in the PFX file is unreadable: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

async function decrypt(info: pkijs.EncryptedContentInfo, password: Password, what: string): Promise<Buffer> {
  const algorithm = info.contentEncryptionAlgorithm;
  const oid = algorithm.algorithmId;
  if (oid === OID.pbes2) return decryptPbes2(info, password, what);
  const pbe = PKCS12_PBE[oid];
  if (pbe === undefined)
    throw unsupported(KNOWN_UNSUPPORTED[oid] ?? "an unknown algorithm", oid, what, false);

  const params = algorithm.algorithmParams;
  const [salt, iterations] = params instanceof asn1js.Sequence ? params.valueBlock.value : [];
  if (!(salt instanceof asn1js.OctetString) || !(iterations instanceof asn1js.Integer)) {
    throw new PfxError(`malformed PFX file: bad ${pbe.name} parameters for the ${what}`);
  }
  const saltBytes = Buffer.from(salt.getValue());
  const count = iterations.valueBlock.valueDec;
  const key = pkcs12Kdf(SHA1, password.bmp, saltBytes, count, 1, pbe.keyLength);
  const iv = pbe.ivLength === 0 ? null : pkcs12Kdf(SHA1, password.bmp, saltBytes, count, 2, pbe.ivLength);
  let decipher: ReturnType<typeof createDecipheriv>;
  try {
    decipher = createDecipheriv(pbe.cipher, key, iv);
  } catch {
    throw unsupported(pbe.name, oid, what, pbe.legacy);
  }
  try {
    return Buffer.concat([decipher.update(Buffer.from(info.getEncryptedContent())), decipher.final()]);
  } catch {
    throw new PfxError(`${wrongPassphrase(password.empty)} (could not decrypt the ${what})`);
  }
}

async function decryptPbes2(
  info: pkijs.EncryptedContentInfo,
  password: Password,
  what: string,
): Promise<Buffer> {
  let params: pkijs.PBES2Params;
  try {
    params = new pkijs.PBES2Params({ schema: info.contentEncryptionAlgorithm.algorithmParams });
  } catch {
    throw new PfxError(`malformed PFX file: bad PBES2 parameters for the ${what}`);
  }
  const kdf = params.keyDerivationFunc.algorithmId;
  if (kdf !== OID.pbkdf2) throw unsupported(`PBES2 with key derivation ${kdf}`, OID.pbes2, what, false);
  const scheme = params.encryptionScheme.algorithmId;
  if (PBES2_CIPHERS[scheme] === undefined) {
    throw unsupported(`PBES2 with ${KNOWN_UNSUPPORTED[scheme] ?? scheme}`, OID.pbes2, what, false);
  }
  try {
    const plain = await cryptoEngine().decryptEncryptedContentInfo({
      password: password.utf8.buffer,
      encryptedContentInfo: info,
    });
    return Buffer.from(plain);
  } catch (error) {
    // WebCrypto reports bad padding (the usual sign of a wrong key) as an OperationError.
    if (error instanceof Error && error.name === "OperationError") {
      throw new PfxError(`${wrongPassphrase(password.empty)} (could not decrypt the ${what})`);
    }
    throw new PfxError(
      `could not decrypt the ${what} in the PFX file (PBES2 with ${PBES2_CIPHERS[scheme]}): ` +
        (error instanceof Error ? error.message : String(error)),
    );
  }
}

function unsupported(name: string, oid: string, what: string, legacy: boolean): PfxError {
  return new PfxError(
    `the PFX file protects its ${what} with ${name} (${oid}), which is not supported` +
      (legacy ? " by this Node.js without OpenSSL's legacy provider (node --openssl-legacy-provider)" : "") +
      `; ${REEXPORT_HINT}`,
  );
}

/** RFC 7292 appendix B.2: derives `length` bytes of key (id 1), IV (id 2) or MAC key (id 3) material. */
function pkcs12Kdf(
  digest: { hash: string; u: number; v: number },
  password: Buffer,
  salt: Buffer,
  iterations: number,
  id: 1 | 2 | 3,
  length: number,
): Buffer {
  const { hash, u, v } = digest;
  const fill = (source: Buffer): Buffer => {
    const out = Buffer.alloc(v * Math.ceil(source.length / v));
    for (let i = 0; i < out.length; i++) out[i] = source[i % source.length]!;
    return out;
  };
  const D = Buffer.alloc(v, id);
  const I = Buffer.concat([fill(salt), fill(password)]);
  const blocks: Buffer[] = [];
  for (let produced = 0; produced < length; produced += u) {
    let A = createHash(hash).update(D).update(I).digest();
    for (let r = 1; r < iterations; r++) A = createHash(hash).update(A).digest();
    blocks.push(A);
    if (produced + u >= length) break;
    // I_j = (I_j + B + 1) mod 2^(8v) for each v-byte block I_j of I, where B is A repeated to v bytes.
    const B = fill(A).subarray(0, v);
    for (let j = 0; j < I.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = I[j + k]! + B[k]! + carry;
        I[j + k] = sum & 0xff;
        carry = sum >>> 8;
      }
    }
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** BMPString with a NUL terminator, as PKCS#12 feeds passwords to its KDF. */
function bmpString(value: string): Buffer {
  const out = Buffer.alloc(value.length * 2 + 2);
  for (let i = 0; i < value.length; i++) out.writeUInt16BE(value.charCodeAt(i), i * 2);
  return out;
}

function matches(cert: X509Certificate, key: KeyObject): boolean {
  try {
    return cert.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/** The leaf, then its issuers as far as the file has them, then any other certificates in file order. */
function orderChain(leaf: X509Certificate, certs: readonly X509Certificate[]): X509Certificate[] {
  const seen = new Set([leaf.fingerprint256]);
  const rest: X509Certificate[] = [];
  for (const cert of certs) {
    if (seen.has(cert.fingerprint256)) continue;
    seen.add(cert.fingerprint256);
    rest.push(cert);
  }
  const chain = [leaf];
  let current = leaf;
  while (!current.checkIssued(current)) {
    const index = rest.findIndex((cert) => current.checkIssued(cert));
    if (index < 0) break;
    current = rest.splice(index, 1)[0]!;
    chain.push(current);
  }
  return [...chain, ...rest];
}

function pem(cert: X509Certificate): string {
  const text = cert.toString().replace(/\r\n/g, "\n");
  return text.endsWith("\n") ? text : `${text}\n`;
}
