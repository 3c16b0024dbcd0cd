// One throw-away PKI per test process, its CA trusted for this process's outgoing TLS — including the
// global fetch that @azure/msal-node uses — so tests can speak real HTTPS to the emulator.
import { getCACertificates, setDefaultCACertificates } from "node:tls";
import { createPki, type Pki } from "../../src/demo/pki.ts";

let pending: Promise<Pki> | undefined;

export async function trustedPki(): Promise<Pki> {
  pending ??= createPki().then((pki) => {
    setDefaultCACertificates([...getCACertificates("default"), pki.caCert]);
    return pki;
  });
  return pending;
}
