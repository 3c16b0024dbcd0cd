// Managed identity through msal-node's ManagedIdentityApplication, against the emulator's
// App-Service-style endpoint (IDENTITY_ENDPOINT / IDENTITY_HEADER). Its own file: msal-node picks
// the managed identity source once per process.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { DEMO_TENANT } from "../../src/demo/stack.ts";
import { useIdentityEndpoint } from "../helpers/identity-endpoint.ts";
import { startStack } from "../helpers/stack.ts";
import { singleIdentityYaml } from "../helpers/yaml.ts";

test("managedIdentity (user-assigned): token accepted by the upstream", async (t) => {
  const clientId = randomUUID();
  const objectId = randomUUID();
  const stack = await startStack(t, {
    yaml: singleIdentityYaml(`managedIdentity: { clientId: \${MI_CLIENT_ID} }`),
    prepare(world) {
      world.emulator.addManagedIdentity({ tenantId: DEMO_TENANT, clientId, objectId });
      useIdentityEndpoint(t, world.emulator.msiEndpoint, world.emulator.identityHeader);
      return { MI_CLIENT_ID: clientId };
    },
  });
  const res = await stack.call("/powerplatform/x");
  assert.equal(res.status, 200, await res.clone().text());
  const { token } = (await res.json()) as { token: { appid: string; oid: string; aud: string } };
  assert.equal(token.appid, clientId);
  assert.equal(token.oid, objectId);
  assert.equal(token.aud, "https://api.powerplatform.com");
});
