// Identities: exactly one credential each, with the ids it needs; managed and workload identity.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { APP_ID, errors, PUBLIC_APP_ID, TENANT } from "./helpers.ts";

test("identities: exactly one credential, required ids, certificate and user variants", () => {
  const yaml = `identities:
  none:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
  no-ids:
    clientSecret: x
  cert-half:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
    certificate: { certFile: a.pem }
  cert-both:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
    certificate: { certFile: a.pem, keyFile: a.key, pfxFile: a.pfx }
  user-both:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
    user: { username: u, password: p, passwordFile: f }
  mi-with-id:
    clientId: ${APP_ID}
    managedIdentity: {}
  bad-ids:
    tenantId: common
    clientId: not-a-guid
    clientSecret: x
routes:
  - prefix: /x
    upstream: https://api.contoso.example
    scope: https://api.contoso.example/.default
    identity: none
    access: { anonymous: true }
`;
  const found = errors(parseConfig(yaml, "routes.yaml", {}).issues).map((i) => i.path);
  assert.deepEqual(found, [
    "identities.none",
    "identities.no-ids",
    "identities.no-ids",
    "identities.cert-half.certificate",
    "identities.cert-both.certificate.pfxFile",
    "identities.user-both.user.passwordFile",
    "identities.mi-with-id.clientId",
    "identities.bad-ids.tenantId",
    "identities.bad-ids.clientId",
  ]);
});

test("managed identity and workload identity (with AZURE_* defaults) resolve", () => {
  const yaml = `identities:
  mi-system:
    managedIdentity:
  mi-user:
    managedIdentity: { clientId: ${APP_ID} }
  aks:
    workloadIdentity: {}
  aks-explicit:
    tenantId: ${TENANT}
    clientId: ${PUBLIC_APP_ID}
    workloadIdentity: { tokenFile: /var/run/token }
routes:
${["mi-system", "mi-user", "aks", "aks-explicit"]
  .map(
    (id) => `  - prefix: /${id}
    service: powerapps
    identity: ${id}
    access: { anonymous: true }
`,
  )
  .join("")}`;
  const env = {
    AZURE_TENANT_ID: TENANT,
    AZURE_CLIENT_ID: APP_ID,
    AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
  };
  const { config, issues } = parseConfig(yaml, "routes.yaml", env);
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.deepEqual(config?.identities, {
    "mi-system": { name: "mi-system", credential: { kind: "managedIdentity" } },
    "mi-user": { name: "mi-user", credential: { kind: "managedIdentity", clientId: APP_ID } },
    aks: {
      name: "aks",
      tenantId: TENANT,
      clientId: APP_ID,
      credential: {
        kind: "workloadIdentity",
        tokenFile: "/var/run/secrets/azure/tokens/azure-identity-token",
      },
    },
    "aks-explicit": {
      name: "aks-explicit",
      tenantId: TENANT,
      clientId: PUBLIC_APP_ID,
      credential: { kind: "workloadIdentity", tokenFile: "/var/run/token" },
    },
  });

  const missing = errors(parseConfig(yaml, "routes.yaml", {}).issues);
  assert.deepEqual(
    missing.map((i) => [i.path, i.message]),
    [
      ["identities.aks", "tenantId is required: set it here or in AZURE_TENANT_ID"],
      ["identities.aks", "clientId is required: set it here or in AZURE_CLIENT_ID"],
      [
        "identities.aks.workloadIdentity",
        "tokenFile is required: set workloadIdentity.tokenFile or AZURE_FEDERATED_TOKEN_FILE",
      ],
    ],
  );
});
