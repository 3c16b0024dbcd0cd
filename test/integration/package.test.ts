// What `npm pack` ships is compiled JS (Node will not strip types under node_modules): install the
// tarball into an empty project and run the CLI from there.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const REPO = new URL("../..", import.meta.url).pathname;

test("npm pack → npm install → the installed CLI runs compiled JS", { timeout: 240_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-pack-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: REPO });
  const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  assert.ok(info);
  const paths = info.files.map((f) => f.path);
  assert.ok(paths.includes("dist/main.js") && paths.includes("bin/entra-auth-proxy.js"));
  assert.deepEqual(
    paths.filter((p) => p.endsWith(".ts")),
    [],
    "no TypeScript sources in the package",
  );
  assert.ok(!paths.some((p) => p.startsWith("test/") || p.startsWith("src/")));

  const app = join(dir, "app");
  await run("mkdir", ["-p", app]);
  await writeFile(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true }));
  await run("npm", ["install", "--omit=dev", "--no-audit", "--no-fund", join(dir, info.filename)], {
    cwd: app,
  });
  const installed = join(app, "node_modules", "entra-auth-proxy");
  assert.ok((await readdir(join(installed, "dist"))).includes("main.js"));
  const bin = join(installed, "bin", "entra-auth-proxy.js");

  const help = await run(process.execPath, [bin, "--help"], { cwd: app });
  assert.match(help.stdout, /Usage: entra-auth-proxy <command>/);
  const key = await run(process.execPath, [bin, "hash-key"], { cwd: app });
  assert.match(key.stdout, /sha256:[0-9a-f]{64}/);
  const env = {
    ...process.env,
    TENANT_ID: "contoso.onmicrosoft.com",
    CLIENT_ID: "00000000-0000-0000-0000-0000000000aa",
    CLIENT_SECRET: "placeholder",
    LCS_CLIENT_ID: "00000000-0000-0000-0000-0000000000bb",
    LCS_USERNAME: "ops@contoso.onmicrosoft.com",
    LCS_PASSWORD: "placeholder",
    ERP_API_KEY_SHA256: "a".repeat(64),
  };
  const check = await run(process.execPath, [bin, "check", "--config", join(installed, "routes.yaml")], {
    cwd: app,
    env,
  });
  assert.match(check.stdout, /\/powerplatform → https:\/\/api\.powerplatform\.com/);
});
