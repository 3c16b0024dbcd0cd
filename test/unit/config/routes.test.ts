// Route keys: prefixes, upstream URLs, flow trigger URLs, methods, path globs, scopes, and listen ports and CIDRs.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { errors, locate, withRoutes } from "./helpers.ts";

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
