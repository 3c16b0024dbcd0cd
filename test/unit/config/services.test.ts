// Microsoft service presets: LCS identities and regions, clouds and their sovereign hosts.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { errors, locate, withRoutes } from "./helpers.ts";

test("lcs with an application identity is refused with the explanation; a user identity is accepted", () => {
  const yaml = withRoutes(`  - prefix: /lcs
    service: lcs
    identity: app
    access: { anonymous: true }
  - prefix: /lcs2
    service: lcs
    identity: mi
    access: { anonymous: true }
  - prefix: /lcs3
    service: lcs
    identity: ops-user
    access: { anonymous: true }
`).replace("routes:\n", "  mi:\n    managedIdentity: {}\nroutes:\n");
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  const found = errors(issues);
  assert.deepEqual(
    found.map((i) => [i.location, i.path]),
    [
      [locate("routes.yaml", yaml, "identity: app", 10), "routes[0].identity"],
      [locate("routes.yaml", yaml, "identity: mi", 10), "routes[1].identity"],
    ],
  );
  assert.equal(
    found[0]?.message,
    'identity "app" uses clientSecret: LCS / Database Movement API accepts delegated user_impersonation tokens only; service principals and managed identities are not supported — use a `user:` identity',
  );
  assert.match(
    found[1]?.message ?? "",
    /^identity "mi" uses managedIdentity: LCS \/ Database Movement API accepts/,
  );
});

test("an unknown lcs region lists the valid ones", () => {
  const yaml = withRoutes(`  - prefix: /lcs
    service: lcs
    region: westeurope
    identity: ops-user
    access: { anonymous: true }
`);
  const [issue] = errors(parseConfig(yaml, "routes.yaml", {}).issues);
  assert.equal(issue?.location, locate("routes.yaml", yaml, "westeurope"));
  assert.equal(issue?.path, "routes[0].region");
  assert.equal(
    issue?.message,
    'unknown LCS region "westeurope"; valid regions: eu, fr, no, sa, ch, uae (omit region for the global instance lcs.dynamics.com)',
  );
  const other = withRoutes(`  - prefix: /pp
    service: powerplatform
    region: eu
    identity: app
    access: { anonymous: true }
`);
  assert.deepEqual(
    errors(parseConfig(other, "routes.yaml", {}).issues).map((i) => [i.path, i.message]),
    [["routes[0].region", "region applies only to service: lcs"]],
  );
});

test("cloud: named clouds, custom authority host, and sovereign clouds need explicit upstream + scope", () => {
  const route = `  - prefix: /pp
    service: powerplatform
    identity: app
    access: { anonymous: true }
`;
  const china = parseConfig(withRoutes(route, "cloud: china\n"), "r.yaml", {});
  assert.deepEqual(
    errors(china.issues).map((i) => [i.path, i.message]),
    [
      [
        "routes[0].service",
        "service powerplatform has no built-in endpoints for the china cloud; set upstream and scope explicitly for this route (the public-cloud defaults are never assumed)",
      ],
    ],
  );
  const explicit = `  - prefix: /pp
    service: powerplatform
    upstream: https://api.powerplatform.partner.microsoftonline.cn
    scope: https://api.powerplatform.partner.microsoftonline.cn/.default
    identity: app
    access: { anonymous: true }
`;
  const ok = parseConfig(withRoutes(explicit, "cloud: usgovhigh\n"), "r.yaml", {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(ok.config?.cloud, {
    name: "usgovhigh",
    authorityHost: "https://login.microsoftonline.us",
  });
  assert.deepEqual(
    parseConfig(withRoutes(route, "cloud: china\n").replace("china", "dod"), "r.yaml", {}).config,
    undefined,
  );

  const custom = parseConfig(
    withRoutes(route, "cloud: { authorityHost: https://login.example:8443/ }\n"),
    "r.yaml",
    {},
  );
  assert.deepEqual(errors(custom.issues), []);
  assert.deepEqual(custom.config?.cloud, { name: "custom", authorityHost: "https://login.example:8443" });
  assert.equal(
    custom.config?.routes[0]?.scope,
    "https://api.powerplatform.com/.default",
    "presets apply to custom",
  );

  const bad = errors(parseConfig(withRoutes(route, "cloud: azure\n"), "r.yaml", {}).issues);
  assert.deepEqual(
    bad.map((i) => [i.path, i.message]),
    [["cloud", "must be one of public, usgov, usgovhigh, dod, china, or { authorityHost: https://… }"]],
  );
  const typo = errors(
    parseConfig(withRoutes(route, "cloud: { authorityhost: https://x }\n"), "r.yaml", {}).issues,
  );
  assert.deepEqual(
    typo.map((i) => i.path),
    ["cloud.authorityHost", "cloud.authorityhost"],
  );
});
