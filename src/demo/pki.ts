/**
 * A throw-away PKI made at run time for the demo and the tests: one self-signed CA and leaf
 * certificates signed by it. Nothing here is ever written to disk or committed.
 */
import { createHash, X509Certificate } from "node:crypto";
import { generate } from "selfsigned";

export interface IssuedCertificate {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key (encrypted when a passphrase was given). */
  key: string;
  /** Upper-case hex SHA-1 of the DER certificate (what the Azure portal shows as "Thumbprint"). */
  thumbprintSha1: string;
  /** Upper-case hex SHA-256 of the DER certificate (what msal-node's `thumbprintSha256` wants). */
  thumbprintSha256: string;
}

export interface IssueOptions {
  commonName: string;
  /** Extra DNS names / IP addresses for a server certificate (localhost, 127.0.0.1 and ::1 are always in). */
  hosts?: string[];
  /** A client-authentication certificate (e.g. an app credential) instead of a TLS server certificate. */
  client?: boolean;
  passphrase?: string;
}

export interface Pki {
  caCert: string;
  issue(opts: IssueOptions): Promise<IssuedCertificate>;
}

const LOOPBACK_NAMES = ["localhost", "127.0.0.1", "::1"];
const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export async function createPki(): Promise<Pki> {
  const ca = await generate([{ name: "commonName", value: "entra-auth-proxy throw-away CA" }], {
    keySize: 2048,
    algorithm: "sha256",
    extensions: [
      { name: "basicConstraints", cA: true, critical: true },
      { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });

  return {
    caCert: ca.cert,
    async issue(opts) {
      const leaf = await generate([{ name: "commonName", value: opts.commonName }], {
        keySize: 2048,
        algorithm: "sha256",
        ca: { key: ca.private, cert: ca.cert },
        ...(opts.passphrase === undefined ? {} : { passphrase: opts.passphrase }),
        extensions: [
          { name: "basicConstraints", cA: false, critical: true },
          { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
          opts.client
            ? { name: "extKeyUsage", clientAuth: true }
            : { name: "extKeyUsage", serverAuth: true, clientAuth: true },
          ...(opts.client
            ? []
            : [{ name: "subjectAltName" as const, altNames: subjectAltNames(opts.hosts) }]),
        ],
      });
      return { cert: leaf.cert, key: leaf.private, ...thumbprints(leaf.cert) };
    },
  };
}

/** SHA-1 and SHA-256 thumbprints (upper-case hex, no colons) of a PEM certificate. */
export function thumbprints(certPem: string): { thumbprintSha1: string; thumbprintSha256: string } {
  const der = new X509Certificate(certPem).raw;
  return {
    thumbprintSha1: createHash("sha1").update(der).digest("hex").toUpperCase(),
    thumbprintSha256: createHash("sha256").update(der).digest("hex").toUpperCase(),
  };
}

function subjectAltNames(hosts: string[] = []): Array<{ type: 2; value: string } | { type: 7; ip: string }> {
  const names = [...new Set([...LOOPBACK_NAMES, ...hosts])];
  return names.map((name) =>
    IPV4.test(name) || name.includes(":") ? { type: 7, ip: name } : { type: 2, value: name },
  );
}
