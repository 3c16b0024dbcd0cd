// consumers:, identity limits, route rateLimit and retryThrottled (design.md "Consumers and
// Microsoft's service limits"): what they resolve to, and the errors and warnings around them.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compileAccessCheck } from "../../../src/access/check.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { errors, KEY_HASH, warnings, withRoutes } from "./helpers.ts";

const CONSUMERS = `consumers:
  erp-nightly:
    apiKeys: [{ name: k2026, sha256: "sha256:${KEY_HASH}", expires: 2027-06-30 }]
    rateLimit: { requests: 600, per: 1m, burst: 50 }
  reporting:
    apiKeys: [{ name: main, sha256: "${"1".repeat(64)}" }]
`;

test("consumers resolve into the route's keys, each key naming its consumer; limits and retries resolve", () => {
  const yaml =
    CONSUMERS +
    withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access:
      consumers: [erp-nightly, reporting]
      apiKeys: [{ name: own, sha256: "${"2".repeat(64)}" }]
    rateLimit: { requests: 100, per: 1s }
    retryThrottled: {}
`).replace(
      "    clientSecret: secret\n",
      "    clientSecret: secret\n    limits: { concurrent: 52, requests: 6000, per: 5m }\n",
    );
  const { config, issues } = parseConfig(yaml, "routes.yaml", {}, { now: Date.UTC(2026, 0, 1) });
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  const route = config.routes[0]!;
  assert.deepEqual(route.access.consumers, ["erp-nightly", "reporting"]);
  assert.deepEqual(route.access.apiKeys, [
    { name: "own", sha256: "2".repeat(64) },
    { name: "k2026", sha256: KEY_HASH, expires: new Date("2027-07-01T00:00:00Z"), consumer: "erp-nightly" },
    { name: "main", sha256: "1".repeat(64), consumer: "reporting" },
  ]);
  assert.deepEqual(route.rateLimit, { requests: 100, perMs: 1_000, burst: 100 });
  assert.deepEqual(route.consumerRateLimits, { "erp-nightly": { requests: 600, perMs: 60_000, burst: 50 } });
  assert.deepEqual(route.retryThrottled, { maxWaitMs: 30_000, attempts: 3 });
  assert.deepEqual(config.identities.app?.limits, {
    concurrent: 52,
    window: { requests: 6000, perMs: 300_000 },
    maxWaitMs: 30_000,
  });
  assert.equal(config.identities["ops-user"]?.limits, undefined);
  assert.deepEqual(Object.keys(config.consumers), ["erp-nightly", "reporting"]);
});

test("a consumer's key is admitted with its consumer name; a route's own key with its key name", async () => {
  const yaml =
    CONSUMERS +
    withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { consumers: [erp-nightly], apiKeys: [{ name: own, sha256: "${"2".repeat(64)}" }] }
`);
  const { config } = parseConfig(yaml, "routes.yaml", {}, { now: Date.UTC(2026, 0, 1) });
  const check = compileAccessCheck(config!.routes[0]!.access, () => Date.UTC(2026, 0, 1));
  const erp = await check({ "x-api-key": "test" }, "10.0.0.1");
  assert.deepEqual(erp, { allowed: true, principal: "key:k2026", consumer: "erp-nightly" });
  const reporting = await check({ "x-api-key": "not-a-listed-key" }, "10.0.0.1");
  assert.equal(reporting.allowed, false, "reporting is not named by this route");
});

test("unknown consumers, bad durations, half a window and shared keys are errors; unused consumers warn", () => {
  const yaml =
    `${CONSUMERS}  twin:
    apiKeys: [{ name: copy, sha256: "${"1".repeat(64)}" }]
  idle:
    apiKeys: [{ name: x, sha256: "${"3".repeat(64)}" }]
    rateLimit: { requests: 10, per: 10 }
` +
    withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { consumers: [erp-nightly, reporting, twin, nobody] }
    rateLimit: { requests: 0, per: 1d }
    retryThrottled: { attempts: 11 }
`).replace("    clientSecret: secret\n", "    clientSecret: secret\n    limits: { per: 5m }\n");
  const { config, issues } = parseConfig(yaml, "routes.yaml", {}, { now: Date.UTC(2026, 0, 1) });
  assert.equal(config, undefined);
  const messages = errors(issues).map((i) => `${i.path}: ${i.message}`);
  for (const expected of [
    /^consumers\.twin\.apiKeys\[0\]\.sha256: the same key hash belongs to consumer "reporting" too/,
    /^consumers\.idle\.rateLimit\.per: must be a duration/,
    /^identities\.app\.limits: requests and per go together/,
    /^routes\[0\]\.access\.consumers\[3\]: unknown consumer "nobody" \(consumers: erp-nightly, reporting, twin, idle\)/,
    /^routes\[0\]\.rateLimit\.requests: must be at least 1/,
    /^routes\[0\]\.rateLimit\.per: must be a duration/,
    /^routes\[0\]\.retryThrottled\.attempts: must be at most 10/,
  ]) {
    assert.ok(
      messages.some((m) => expected.test(m)),
      `${expected} in:\n${messages.join("\n")}`,
    );
  }
  assert.ok(
    warnings(issues).some((i) => i.path === "consumers.idle" && /not named by any route/.test(i.message)),
  );
});
