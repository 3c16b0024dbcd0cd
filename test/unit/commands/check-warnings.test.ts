// `check` warns about the mistakes that pass validation but fail at the first token request:
// a client secret's ID pasted instead of its value, a scope override that differs from the preset's,
// and it never suggests a ${VAR:-default} (which would put a secret in routes.yaml).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { AADSTS_HINTS } from "../../../src/auth/aadsts.ts";
import { run } from "../../../src/commands/check.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { captureIO } from "../../helpers/io.ts";
import { ENV, KEY_HASH, withRoutes } from "../config/helpers.ts";

const ROUTE = `  - prefix: /powerplatform
    service: powerplatform
    identity: app
    access: { apiKeys: [{ name: a, sha256: "sha256:${KEY_HASH}" }] }
`;

async function check(t: TestContext, yaml: string, env: NodeJS.ProcessEnv = ENV) {
  const dir = await mkdtemp(join(tmpdir(), "eap-check-warn-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(file, yaml);
  const io = captureIO(env);
  const code = await run(["--config", file], io);
  return { code, err: io.err() };
}

test("check warns when clientSecret looks like a GUID (the secret's ID, not its value)", async (t) => {
  const yaml = withRoutes(ROUTE).replace(
    "clientSecret: secret",
    "clientSecret: 0f8fad5b-d9cb-469f-a165-70867728950e",
  );
  const { code, err } = await check(t, yaml);
  assert.equal(code, 0);
  assert.match(
    err,
    /identities\.app\.clientSecret: warning: clientSecret looks like a GUID: that is the secret's ID/,
  );
  assert.ok(!err.includes("0f8fad5b-d9cb-469f-a165-70867728950e"), "the value itself is not echoed");
  const plain = await check(t, withRoutes(ROUTE));
  assert.doesNotMatch(plain.err, /GUID/);
});

test("check warns when a scope override differs from the preset's (one slash too many)", async (t) => {
  const yaml = withRoutes(
    ROUTE.replace(
      "service: powerplatform",
      "service: powerplatform\n    scope: https://api.powerplatform.com//.default",
    ),
  );
  const { code, err } = await check(t, yaml);
  assert.equal(code, 0);
  assert.match(
    err,
    /routes\[0\]\.scope: warning: scope "https:\/\/api\.powerplatform\.com\/\/\.default" differs from the powerplatform preset's "https:\/\/api\.powerplatform\.com\/\.default"/,
  );
  const same = withRoutes(
    ROUTE.replace(
      "service: powerplatform",
      "service: powerplatform\n    scope: https://api.powerplatform.com/.default",
    ),
  );
  assert.doesNotMatch((await check(t, same)).err, /differs from/);
});

test("a missing variable in a secret never gets a ${VAR:-default} suggestion; other values do", () => {
  const yaml = withRoutes(ROUTE)
    .replace("clientSecret: secret", "clientSecret: ${APP_SECRET}")
    .replace("password: pw", "password: ${OPS_PASSWORD}")
    .replace("tenantId: 11111111", "tenantId: ${TENANT_X}\n    # 11111111");
  const messages = parseConfig(yaml, "routes.yaml", {}).issues.map((i) => `${i.path}: ${i.message}`);
  const secret = messages.find((m) => m.includes("APP_SECRET"));
  const password = messages.find((m) => m.includes("OPS_PASSWORD"));
  assert.ok(secret && password, messages.join("\n"));
  for (const m of [secret, password]) {
    assert.doesNotMatch(m, /:-/);
    assert.match(m, /a secret has no default/);
  }
  assert.match(messages.find((m) => m.includes("TENANT_X")) ?? "", /\$\{TENANT_X:-default\}/);
});

test("YAML parser errors keep only their first line", () => {
  for (const text of [
    "routes:\n  - prefix: /a\n   bad: [1, 2\n",
    'key: "unterminated\n',
    "a:\n\t- b\n",
    "%FOO\n---\na: 1\n",
  ]) {
    for (const issue of parseConfig(text, "routes.yaml", {}).issues) {
      assert.doesNotMatch(issue.message, /\n/, issue.message);
    }
  }
});

test("the AADSTS90002 hint asks whether tenantId and clientId are swapped", () => {
  assert.match(AADSTS_HINTS["90002"] ?? "", /tenantId and clientId swapped\?/);
});
