// msal-node finds the App Service managed identity endpoint in the process environment: tests point it
// at the emulator and put the previous values back when they end.
import type { TestContext } from "node:test";

/** Sets IDENTITY_ENDPOINT and IDENTITY_HEADER for the rest of test `t`. */
export function useIdentityEndpoint(t: TestContext, endpoint: string, header: string): void {
  const saved = {
    IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT,
    IDENTITY_HEADER: process.env.IDENTITY_HEADER,
  };
  t.after(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });
  process.env.IDENTITY_ENDPOINT = endpoint;
  process.env.IDENTITY_HEADER = header;
}
