import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type TestContext, test } from "node:test";
import { run } from "../../../src/commands/check.ts";
import { main } from "../../../src/main.ts";
import { captureIO } from "../../helpers/io.ts";
import { ENV, KEY_HASH, locate, TENANT, withRoutes } from "../config/helpers.ts";

async function tempFile(t: TestContext, name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "eap-check-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, name);
  await writeFile(file, text);
  return file;
}

const VALID = withRoutes(`  - prefix: /powerplatform
    service: powerplatform
    identity: app
    access:
      apiKeys:
        - { name: a, sha256: "sha256:${KEY_HASH}" }
        - { name: b, sha256: ${"1".repeat(64)} }
  - prefix: /lcs
    service: lcs
    region: eu
    identity: ops-user
    access: { cidrs: [10.0.0.0/8], apiKeys: [{ name: c, sha256: ${"2".repeat(64)} }] }
  - prefix: /open
    upstream: http://127.0.0.1:9999
    scope: https://api.contoso.example/.default
    identity: app
    access: { anonymous: true }
`);

test("check: a valid config prints one summary line per route and exits 0; warnings go to stderr", async (t) => {
  const file = await tempFile(t, "routes.yaml", VALID);
  const io = captureIO();
  assert.equal(await run(["--config", file], io), 0);
  assert.deepEqual(io.out().split("\n"), [
    "/powerplatform → https://api.powerplatform.com scope https://api.powerplatform.com/.default identity app (clientSecret) access apiKeys[2]",
    "/lcs → https://lcsapi.eu.lcs.dynamics.com scope https://lcsapi.eu.lcs.dynamics.com//.default identity ops-user (user) access apiKeys[1] + cidrs[1]",
    "/open → http://127.0.0.1:9999 scope https://api.contoso.example/.default identity app (clientSecret) access anonymous",
    "",
  ]);
  const warnings = io.err().trim().split("\n");
  assert.equal(warnings.length, 2);
  assert.match(
    warnings[0]!,
    /^.*routes\.yaml:\d+:\d+ routes\[0\]\.identity: warning: .*management application/,
  );
  assert.match(warnings[1]!, /routes\[2\]\.access\.anonymous: warning: .*anyone who can reach this route/);
});

test("check: every error goes to stderr as file:line:col path: message, exit 1, nothing on stdout", async (t) => {
  const yaml = VALID.replace("identity: ops-user", "identity: erp").replace("region: eu", "region: atlantis");
  const file = await tempFile(t, "routes.yaml", yaml);
  const io = captureIO();
  assert.equal(await run(["-c", file], io), 1);
  assert.equal(io.out(), "");
  const lines = io
    .err()
    .trim()
    .split("\n")
    .filter((line) => !line.includes(": warning: "));
  assert.deepEqual(lines, [
    `${locate(file, yaml, "atlantis")} routes[1].region: unknown LCS region "atlantis"; valid regions: eu, fr, no, sa, ch, uae (omit region for the global instance lcs.dynamics.com)`,
    `${locate(file, yaml, "identity: erp", 10)} routes[1].identity: unknown identity "erp" (identities: app, ops-user)`,
  ]);
});

test("check: the config path comes from --config, else ROUTES_FILE, else ./routes.yaml", async (t) => {
  const file = await tempFile(t, "custom.yaml", VALID);
  const fromEnv = captureIO({ ROUTES_FILE: file });
  assert.equal(await run([], fromEnv), 0);
  assert.match(fromEnv.out(), /^\/powerplatform → /);

  const missing = captureIO({ ROUTES_FILE: join(file, "..", "absent.yaml") });
  assert.equal(await run([], missing), 1);
  assert.match(missing.err(), /absent\.yaml: file not found/);
});

test("check --help exits 0; an unknown flag exits 1", async () => {
  const help = captureIO();
  assert.equal(await run(["--help"], help), 0);
  assert.match(help.out(), /^Usage: entra-auth-proxy check \[--config routes\.yaml\] \[--online\]/);

  const unknown = captureIO();
  assert.equal(await main(["check", "--bogus"], unknown), 1);
  assert.match(unknown.err(), /entra-auth-proxy check: Unknown option '--bogus'/);
});

test("check: the repository's example routes.yaml passes with its environment variables set", async () => {
  const io = captureIO({ ...ENV, TENANT_ID: TENANT });
  assert.equal(
    await run(["--config", resolve(import.meta.dirname, "../../../routes.yaml")], io),
    0,
    io.err(),
  );
  const lines = io.out().trim().split("\n");
  assert.deepEqual(
    lines.map((l) => l.split(" ")[0]),
    ["/powerplatform", "/powerapps", "/flows/order-created", "/lcs"],
  );
  assert.match(
    lines[0]!,
    / scope https:\/\/api\.powerplatform\.com\/\.default identity platform-app \(clientSecret\)/,
  );
  assert.match(lines[1]!, / scope https:\/\/service\.powerapps\.com\/\/\.default /);
  assert.match(
    lines[2]!,
    /\.environment\.api\.powerplatform\.com\/.*\?api-version=1 scope https:\/\/service\.flow\.microsoft\.com\/\/\.default /,
  );
  assert.match(
    lines[3]!,
    /^\/lcs → https:\/\/lcsapi\.eu\.lcs\.dynamics\.com scope https:\/\/lcsapi\.eu\.lcs\.dynamics\.com\/\/\.default identity lcs-operator \(user\)/,
  );
  assert.doesNotMatch(io.err(), /error/i);

  const unset = captureIO({});
  assert.equal(await run(["--config", resolve(import.meta.dirname, "../../../routes.yaml")], unset), 1);
  assert.match(unset.err(), /environment variable TENANT_ID is not set/);
});

test("check: an oversized routes.yaml exits 1 with one clean line, no stack trace", async (t) => {
  const text = `routes:\n${"  - 1\n".repeat(200_000)}`;
  const file = await tempFile(t, "routes.yaml", text);
  const io = captureIO();
  assert.equal(await main(["check", "--config", file], io), 1);
  assert.equal(io.out(), "");
  assert.equal(
    io.err(),
    `${file}: the file is ${Buffer.byteLength(text)} bytes; routes.yaml may be at most 1048576 bytes (1 MiB)\n`,
  );
});

test("check: a file with thousands of errors prints the first 100 and a count of the rest, exit 1", async (t) => {
  const file = await tempFile(t, "routes.yaml", withRoutes("  - 1\n".repeat(5_000)));
  const io = captureIO();
  assert.equal(await main(["check", "--config", file], io), 1);
  const lines = io.err().trim().split("\n");
  assert.equal(lines.length, 101);
  // File order: the two unused identities' warnings, then one error per list item.
  assert.match(lines[0]!, /identities\.app: warning: identity "app" is not used by any route$/);
  assert.match(lines[2]!, /routes\.yaml:\d+:5 routes\[0\]: expected a map \(key: value\), got a number$/);
  assert.equal(lines[100], `${file}: … and 4902 more errors (only the first 100 are listed)`);
  assert.doesNotMatch(io.err(), /\n\s+at /);
});

test("check: a rewriteLinks route without listen.publicUrl or publicHosts is a warning on stderr, exit 0", async (t) => {
  const yaml = VALID.replace(
    "    identity: app\n    access:\n",
    "    identity: app\n    rewriteLinks: true\n    access:\n",
  );
  const file = await tempFile(t, "routes.yaml", yaml);
  const io = captureIO();
  assert.equal(await run(["--config", file], io), 0);
  assert.match(
    io.err(),
    /routes\.yaml:\d+:19 routes\[0\]\.rewriteLinks: warning: route \/powerplatform rewrites links but neither listen\.publicUrl nor listen\.publicHosts is set/,
  );

  const withHosts = await tempFile(
    t,
    "routes.yaml",
    `listen: { publicHosts: [proxy.contoso.example] }\n${yaml}`,
  );
  const quiet = captureIO();
  assert.equal(await run(["--config", withHosts], quiet), 0, quiet.err());
  assert.doesNotMatch(quiet.err(), /rewriteLinks/);
});

test("check names on-behalf-of routes; token refuses them, since their tokens need a caller's", async (t) => {
  const yaml = withRoutes(`  - prefix: /me
    service: powerplatform
    identity: app
    onBehalfOf: true
    access:
      jwt: { issuer: https://login.example/t/v2.0, audience: api://web-api, jwksUri: https://login.example/keys }
`);
  const file = await tempFile(t, "routes.yaml", yaml);
  const io = captureIO();
  assert.equal(await run(["--config", file], io), 0);
  assert.match(
    io.out(),
    /^\/me → https:\/\/api\.powerplatform\.com .* identity app \(clientSecret\) on behalf of callers access jwt/,
  );
  const token = captureIO();
  assert.equal(await main(["token", "--route", "/me", "--config", file], token), 1);
  assert.match(token.err(), /\/me acts on behalf of its callers: .* none can be acquired here/);
});

test("check: prints each consumer's routes and rate limit, and each identity's limits", async (t) => {
  const text = `consumers:
  erp-nightly:
    apiKeys: [{ name: k2026, sha256: "${"3".repeat(64)}", expires: 2027-06-30 }]
    rateLimit: { requests: 600, per: 1m, burst: 50 }
  reporting:
    apiKeys: [{ name: main, sha256: "${"4".repeat(64)}" }]
${withRoutes(`  - prefix: /powerplatform
    service: powerplatform
    identity: app
    access: { consumers: [erp-nightly, reporting] }
    rateLimit: { requests: 100, per: 1s }
    retryThrottled: { maxWaitMs: 30000, attempts: 3 }
  - prefix: /powerapps
    service: powerapps
    identity: app
    access: { consumers: [reporting] }
`).replace(
  "    clientSecret: secret\n",
  "    clientSecret: secret\n    limits: { concurrent: 52, requests: 6000, per: 5m, maxWaitMs: 30000 }\n",
)}`;
  const file = await tempFile(t, "routes.yaml", text);
  const io = captureIO();
  assert.equal(await run(["--config", file], io), 0, io.err());
  const lines = io.out().trim().split("\n");
  assert.match(lines[0]!, /access consumers\[erp-nightly, reporting\]$/);
  assert.deepEqual(lines.slice(2), [
    "consumer erp-nightly (1 keys) routes /powerplatform rate limit 600 per 60 s (burst 50) per route",
    "consumer reporting (1 keys) routes /powerplatform, /powerapps",
    "identity app limits 52 concurrent, 6000 per 300 s, waits up to 30000 ms",
  ]);
});

test("check: an unknown consumer in access and identity limits missing per are errors", async (t) => {
  const text = withRoutes(`  - prefix: /powerplatform
    service: powerplatform
    identity: app
    access: { consumers: [nobody] }
`).replace("    clientSecret: secret\n", "    clientSecret: secret\n    limits: { requests: 6000 }\n");
  const file = await tempFile(t, "routes.yaml", text);
  const io = captureIO();
  assert.equal(await run(["--config", file], io), 1);
  assert.match(io.err(), /routes\[0\]\.access\.consumers\[0\]: unknown consumer "nobody"/);
  assert.match(io.err(), /identities\.app\.limits: requests and per go together/);
});
