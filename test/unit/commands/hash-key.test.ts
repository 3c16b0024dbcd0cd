import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";
import { run } from "../../../src/commands/hash-key.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { main } from "../../../src/main.ts";
import { captureIO } from "../../helpers/io.ts";
import { withRoutes } from "../config/helpers.ts";

test("hash-key prints a random key whose sha256 matches the printed hash, and a snippet that validates", async () => {
  const io = captureIO();
  assert.equal(await run(["--name", "erp-nightly"], io), 0);
  const text = io.out();
  const key = /^key {5}(\S+)$/m.exec(text)?.[1];
  const hash = /^sha256 {2}(sha256:[0-9a-f]{64})$/m.exec(text)?.[1];
  assert.ok(key && hash, text);
  assert.equal(Buffer.from(key, "base64url").length, 32);
  assert.equal(hash, `sha256:${createHash("sha256").update(key).digest("hex")}`);

  const snippet = text.slice(text.indexOf("apiKeys:"));
  assert.match(snippet, /- name: erp-nightly\n {4}sha256: "sha256:[0-9a-f]{64}"/);
  const indented = snippet
    .trimEnd()
    .split("\n")
    .map((line) => `      ${line}`)
    .join("\n");
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access:
${indented}
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(
    issues.filter((i) => i.severity === "error"),
    [],
  );
  assert.equal(config?.routes[0]?.access.apiKeys?.[0]?.sha256, hash.slice("sha256:".length));

  const again = captureIO();
  await run([], again);
  assert.notEqual(/^key {5}(\S+)$/m.exec(again.out())?.[1], key, "every run makes a new key");
  assert.match(again.out(), /- name: caller/);
});

test("hash-key --help exits 0; unknown flags and bad names exit 1", async () => {
  const help = captureIO();
  assert.equal(await run(["--help"], help), 0);
  assert.match(help.out(), /^Usage: entra-auth-proxy hash-key/);
  const unknown = captureIO();
  assert.equal(await main(["hash-key", "--length", "3"], unknown), 1);
  const badName = captureIO();
  assert.equal(await main(["hash-key", "--name", "has space"], badName), 1);
  assert.match(badName.err(), /--name may contain only/);
});
