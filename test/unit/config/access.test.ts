// Route access blocks: API key hashes and expiry, and the warnings `check` prints about access.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { errors, KEY_HASH, locate, warnings, withRoutes } from "./helpers.ts";

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
