// listen.publicHosts (design.md routes.yaml): the Host values believed for link and Location
// rewrites when there is no publicUrl — and the warning when a rewriteLinks route has neither.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { ENV, errors, locate, warnings, withRoutes } from "./helpers.ts";

const REWRITING_ROUTE = `  - prefix: /pp
    service: powerplatform
    identity: app
    rewriteLinks: true
    access: { cidrs: [10.0.0.0/8] }
`;

test("listen.publicHosts: host[:port] entries, IPv6 in brackets, stored lower-case; default []", () => {
  const yaml = withRoutes(
    REWRITING_ROUTE,
    'listen: { publicHosts: [Proxy.Contoso.Example, "proxy.contoso.example:8443", 192.0.2.7, "[2001:db8::1]:8443"] }\n',
  );
  const { config, issues } = parseConfig(yaml, "routes.yaml", ENV);
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.deepEqual(config?.listen.publicHosts, [
    "proxy.contoso.example",
    "proxy.contoso.example:8443",
    "192.0.2.7",
    "[2001:db8::1]:8443",
  ]);

  const defaults = parseConfig(withRoutes(REWRITING_ROUTE), "routes.yaml", ENV);
  assert.deepEqual(defaults.config?.listen.publicHosts, []);
});

test("listen.publicHosts: a scheme, a path, a bad port or a bare IPv6 address is an error at that entry", () => {
  const entries = [
    "https://proxy.contoso.example",
    "proxy.contoso.example/pp",
    "user@proxy.contoso.example",
    "proxy.contoso.example:99999",
    "proxy.contoso.example:http",
    "2001:db8::1",
    "[not-an-ip]",
    "",
    "-bad-.example",
  ];
  const yaml = withRoutes(
    REWRITING_ROUTE,
    `listen:\n  publicHosts:\n${entries.map((e) => `    - "${e}"\n`).join("")}`,
  );
  const { config, issues } = parseConfig(yaml, "routes.yaml", ENV);
  assert.equal(config, undefined);
  assert.deepEqual(
    errors(issues).map((i) => [i.location, i.path, i.message]),
    [
      [
        locate("routes.yaml", yaml, '"https://'),
        "listen.publicHosts[0]",
        "must be a host[:port] as in a Host header, without a scheme (e.g. proxy.contoso.example)",
      ],
      [
        locate("routes.yaml", yaml, '"proxy.contoso.example/pp'),
        "listen.publicHosts[1]",
        "must be a host[:port] only, without a path, query or user",
      ],
      [
        locate("routes.yaml", yaml, '"user@'),
        "listen.publicHosts[2]",
        "must be a host[:port] only, without a path, query or user",
      ],
      [
        locate("routes.yaml", yaml, '"proxy.contoso.example:99999'),
        "listen.publicHosts[3]",
        "the port must be 0…65535",
      ],
      ...[4, 5, 6, 8].map((n) => [
        locate("routes.yaml", yaml, `"${entries[n]}"`),
        `listen.publicHosts[${n}]`,
        "must be a host name or IP address with an optional :port (IPv6 in brackets, e.g. [2001:db8::1]:8443)",
      ]),
      [locate("routes.yaml", yaml, '""'), "listen.publicHosts[7]", "must not be empty"],
    ].sort((a, b) => a[0]!.localeCompare(b[0]!, undefined, { numeric: true })),
  );
});

test("a rewriteLinks route warns when neither listen.publicUrl nor listen.publicHosts is set", () => {
  const yaml = withRoutes(
    `${REWRITING_ROUTE}  - prefix: /plain
    service: powerapps
    identity: app
    access: { cidrs: [10.0.0.0/8] }
`,
  );
  const { config, issues } = parseConfig(yaml, "routes.yaml", ENV);
  assert.ok(config, "a warning, not an error");
  const rewriteWarnings = warnings(issues).filter((i) => i.path.endsWith("rewriteLinks"));
  assert.deepEqual(rewriteWarnings, [
    {
      location: locate("routes.yaml", yaml, "rewriteLinks: true", 14),
      path: "routes[0].rewriteLinks",
      message:
        "route /pp rewrites links but neither listen.publicUrl nor listen.publicHosts is set, so rewritten links fall back to the listener's own address; set one of them to the address callers use",
      severity: "warning",
    },
  ]);

  for (const listen of [
    "listen: { publicUrl: https://proxy.contoso.example }\n",
    "listen: { publicHosts: [proxy.contoso.example] }\n",
  ]) {
    const quiet = parseConfig(withRoutes(REWRITING_ROUTE, listen), "routes.yaml", ENV);
    assert.ok(quiet.config, listen);
    assert.deepEqual(
      quiet.issues.filter((i) => i.path.endsWith("rewriteLinks")),
      [],
      listen,
    );
  }
});
