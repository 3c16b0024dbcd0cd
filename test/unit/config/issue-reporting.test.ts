// How problems are reported: every one at once, in file order, at file:line:column, with a message written for the operator.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as z from "zod";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { APP_ID, errors, locate, TENANT, withRoutes } from "./helpers.ts";

test("an unknown key is an error at the key's position, with a suggestion", () => {
  const yaml = withRoutes(
    `  - prefix: /pp
    service: powerplatform
    identity: app
    timeout: 5
    access: { cidrs: [10.0.0.0/8], apikeys: [] }
`,
    "listen:\n  adminport: 9000\nwarmUp: true\n",
  );
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  assert.deepEqual(
    errors(issues).map((i) => [i.location, i.path, i.message]),
    [
      [
        locate("routes.yaml", yaml, "adminport"),
        "listen.adminport",
        'unknown key "adminport"; did you mean "adminPort"?',
      ],
      [locate("routes.yaml", yaml, "warmUp"), "warmUp", 'unknown key "warmUp"; did you mean "warmup"?'],
      [
        locate("routes.yaml", yaml, "timeout:"),
        "routes[0].timeout",
        'unknown key "timeout"; did you mean "timeoutMs"?',
      ],
      [
        locate("routes.yaml", yaml, "apikeys"),
        "routes[0].access.apikeys",
        'unknown key "apikeys"; did you mean "apiKeys"?',
      ],
    ],
  );
});

test("a config with many different errors reports all of them at once, in file order", () => {
  const yaml = `listen:
  port: 80800
cloud: usgov
identities:
  app:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
    clientSecret: x
    managedIdentity: {}
routes:
  - prefix: /pp
    service: powerplatform
    identity: erp
    access: { apiKeys: [{ name: k, sha256: "not-a-hash" }] }
  - prefix: /pp/
    service: lcs
    region: mars
    identity: app
    access: { anonymous: true, cidrs: [10.0.0.0/8] }
  - prefix: /x
    upstream: http://example.com
    scope: https://example.com/.default
    identity: app
    methods: [GET, TRACE]
    access: {}
`;
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  const found = errors(issues).map(formatConfigIssue);
  const expected = [
    `${locate("routes.yaml", yaml, "80800")} listen.port: must be at most 65535`,
    `${locate("routes.yaml", yaml, "managedIdentity: {}", 17)} identities.app.managedIdentity: only one credential per identity (found clientSecret and managedIdentity); make a second identity for the other`,
    `${locate("routes.yaml", yaml, "powerplatform\n")} routes[0].service: service powerplatform has no built-in endpoints for the usgov cloud; set upstream and scope explicitly for this route (the public-cloud defaults are never assumed)`,
    `${locate("routes.yaml", yaml, "identity: erp", 10)} routes[0].identity: unknown identity "erp" (identities: app)`,
    `${locate("routes.yaml", yaml, '"not-a-hash"')} routes[0].access.apiKeys[0].sha256: must be the SHA-256 of the key as 64 lowercase hex digits, optionally prefixed "sha256:" (run \`entra-auth-proxy hash-key\`, or printf %s "$KEY" | sha256sum)`,
    `${locate("routes.yaml", yaml, "/pp/")} routes[1].prefix: duplicate prefix "/pp" (also routes[0].prefix)`,
    `${locate("routes.yaml", yaml, "lcs\n")} routes[1].service: service lcs has no built-in endpoints for the usgov cloud; set upstream and scope explicitly for this route (the public-cloud defaults are never assumed)`,
    `${locate("routes.yaml", yaml, "mars")} routes[1].region: unknown LCS region "mars"; valid regions: eu, fr, no, sa, ch, uae (omit region for the global instance lcs.dynamics.com)`,
    `${locate("routes.yaml", yaml, "anonymous: true", 11)} routes[1].access.anonymous: anonymous: true cannot be combined with cidrs; remove one or the other`,
    `${locate("routes.yaml", yaml, "http://example.com")} routes[2].upstream: http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://`,
    `${locate("routes.yaml", yaml, "TRACE")} routes[2].methods[1]: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS`,
    `${locate("routes.yaml", yaml, "access: {}", 8)} routes[2].access: access needs a condition: apiKeys, consumers, cidrs or jwt — or anonymous: true to opt out explicitly`,
  ];
  assert.deepEqual(found, expected);
  assert.equal(found[0], "routes.yaml:2:9 listen.port: must be at most 65535");
});

test("a missing required key is reported at the map that lacks it", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
`);
  const { issues } = parseConfig(yaml, "routes.yaml", {});
  const [missing] = errors(issues);
  assert.equal(missing?.path, "routes[0].access");
  assert.equal(missing?.location, locate("routes.yaml", yaml, "prefix: /pp"));
  assert.match(missing?.message ?? "", /access is required on every route/);
});

test("YAML syntax errors carry line:col and stop further checks", () => {
  const yaml = "listen:\n  port: 8080\n port: 1\nroutes: [\n";
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  assert.ok(issues.length > 0);
  for (const issue of issues) {
    assert.equal(issue.severity, "error");
    assert.match(issue.location, /^routes\.yaml:\d+:\d+$/);
    assert.match(issue.message, /^YAML: /);
  }
  const dup = parseConfig("warmup: true\nwarmup: false\n", "routes.yaml", {});
  assert.equal(dup.issues[0]?.location, "routes.yaml:2:1");
  assert.match(dup.issues[0]?.message ?? "", /unique/);
});

test("type errors say what was expected and hint at quoting", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    timeoutMs: soon
    rewriteLinks: yes
    access: { anonymous: true }
`).replace("password: pw", "password: 1234");
  const found = errors(parseConfig(yaml, "routes.yaml", {}).issues).map((i) => [i.path, i.message]);
  assert.deepEqual(found, [
    ["identities.ops-user.user.password", "expected a string, got a number — quote the value in YAML"],
    ["routes[0].timeoutMs", "expected a number, got a string"],
    ["routes[0].rewriteLinks", "must be true or false"],
  ]);
});

test("an empty file, a non-map document and a missing routes list are errors", () => {
  assert.deepEqual(
    parseConfig("", "routes.yaml", {}).issues.map((i) => i.message),
    ["the file is empty"],
  );
  assert.deepEqual(
    errors(parseConfig("- a\n- b\n", "routes.yaml", {}).issues).map((i) => i.message),
    ["expected a map (key: value), got a list"],
  );
  assert.deepEqual(
    errors(parseConfig("warmup: true\n", "routes.yaml", {}).issues).map((i) => [i.location, i.path]),
    [
      ["routes.yaml:1:1", "identities"],
      ["routes.yaml:1:1", "routes"],
    ],
  );
});

test("messages come from issue codes, not zod's wording: a different zod locale changes nothing", (t) => {
  z.config(z.locales.de());
  t.after(() => z.config(z.locales.en()));
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    timeoutMs: soon
    maxConcurrent: 0
    methods: [GET, FETCH]
    access: { anonymous: true }
`).replace("password: pw", "password: 1234");
  const found = errors(parseConfig(`cloud: mars\n${yaml}`, "routes.yaml", {}).issues).map((i) => [
    i.path,
    i.message,
  ]);
  assert.deepEqual(found, [
    ["cloud", "must be one of public, usgov, usgovhigh, dod, china, or { authorityHost: https://… }"],
    ["identities.ops-user.user.password", "expected a string, got a number — quote the value in YAML"],
    ["routes[0].timeoutMs", "expected a number, got a string"],
    ["routes[0].maxConcurrent", "must be at least 1"],
    ["routes[0].methods[1]", "must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"],
  ]);
  assert.deepEqual(
    errors(parseConfig("- a\n- b\n", "routes.yaml", {}).issues).map((i) => i.message),
    ["expected a map (key: value), got a list"],
  );
});
