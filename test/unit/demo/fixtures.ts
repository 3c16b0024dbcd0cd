// Shared set-up for the demo tests: an emulator on 127.0.0.1 port 0 with a certificate from the
// process-wide trusted PKI, closed when the test ends.
import type { TestContext } from "node:test";
import { EntraEmulator, type EntraEmulatorOptions } from "../../../src/demo/emulator.ts";
import type { IssuedCertificate } from "../../../src/demo/pki.ts";
import { trustedPki } from "../../helpers/pki.ts";

export const TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47";
export const OTHER_TENANT = "0b2b1c56-9a3c-4b8e-9d21-6c4b1f0e7a11";
export const PP_SCOPE = "https://api.powerplatform.com/.default";

let serverCert: Promise<IssuedCertificate> | undefined;

export function localhostCert(): Promise<IssuedCertificate> {
  serverCert ??= trustedPki().then((pki) => pki.issue({ commonName: "localhost" }));
  return serverCert;
}

export async function startEmulator(
  t: TestContext,
  opts: Omit<EntraEmulatorOptions, "tls"> = {},
): Promise<EntraEmulator> {
  const emulator = await EntraEmulator.start({ ...opts, tls: await localhostCert() });
  t.after(() => emulator.close());
  return emulator;
}

/** msal-node `auth` settings that point at the emulator. */
export function msalAuthority(emulator: EntraEmulator, tenantId = TENANT) {
  return { authority: emulator.authority(tenantId), knownAuthorities: [emulator.knownAuthority] };
}

export function decodeClaims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split(".")[1] ?? "", "base64url").toString("utf8"));
}
