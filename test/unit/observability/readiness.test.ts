import assert from "node:assert/strict";
import { test } from "node:test";
import { decideReadiness, type ReadinessItem } from "../../../src/observability/admin.ts";

const broken: ReadinessItem = {
  identity: "lcs-user",
  scope: "lcs//.default",
  ready: false,
  reason: "AADSTS50126",
};
const healthy: ReadinessItem = { identity: "app", scope: "pp/.default", ready: true, reason: "token valid" };
const routes = [
  { prefix: "/pp", identity: "app", scope: "pp/.default" },
  { prefix: "/lcs", identity: "lcs-user", scope: "lcs//.default" },
];
const base = {
  accepting: true,
  warmedUp: true,
  mode: "process" as const,
  identities: [healthy, broken],
  routes,
};

test("readiness is about the process: a broken identity does not fail it", () => {
  const r = decideReadiness(base);
  assert.equal(r.ready, true);
  assert.deepEqual(
    r.routes.map((x) => [x.prefix, x.ready]),
    [
      ["/pp", true],
      ["/lcs", false],
    ],
  );
});

test("readiness fails while starting and while draining, in either mode", () => {
  assert.deepEqual(
    [
      decideReadiness({ ...base, warmedUp: false }).ready,
      decideReadiness({ ...base, accepting: false }).reason,
    ],
    [false, "shutting down"],
  );
  assert.equal(
    decideReadiness({ ...base, identities: [healthy], accepting: false, mode: "tokens" }).ready,
    false,
  );
});

test("readiness: tokens fails while any identity has no valid token", () => {
  assert.equal(decideReadiness({ ...base, mode: "tokens" }).reason, "no valid token for lcs-user");
  assert.equal(decideReadiness({ ...base, mode: "tokens", identities: [healthy] }).ready, true);
});
