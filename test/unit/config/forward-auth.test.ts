// forwardAuth (design.md "Gateway integration (forward auth)"): the listener's settings and their
// defaults, the per-route opt-in, and the mistakes that are reported.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { ENV, errors, warnings, withRoutes } from "./helpers.ts";

const route = (extra = "") => `  - prefix: /pp
    service: powerplatform
    identity: app
${extra}    access: { cidrs: [10.0.0.0/8] }
`;

test("forwardAuth: defaults to port 8081 and loopback peers; absent means no listener; routes opt in", () => {
  const { config, issues } = parseConfig(
    withRoutes(route("    forwardAuth: true\n") + route().replace("/pp", "/other"), "forwardAuth:\n"),
    "routes.yaml",
    ENV,
  );
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.deepEqual(config?.forwardAuth, { port: 8081, trustedPeers: ["127.0.0.0/8", "::1"] });
  assert.deepEqual(
    config?.routes.map((r) => [r.prefix, r.forwardAuth]),
    [
      ["/pp", true],
      ["/other", false],
    ],
  );
  const without = parseConfig(withRoutes(route()), "routes.yaml", ENV);
  assert.equal(without.config?.forwardAuth, undefined);
});

test("forwardAuth: port, peers and an Envoy pathPrefix (trailing / dropped)", () => {
  const yaml = withRoutes(
    route("    forwardAuth: true\n"),
    "forwardAuth: { port: 9091, trustedPeers: [10.0.0.0/8, 192.0.2.7], pathPrefix: /check/ }\n",
  );
  const { config, issues } = parseConfig(yaml, "routes.yaml", ENV);
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.deepEqual(config?.forwardAuth, {
    port: 9091,
    trustedPeers: ["10.0.0.0/8", "192.0.2.7"],
    pathPrefix: "/check",
  });
});

test("forwardAuth: a port shared with the proxy, a bad peer, a bad prefix or an unknown key is an error", () => {
  const cases: Array<[string, RegExp]> = [
    ["forwardAuth: { port: 8080 }\n", /forwardAuth\.port: must differ from listen\.port/],
    [
      "forwardAuth: { port: 9090 }\n",
      /forwardAuth\.port: must differ from listen\.port \(8080\) and listen\.adminPort/,
    ],
    [
      "forwardAuth: { trustedPeers: [everyone] }\n",
      /forwardAuth\.trustedPeers\[0\]: "everyone" is not an IP address/,
    ],
    ["forwardAuth: { pathPrefix: check }\n", /forwardAuth\.pathPrefix: must be a path/],
    ['forwardAuth: { pathPrefix: "/" }\n', /forwardAuth\.pathPrefix: leave pathPrefix out/],
    ["forwardAuth: { prot: 1 }\n", /forwardAuth/],
  ];
  for (const [extra, message] of cases) {
    const { config, issues } = parseConfig(withRoutes(route(), extra), "routes.yaml", ENV);
    assert.equal(config, undefined, extra);
    assert.match(errors(issues).map(formatConfigIssue).join("\n"), message);
  }
});

test("forwardAuth: true on a route without the forwardAuth block is a warning", () => {
  const { config, issues } = parseConfig(withRoutes(route("    forwardAuth: true\n")), "routes.yaml", ENV);
  assert.ok(config);
  assert.match(
    warnings(issues).map(formatConfigIssue).join("\n"),
    /routes\[0\]\.forwardAuth: warning: route \/pp has forwardAuth: true but there is no top-level forwardAuth block/,
  );
});

test("forwardAuth: an anonymous route, or one on behalf of its callers, is refused; cidrs alone is a warning", () => {
  const anonymous = `  - prefix: /pp
    service: powerplatform
    identity: app
    forwardAuth: true
    access: { anonymous: true }
`;
  const obo = `  - prefix: /me
    service: powerplatform
    identity: app
    forwardAuth: true
    onBehalfOf: true
    access:
      jwt: { issuer: https://login.example/t/v2.0, audience: api://web-api, jwksUri: https://login.example/keys }
`;
  const { issues } = parseConfig(
    withRoutes(anonymous + obo + route("    forwardAuth: true\n").replace("/pp", "/cidr")),
    "routes.yaml",
    ENV,
  );
  const text = issues.map(formatConfigIssue).join("\n");
  assert.match(errors(issues).map(formatConfigIssue).join("\n"), /routes\[0\]\.forwardAuth: .*is anonymous/);
  assert.match(
    errors(issues).map(formatConfigIssue).join("\n"),
    /routes\[1\]\.forwardAuth: .*acts on behalf of its callers/,
  );
  assert.match(
    warnings(issues).map(formatConfigIssue).join("\n"),
    /routes\[2\]\.forwardAuth: .*checked only by cidrs/,
    text,
  );
});
