// routes.yaml is read on every reload of a running proxy: no file, however large or broken, may
// make loading throw, stall for long, or print an unbounded list of issues.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, openSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type TestContext, test } from "node:test";
import { loadConfig, MAX_CONFIG_BYTES, MAX_REPORTED_ISSUES, parseConfig } from "../../../src/config/load.ts";
import { ConfigError } from "../../../src/errors.ts";
import { ENV, errors, warnings, withRoutes } from "./helpers.ts";

async function tempFile(t: TestContext, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "eap-limits-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(file, text);
  return file;
}

test("a 200,000-line routes list (1.2 MB) is one size error, not a RangeError", async (t) => {
  const text = `routes:\n${"  - 1\n".repeat(200_000)}`;
  const file = await tempFile(t, text);
  const { config, issues } = await loadConfig(file, ENV);
  assert.equal(config, undefined);
  assert.deepEqual(issues, [
    {
      location: file,
      path: "",
      message: `the file is ${Buffer.byteLength(text)} bytes; routes.yaml may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`,
      severity: "error",
    },
  ]);
  const error = new ConfigError(issues);
  assert.equal(error.code, "config_invalid");
});

test("parseConfig refuses text over the size cap before parsing it", () => {
  const text = `# ${"x".repeat(MAX_CONFIG_BYTES)}\n${withRoutes("")}`;
  const { config, issues } = parseConfig(text, "routes.yaml", ENV);
  assert.equal(config, undefined);
  assert.equal(issues.length, 1);
  assert.match(
    issues[0]!.message,
    /^the file is \d+ bytes; routes\.yaml may be at most 1048576 bytes \(1 MiB\)$/,
  );
});

test("a file just under the cap with one error per line reports the first issues and counts the rest", () => {
  // Small enough to pass the size cap, long enough that spreading its issues into a call overflows the stack.
  const count = 150_000;
  const text = `routes:\n${"  - 1\n".repeat(count)}`;
  assert.ok(Buffer.byteLength(text) < MAX_CONFIG_BYTES);
  const { config, issues } = parseConfig(text, "routes.yaml", ENV);
  assert.equal(config, undefined);
  assert.equal(issues.length, MAX_REPORTED_ISSUES + 1);
  // "identities is required" plus one "expected a map" per list item.
  const total = count + 1;
  assert.deepEqual(issues.at(-1), {
    location: "routes.yaml",
    path: "",
    message: `… and ${total - MAX_REPORTED_ISSUES} more errors (only the first ${MAX_REPORTED_ISSUES} are listed)`,
    severity: "error",
  });
  assert.equal(issues[1]!.location, "routes.yaml:2:5");
  assert.equal(issues[1]!.path, "routes[0]");
});

test("capping counts warnings apart and keeps a config that has only warnings valid", () => {
  const routes = Array.from(
    { length: 120 },
    (_, i) => `  - prefix: /open${i}
    upstream: http://127.0.0.1:9999
    scope: https://api.contoso.example/.default
    identity: app
    access: { anonymous: true }
`,
  ).join("");
  const { config, issues } = parseConfig(withRoutes(routes), "routes.yaml", ENV);
  assert.deepEqual(errors(issues), []);
  assert.ok(config, "warnings alone never make a config invalid");
  assert.equal(config.routes.length, 120);
  // 120 anonymous routes + the unused ops-user identity.
  assert.equal(warnings(issues).length, MAX_REPORTED_ISSUES + 1);
  assert.equal(
    issues.at(-1)!.message,
    `… and ${121 - MAX_REPORTED_ISSUES} more warnings (only the first ${MAX_REPORTED_ISSUES} are listed)`,
  );
  assert.deepEqual(config.warnings, issues);
});

test("a FIFO or device as routes.yaml is refused without opening it (opening a FIFO blocks)", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-limits-"));
  const fifo = join(dir, "routes.yaml");
  execFileSync("mkfifo", [fifo]);
  // Unblocks a reader stuck in open(), so a failing run ends instead of hanging.
  t.after(async () => {
    closeSync(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
    await rm(dir, { recursive: true, force: true });
  });
  for (const file of [fifo, "/dev/zero"]) {
    const result = await Promise.race([
      loadConfig(file, ENV),
      new Promise<"still reading">((resolve) => setTimeout(resolve, 2000, "still reading").unref()),
    ]);
    assert.deepEqual(result, {
      issues: [{ location: file, path: "", message: "is not a regular file", severity: "error" }],
    });
  }
});
