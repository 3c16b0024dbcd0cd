// loadConfig: reading routes.yaml from disk.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "../../../src/config/load.ts";
import { errors, withRoutes } from "./helpers.ts";

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
