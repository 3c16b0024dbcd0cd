// onBehalfOf on a route: it needs access.jwt and a confidential identity, and it makes LCS and
// delegated scopes acceptable for app registrations (design.md "On-behalf-of").
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { errors, locate, withRoutes } from "./helpers.ts";

const JWT =
  "jwt: { issuer: https://login.example/t/v2.0, audience: api://web-api, jwksUri: https://login.example/keys }";

test("onBehalfOf with a confidential identity and access.jwt is accepted, LCS and a delegated scope included", () => {
  const yaml = withRoutes(`  - prefix: /me/pp
    service: powerplatform
    identity: app
    onBehalfOf: true
    access: { ${JWT} }
  - prefix: /me/lcs
    service: lcs
    identity: app
    onBehalfOf: true
    access: { ${JWT} }
  - prefix: /me/api
    upstream: https://api.contoso.example
    scope: api://downstream/Files.Read
    identity: app
    onBehalfOf: true
    access: { ${JWT} }
  - prefix: /app
    service: powerplatform
    identity: app
    access: { anonymous: true }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(
    config?.routes.map((r) => [r.prefix, r.onBehalfOf]),
    [
      ["/me/pp", true],
      ["/me/lcs", true],
      ["/me/api", true],
      ["/app", undefined],
    ],
  );
  // The management-application warning is about app-only tokens; an OBO route carries the user.
  assert.ok(!issues.some((i) => i.path === "routes[0].identity"));
});

test("onBehalfOf without access.jwt is refused with the reason, at onBehalfOf", () => {
  const yaml = withRoutes(`  - prefix: /me/pp
    service: powerplatform
    identity: app
    onBehalfOf: true
    access: { cidrs: [10.0.0.0/8] }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  const [issue, ...rest] = errors(issues);
  assert.deepEqual(rest, []);
  assert.equal(issue?.path, "routes[0].onBehalfOf");
  assert.equal(issue?.location, locate("routes.yaml", yaml, "onBehalfOf: true", 12));
  assert.match(issue?.message ?? "", /^onBehalfOf needs access\.jwt: the caller's token is verified first/);
});

test("onBehalfOf with a user (ROPC) or a managed identity is refused, explaining why", () => {
  const yaml = withRoutes(`  - prefix: /me/a
    service: powerplatform
    identity: ops-user
    onBehalfOf: true
    access: { ${JWT} }
  - prefix: /me/b
    service: powerplatform
    identity: mi
    onBehalfOf: true
    access: { ${JWT} }
`).replace("routes:\n", "  mi:\n    managedIdentity: {}\nroutes:\n");
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.equal(config, undefined);
  const found = errors(issues);
  assert.deepEqual(
    found.map((i) => i.path),
    ["routes[0].onBehalfOf", "routes[1].onBehalfOf"],
  );
  assert.match(
    found[0]?.message ?? "",
    /^identity "ops-user" is a user \(ROPC\) identity: on-behalf-of is done by the web API's confidential client/,
  );
  assert.match(
    found[1]?.message ?? "",
    /^identity "mi" is a managed identity: Entra ID does not let a managed identity exchange a user's token/,
  );
});

test("onBehalfOf must be a boolean", () => {
  const yaml = withRoutes(`  - prefix: /me/pp
    service: powerplatform
    identity: app
    onBehalfOf: sometimes
    access: { ${JWT} }
`);
  const [issue] = errors(parseConfig(yaml, "routes.yaml", {}).issues);
  assert.equal(issue?.path, "routes[0].onBehalfOf");
});
