import assert from "node:assert/strict";
import { test } from "node:test";
import { interpolateEnv, workloadIdentityEnvironment } from "../../../src/config/environment.ts";

test("${VAR}, ${VAR:-default} and $${ escapes", () => {
  const env = { A: "alpha", EMPTY: "" };
  assert.deepEqual(interpolateEnv("plain", env), { ok: true, value: "plain" });
  assert.deepEqual(interpolateEnv("${A}", env), { ok: true, value: "alpha" });
  assert.deepEqual(interpolateEnv("x-${A}-${A}", env), { ok: true, value: "x-alpha-alpha" });
  assert.deepEqual(interpolateEnv("${B:-fallback value}", env), { ok: true, value: "fallback value" });
  assert.deepEqual(interpolateEnv("${EMPTY:-d}", env), { ok: true, value: "d" });
  assert.deepEqual(interpolateEnv("${EMPTY}", env), { ok: true, value: "" });
  assert.deepEqual(interpolateEnv("${B:-}", env), { ok: true, value: "" });
  assert.deepEqual(interpolateEnv("cost $5 and $${A}", env), { ok: true, value: "cost $5 and ${A}" });
});

test("unset variables, bad names and unterminated references are errors naming no value", () => {
  assert.deepEqual(interpolateEnv("${NOPE}", {}), {
    ok: false,
    message: "environment variable NOPE is not set (write ${NOPE:-default} to give a default)",
  });
  assert.deepEqual(interpolateEnv("${X}${Y}${X}", {}), {
    ok: false,
    message: "environment variables X, Y are not set",
  });
  assert.equal(interpolateEnv("${1BAD}", {}).ok, false);
  assert.equal(interpolateEnv("${A B}", {}).ok, false);
  assert.match((interpolateEnv("${A", {}) as { message: string }).message, /unterminated/);
  assert.match((interpolateEnv("${A:-${B}}", {}) as { message: string }).message, /nested/);
});

test("workload identity defaults: AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_FEDERATED_TOKEN_FILE; empty counts as unset", () => {
  assert.deepEqual(
    workloadIdentityEnvironment({
      AZURE_TENANT_ID: "t",
      AZURE_CLIENT_ID: "c",
      AZURE_FEDERATED_TOKEN_FILE: "/var/run/token",
    }),
    { tenantId: "t", clientId: "c", tokenFile: "/var/run/token" },
  );
  assert.deepEqual(workloadIdentityEnvironment({ AZURE_TENANT_ID: "", AZURE_CLIENT_ID: "c" }), {
    clientId: "c",
  });
});
