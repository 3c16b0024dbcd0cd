// design.md "Corporate egress proxy": the managed-identity endpoint is never reached through the
// egress proxy, even when noProxy does not exempt it. Its own file: msal-node picks the managed
// identity source once per process.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { test } from "node:test";
import { DEMO_TENANT } from "../../src/demo/stack.ts";
import { MockUpstream } from "../../src/demo/upstreams.ts";
import { startConnectProxy } from "../helpers/connect-proxy.ts";
import { useIdentityEndpoint } from "../helpers/identity-endpoint.ts";
import { startStack } from "../helpers/stack.ts";
import { singleIdentityYaml } from "../helpers/yaml.ts";

test("managed identity: the token comes straight from the identity endpoint, never through the egress proxy", async (t) => {
  const clientId = randomUUID();
  const proxy = await startConnectProxy(t);
  let api: MockUpstream | undefined;
  const stack = await startStack(t, {
    yaml: `${singleIdentityYaml(`managedIdentity: { clientId: \${MI_CLIENT_ID} }`)}egress:\n  proxy: \${EGRESS_PROXY}\n  noProxy: []\n`,
    env: { EGRESS_PROXY: proxy.url },
    async prepare(world) {
      world.emulator.addManagedIdentity({ tenantId: DEMO_TENANT, clientId, objectId: randomUUID() });
      // An https endpoint on localhost: only the managed-identity rule keeps it off the proxy.
      assert.match(world.emulator.msiEndpoint, /^https:\/\/localhost:/);
      useIdentityEndpoint(t, world.emulator.msiEndpoint, world.emulator.identityHeader);
      // The API is https, so its calls do go through the proxy.
      api = await MockUpstream.start({
        name: "powerplatform",
        audience: "https://api.powerplatform.com",
        jwks: world.emulator.publicJwks(),
        tls: await world.pki.issue({ commonName: "localhost" }),
      });
      t.after(() => api?.close());
      return { MI_CLIENT_ID: clientId, POWERPLATFORM_UPSTREAM: api.url };
    },
  });
  const res = await stack.call("/powerplatform/x");
  assert.equal(res.status, 200, await res.clone().text());
  const { token } = (await res.json()) as { token: { appid: string } };
  assert.equal(token.appid, clientId);
  const apiHost = new URL(api!.url).host;
  assert.deepEqual(
    proxy.targets,
    [apiHost],
    "the API call was tunnelled, the managed-identity endpoint was not",
  );
});
