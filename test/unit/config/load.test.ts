import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { loadConfig, parseConfig } from "../../../src/config/load.ts";
import type { ProxyConfig } from "../../../src/config/types.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import {
  APP_ID,
  ENV,
  errors,
  KEY_HASH,
  locate,
  PUBLIC_APP_ID,
  TENANT,
  warnings,
  withRoutes,
} from "./helpers.ts";

const FULL = `listen:
  host: 127.0.0.1
  port: 8081
  adminPort: 9091
  publicUrl: https://proxy.contoso.example/
  trustProxy: [10.0.0.0/8, "::1"]
  tls: { certFile: tls/tls.crt, keyFile: /etc/tls/tls.key }
  drainTimeoutMs: 5000
warmup: false
cloud: public
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
  lcs-user:
    tenantId: \${TENANT_ID}
    clientId: \${LCS_CLIENT_ID}
    user: { username: \${LCS_USERNAME}, passwordFile: secrets/lcs-password }
routes:
  - prefix: /powerplatform/
    service: powerplatform
    identity: platform-app
    methods: [get, Post]
    paths: ["/environmentmanagement/**"]
    timeoutMs: 1000
    maxBodyBytes: 2048
    maxConcurrent: 8
    rewriteLinks: true
    access:
      apiKeys:
        - { name: erp-nightly, sha256: "\${ERP_API_KEY_SHA256}", expires: 2027-06-30 }
        - { name: other, sha256: ${"0".repeat(64)} }
      cidrs: [10.20.0.0/16]
  - prefix: /flows/order-created
    service: flow
    url: https://abc.ef.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/w1/triggers/manual/paths/invoke?api-version=1&x=a%20b
    identity: platform-app
    access: { anonymous: true }
  - prefix: /lcs
    service: lcs
    region: EU
    identity: lcs-user
    access: { cidrs: [192.0.2.7] }
  - prefix: /graph
    upstream: https://graph.microsoft.com/v1.0/
    scope: https://graph.microsoft.com/.default
    identity: platform-app
    access:
      jwt: { issuer: https://login.microsoftonline.com/${TENANT}/v2.0, audience: api://proxy, jwksUri: https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys, requiredRoles: [Proxy.Use] }
`;

test("a full valid config resolves to the expected ProxyConfig", () => {
  const { config, issues } = parseConfig(FULL, "conf/routes.yaml", ENV, { now: Date.UTC(2026, 0, 1) });
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.ok(config);
  const dir = resolve("conf");
  const expected: Omit<ProxyConfig, "warnings"> = {
    file: resolve("conf/routes.yaml"),
    listen: {
      host: "127.0.0.1",
      port: 8081,
      adminPort: 9091,
      publicUrl: "https://proxy.contoso.example",
      publicHosts: [],
      trustProxy: ["10.0.0.0/8", "::1"],
      tls: { certFile: join(dir, "tls/tls.crt"), keyFile: "/etc/tls/tls.key" },
      drainTimeoutMs: 5000,
    },
    warmup: false,
    cloud: { name: "public", authorityHost: "https://login.microsoftonline.com" },
    identities: {
      "platform-app": {
        name: "platform-app",
        tenantId: TENANT,
        clientId: APP_ID,
        credential: { kind: "clientSecret", clientSecret: "s3cr3t~value" },
      },
      "lcs-user": {
        name: "lcs-user",
        tenantId: TENANT,
        clientId: PUBLIC_APP_ID,
        credential: {
          kind: "user",
          username: "ops@contoso.example",
          passwordFile: join(dir, "secrets/lcs-password"),
        },
      },
    },
    routes: [
      {
        prefix: "/powerplatform",
        service: "powerplatform",
        identity: "platform-app",
        upstream: "https://api.powerplatform.com",
        scope: "https://api.powerplatform.com/.default",
        methods: ["GET", "POST"],
        paths: ["/environmentmanagement/**"],
        timeoutMs: 1000,
        maxBodyBytes: 2048,
        maxConcurrent: 8,
        rewriteLinks: true,
        access: {
          anonymous: false,
          apiKeys: [
            { name: "erp-nightly", sha256: KEY_HASH, expires: new Date("2027-07-01T00:00:00.000Z") },
            { name: "other", sha256: "0".repeat(64) },
          ],
          cidrs: ["10.20.0.0/16"],
        },
      },
      {
        prefix: "/flows/order-created",
        service: "flow",
        identity: "platform-app",
        upstream:
          "https://abc.ef.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/w1/triggers/manual/paths/invoke",
        scope: "https://service.flow.microsoft.com//.default",
        pinnedQuery: [
          ["api-version", "1"],
          ["x", "a b"],
        ],
        methods: ["POST"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        access: { anonymous: true },
      },
      {
        prefix: "/lcs",
        service: "lcs",
        region: "eu",
        identity: "lcs-user",
        upstream: "https://lcsapi.eu.lcs.dynamics.com",
        scope: "https://lcsapi.eu.lcs.dynamics.com//.default",
        methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        access: { anonymous: false, cidrs: ["192.0.2.7"] },
      },
      {
        prefix: "/graph",
        identity: "platform-app",
        upstream: "https://graph.microsoft.com/v1.0",
        scope: "https://graph.microsoft.com/.default",
        methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        access: {
          anonymous: false,
          jwt: {
            issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
            audience: "api://proxy",
            jwksUri: `https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`,
            requiredRoles: ["Proxy.Use"],
          },
        },
      },
    ],
  };
  const { warnings: configWarnings, ...rest } = config;
  assert.deepEqual(rest, expected);
  // Warnings: anonymous flow route and the Power Platform management-app note, and nothing else.
  assert.deepEqual(
    configWarnings.map((w) => w.path),
    ["routes[0].identity", "routes[1].access.anonymous"],
  );
  assert.deepEqual(warnings(issues), configWarnings);
});

test("defaults: listen, warmup, cloud, route limits and methods", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { cidrs: [10.0.0.0/8] }
  - prefix: /flow
    service: flow
    url: https://x.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/1/triggers/manual/paths/invoke
    identity: ops-user
    access: { cidrs: [10.0.0.0/8] }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  assert.deepEqual(config.listen, {
    host: "0.0.0.0",
    port: 8080,
    adminPort: 9090,
    publicHosts: [],
    trustProxy: [],
    drainTimeoutMs: 20000,
  });
  assert.equal(config.warmup, true);
  assert.deepEqual(config.cloud, { name: "public", authorityHost: "https://login.microsoftonline.com" });
  const [pp, flow] = config.routes;
  assert.deepEqual(pp?.methods, ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  assert.equal(pp?.timeoutMs, 30000);
  assert.equal(pp?.maxBodyBytes, 104857600);
  assert.equal(pp?.maxConcurrent, 256);
  assert.equal(pp?.rewriteLinks, false);
  assert.deepEqual(flow?.methods, ["POST"]);
  assert.deepEqual(flow?.pinnedQuery, []);
});

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
    `${locate("routes.yaml", yaml, "access: {}", 8)} routes[2].access: access needs a condition: apiKeys, cidrs or jwt — or anonymous: true to opt out explicitly`,
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

test("prefixes: normalised, must start with /, no //, ., .., % or query; unique after normalisation", () => {
  const route = (prefix: string) => `  - prefix: "${prefix}"
    upstream: https://api.contoso.example
    scope: https://api.contoso.example/.default
    identity: app
    access: { anonymous: true }
`;
  const ok = parseConfig(
    withRoutes(route("/a/b/") + route("/") + route("/a") + route("/a/b/c")),
    "r.yaml",
    {},
  );
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(
    ok.config?.routes.map((r) => r.prefix),
    ["/a/b", "/", "/a", "/a/b/c"],
  );

  const bad = ["pp", "/a//b", "/a/../b", "/a/./b", "/a%2Fb", "/a?x=1", "/a b", "/a/b/"];
  const { issues } = parseConfig(withRoutes(route("/a/b") + bad.map(route).join("")), "r.yaml", {});
  const byRoute = errors(issues).map((i) => [i.path, i.message]);
  assert.deepEqual(byRoute, [
    ["routes[1].prefix", 'must start with "/" (e.g. "/pp")'],
    ["routes[2].prefix", 'must not contain an empty segment ("//")'],
    ["routes[3].prefix", 'must not contain "." or ".." segments'],
    ["routes[4].prefix", 'must not contain "." or ".." segments'],
    ["routes[5].prefix", "must not contain percent-encoding (%); request paths are matched as sent"],
    ["routes[6].prefix", "must be a path only, without ? or #"],
    ["routes[7].prefix", "may contain only letters, digits, / and - . _ ~ ! $ & ' ( ) * + , ; = : @"],
    ["routes[8].prefix", 'duplicate prefix "/a/b" (also routes[0].prefix)'],
  ]);
});

test("http:// upstreams only for loopback hosts", () => {
  const route = (upstream: string) => `  - prefix: /r${Math.random().toString(36).slice(2, 8)}
    upstream: ${upstream}
    scope: https://api.contoso.example/.default
    identity: app
    access: { anonymous: true }
`;
  const loopback = [
    "http://127.0.0.1:8080",
    "http://127.1.2.3/base",
    "http://localhost:3000",
    "http://[::1]:9000",
  ];
  const ok = parseConfig(withRoutes(loopback.map(route).join("")), "r.yaml", {});
  assert.deepEqual(errors(ok.issues), []);
  assert.deepEqual(
    ok.config?.routes.map((r) => r.upstream),
    loopback,
  );

  const refused = [
    "http://example.com",
    "http://10.0.0.1",
    "http://localhost.example.com",
    "ftp://127.0.0.1",
  ];
  const { issues } = parseConfig(withRoutes(refused.map(route).join("")), "r.yaml", {});
  assert.deepEqual(
    errors(issues).map((i) => [i.path, i.message]),
    [
      [
        "routes[0].upstream",
        "http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://",
      ],
      [
        "routes[1].upstream",
        "http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://",
      ],
      [
        "routes[2].upstream",
        "http:// is accepted only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://",
      ],
      ["routes[3].upstream", "must be an https:// URL"],
    ],
  );
});

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

test("a flow url with a sig= SAS signature is refused without echoing it; url must be https", () => {
  const yaml = withRoutes(`  - prefix: /flow
    service: flow
    url: https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers&sv=1.0&sig=SUPERSECRETSIG
    identity: app
    access: { anonymous: true }
  - prefix: /flow2
    service: flow
    url: http://flows.example.com/trigger
    identity: app
    access: { anonymous: true }
  - prefix: /flow3
    service: flow
    identity: app
    access: { anonymous: true }
  - prefix: /flow4
    service: flow
    upstream: https://x.environment.api.powerplatform.com
    url: https://x.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/1/triggers/manual/paths/invoke
    identity: app
    access: { anonymous: true }
`);
  const found = errors(parseConfig(yaml, "routes.yaml", {}).issues);
  assert.deepEqual(
    found.map((i) => i.path),
    ["routes[0].url", "routes[1].url", "routes[2].service", "routes[3].upstream"],
  );
  assert.match(
    found[0]!.message,
    /SAS signature \(sig=\).*Entra ID-secured HTTP triggers.*do not use SAS signatures/,
  );
  assert.equal(found[0]!.location, locate("routes.yaml", yaml, "https://prod-12"));
  for (const issue of found) assert.ok(!issue.message.includes("SUPERSECRETSIG"));
  assert.match(found[2]!.message, /a flow route needs url:/);
});

test("apiKeys: sha256 must be 64 lowercase hex (prefix optional); expires is the end of that day, UTC", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access:
      apiKeys:
        - { name: plain, sha256: ${KEY_HASH} }
        - { name: prefixed, sha256: "sha256:${"1".repeat(64)}", expires: 2027-06-30 }
        - { name: instant, sha256: "${"2".repeat(64)}", expires: "2027-06-30T12:00:00+02:00" }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(errors(issues), []);
  const keys = config?.routes[0]?.access.apiKeys;
  assert.deepEqual(keys, [
    { name: "plain", sha256: KEY_HASH },
    { name: "prefixed", sha256: "1".repeat(64), expires: new Date("2027-07-01T00:00:00Z") },
    { name: "instant", sha256: "2".repeat(64), expires: new Date("2027-06-30T10:00:00Z") },
  ]);

  const bad = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access:
      apiKeys:
        - { name: upper, sha256: ${KEY_HASH.toUpperCase()} }
        - { name: short, sha256: "sha256:abc" }
        - { name: md5, sha256: "md5:${"a".repeat(64)}" }
        - { name: bad-date, sha256: ${"3".repeat(64)}, expires: 2027-02-30 }
        - { name: plain, sha256: ${"4".repeat(64)} }
        - { name: plain, sha256: ${"4".repeat(64)} }
        - { name: "has space", sha256: ${"5".repeat(64)} }
`);
  const found = errors(parseConfig(bad, "routes.yaml", {}).issues);
  assert.deepEqual(
    found.map((i) => i.path),
    [
      "routes[0].access.apiKeys[0].sha256",
      "routes[0].access.apiKeys[1].sha256",
      "routes[0].access.apiKeys[2].sha256",
      "routes[0].access.apiKeys[3].expires",
      "routes[0].access.apiKeys[5].name",
      "routes[0].access.apiKeys[5].sha256",
      "routes[0].access.apiKeys[6].name",
    ],
  );
  assert.ok(found.every((i) => !i.message.includes(KEY_HASH.toUpperCase())));
});

test("an expired API key is a warning", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { apiKeys: [{ name: old, sha256: ${KEY_HASH}, expires: 2020-01-31 }] }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {}, { now: Date.UTC(2026, 0, 1) });
  assert.ok(config);
  assert.ok(
    warnings(issues).some(
      (w) =>
        w.path === "routes[0].access.apiKeys[0].expires" &&
        /expired at 2020-02-01T00:00:00.000Z/.test(w.message),
    ),
  );
});

test("warnings: anonymous access and the Power Platform management-application note", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { anonymous: true }
  - prefix: /pp-user
    service: powerplatform
    identity: ops-user
    access: { cidrs: [10.0.0.0/8] }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.ok(config, "warnings do not block");
  assert.deepEqual(
    warnings(issues).map((w) => [w.location, w.path]),
    [
      [locate("routes.yaml", yaml, "identity: app", 10), "routes[0].identity"],
      [locate("routes.yaml", yaml, "anonymous: true", 11), "routes[0].access.anonymous"],
    ],
  );
  assert.match(
    warnings(issues)[0]!.message,
    /registered as a Power Platform management application \(pac admin application register/,
  );
  assert.match(warnings(issues)[1]!.message, /anyone who can reach this route uses the identity's token/);
  assert.ok(warnings(issues).every((w) => w.severity === "warning"));
  assert.match(
    formatConfigIssue(warnings(issues)[1]!),
    /^routes\.yaml:\d+:\d+ routes\[0\]\.access\.anonymous: warning: /,
  );
});

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

test("route details: methods, paths globs, scopes for applications, trustProxy CIDRs, ports", () => {
  const yaml = withRoutes(
    `  - prefix: /pp
    service: powerplatform
    identity: app
    methods: [get, GET, delete]
    paths: ["environmentmanagement/**", "/a/[b"]
    access: { anonymous: true }
  - prefix: /custom
    upstream: https://api.contoso.example
    scope: https://api.contoso.example/user_impersonation
    identity: app
    access: { anonymous: true }
  - prefix: /custom-user
    upstream: https://api.contoso.example
    scope: https://api.contoso.example/user_impersonation
    identity: ops-user
    access: { anonymous: true }
`,
    "listen: { port: 9000, adminPort: 9000, trustProxy: [10.0.0.0/8, 300.1.1.1, fd00::/129] }\n",
  );
  const found = errors(parseConfig(yaml, "routes.yaml", {}).issues).map((i) => [i.path, i.message]);
  assert.deepEqual(found, [
    [
      "listen.trustProxy[1]",
      '"300.1.1.1" is not an IP address or CIDR (e.g. 10.0.0.0/8, 192.0.2.7, fd00::/8)',
    ],
    ["listen.trustProxy[2]", '"fd00::/129": the prefix length must be 0…128'],
    [
      "routes[0].paths[0]",
      '"environmentmanagement/**" never matches: paths are matched against the path after the prefix, which starts with "/"',
    ],
    [
      "routes[0].paths[1]",
      '"/a/[b" is not a valid glob: Missing closing: "]" - use "\\\\]" to match literal characters',
    ],
    [
      "routes[1].scope",
      'identity "app" is an application (clientSecret), which can only request "<resource>/.default" scopes (client credentials)',
    ],
  ]);
  const ports = parseConfig(
    withRoutes(
      `  - prefix: /pp
    service: powerplatform
    identity: app
    methods: [get, GET, delete]
    access: { anonymous: true }
`,
      "listen: { port: 9000, adminPort: 9000 }\n",
    ),
    "routes.yaml",
    {},
  );
  assert.deepEqual(
    errors(ports.issues).map((i) => [i.path, i.message]),
    [["listen.adminPort", "must differ from listen.port (9000): the admin port is never routed"]],
  );
  const methods = parseConfig(
    withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    methods: [get, GET, delete]
    access: { anonymous: true }
`),
    "routes.yaml",
    {},
  );
  assert.deepEqual(methods.config?.routes[0]?.methods, ["GET", "DELETE"]);
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

test("loadConfig reads the file; a missing file is an issue, not a throw", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-config-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(
    file,
    withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { cidrs: [10.0.0.0/8] }
`).replace("clientSecret: secret", "clientSecretFile: secret.txt"),
  );
  const { config, issues } = await loadConfig(file, {});
  assert.deepEqual(errors(issues), []);
  assert.equal(config?.file, file);
  assert.deepEqual(config?.identities.app?.credential, {
    kind: "clientSecretFile",
    clientSecretFile: join(dir, "secret.txt"),
  });

  const missing = await loadConfig(join(dir, "nope.yaml"), {});
  assert.equal(missing.config, undefined);
  assert.deepEqual(missing.issues, [
    {
      location: join(dir, "nope.yaml"),
      path: "",
      message: "file not found (give --config <path> or set ROUTES_FILE)",
      severity: "error",
    },
  ]);
  const directory = await loadConfig(dir, {});
  assert.match(directory.issues[0]?.message ?? "", /is a directory/);
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
