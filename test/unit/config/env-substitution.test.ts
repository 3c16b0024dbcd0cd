// ${VAR} and ${VAR:-default} substitution from the environment.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { errors, KEY_HASH, locate, PUBLIC_APP_ID, TENANT, withRoutes } from "./helpers.ts";

test("${VAR} and ${VAR:-default} are substituted; numbers and booleans may come from the environment", () => {
  const yaml = withRoutes(
    `  - prefix: \${PREFIX:-/pp}
    service: powerplatform
    identity: app
    timeoutMs: \${TIMEOUT}
    rewriteLinks: \${REWRITE:-false}
    access: { apiKeys: [{ name: k, sha256: "\${HASH}" }] }
`,
    `listen: { port: \${PORT:-8080}, host: "\${HOST:-0.0.0.0}", adminPort: 9\${ADMIN_SUFFIX} }\n`,
  );
  const env = { TIMEOUT: "1500", HASH: KEY_HASH, PORT: "", ADMIN_SUFFIX: "191", REWRITE: "true" };
  const { config, issues } = parseConfig(yaml, "routes.yaml", env);
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.equal(config?.listen.port, 8080, "an empty variable takes the :- default");
  assert.equal(config?.listen.host, "0.0.0.0");
  assert.equal(config?.listen.adminPort, 9191);
  assert.equal(config?.routes[0]?.prefix, "/pp");
  assert.equal(config?.routes[0]?.timeoutMs, 1500);
  assert.equal(config?.routes[0]?.rewriteLinks, true);
  assert.equal(config?.routes[0]?.access.apiKeys?.[0]?.sha256, KEY_HASH);
});

test("$${ writes a literal ${, and substituted values are never parsed as YAML", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { anonymous: true }
`).replace("clientSecret: secret", () => "clientSecret: a$${b}c${SECRET}");
  const { config, issues } = parseConfig(yaml, "routes.yaml", { SECRET: "{x: [1]} # not yaml" });
  assert.deepEqual(errors(issues), []);
  const credential = config?.identities.app?.credential;
  assert.deepEqual(credential, { kind: "clientSecret", clientSecret: "a${b}c{x: [1]} # not yaml" });
});

test("an unset variable without default is an error at that value's line:col, and is reported once", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { apiKeys: [{ name: k, sha256: "\${MISSING_HASH}" }] }
`).replace("clientSecret: secret", "clientSecret: ${CLIENT_SECRET}");
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  assert.deepEqual(
    errors(issues).map((i) => [i.location, i.path]),
    [
      [locate("routes.yaml", yaml, "${CLIENT_SECRET}"), "identities.app.clientSecret"],
      [locate("routes.yaml", yaml, '"${MISSING_HASH}"'), "routes[0].access.apiKeys[0].sha256"],
    ],
  );
  assert.match(errors(issues)[0]!.message, /environment variable CLIENT_SECRET is not set/);
  assert.equal(
    formatConfigIssue(errors(issues)[0]!).startsWith("routes.yaml:5:19 identities.app.clientSecret: "),
    true,
  );
});

test("${VAR} inside flow maps is accepted (a bare ${…} is not valid YAML there) and positions stay exact", () => {
  const yaml = `cloud: { authorityHost: \${AUTHORITY} }
identities:
  ops-user:
    tenantId: ${TENANT}
    clientId: ${PUBLIC_APP_ID}
    user: { username: \${LCS_USERNAME}, password: \${LCS_PASSWORD:-a, b: [c] # d}, bogus: 1 }
routes:
  - { prefix: /lcs, service: lcs, identity: ops-user, access: { apiKeys: [{ name: k, sha256: \${HASH} }] } }
`;
  const env = {
    AUTHORITY: "https://login.example:8443",
    LCS_USERNAME: "ops@contoso.example",
    HASH: KEY_HASH,
  };
  const { issues } = parseConfig(yaml, "routes.yaml", env);
  assert.deepEqual(
    errors(issues).map((i) => [i.location, i.path]),
    [[locate("routes.yaml", yaml, "bogus"), "identities.ops-user.user.bogus"]],
  );
  const { config } = parseConfig(yaml.replace(", bogus: 1", ""), "routes.yaml", env);
  assert.deepEqual(config?.cloud, { name: "custom", authorityHost: "https://login.example:8443" });
  assert.deepEqual(config?.identities["ops-user"]?.credential, {
    kind: "user",
    username: "ops@contoso.example",
    password: "a, b: [c] # d",
  });
  assert.equal(config?.routes[0]?.access.apiKeys?.[0]?.sha256, KEY_HASH);
});
