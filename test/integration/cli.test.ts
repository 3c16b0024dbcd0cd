// The CLI as users run it: `demo` in a child process and its printed curl line; serve's exit codes.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";

const run = promisify(execFile);
const MAIN = new URL("../../src/main.ts", import.meta.url).pathname;

test("demo starts, prints curl lines, and the first one succeeds; Ctrl-C stops it with exit 0", async (t) => {
  const child = spawn(process.execPath, [MAIN, "demo", "--port", "0", "--admin-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LOG_LEVEL: "warn" },
  });
  t.after(() => child.kill("SIGKILL"));
  let out = "";
  child.stdout.setEncoding("utf8");
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`demo did not print curl lines: ${out}`)), 20_000);
    child.stdout.on("data", (chunk: string) => {
      out += chunk;
      if (out.includes("Ctrl-C to stop")) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  const first = out.split("\n").find((l) => l.trim().startsWith("curl "));
  assert.ok(first, out);
  const { stdout } = await run("sh", ["-c", `${first.trim()} -w '\\n%{http_code}'`]);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.at(-1), "200", stdout);
  const echo = JSON.parse(lines.slice(0, -1).join("\n")) as { service: string; token: { aud: string } };
  assert.equal(echo.service, "powerplatform");
  assert.equal(echo.token.aud, "https://api.powerplatform.com");
  // The on-behalf-of line: the API sees the demo user, not the app.
  const obo = out.split("\n").find((l) => l.includes("/me/powerplatform/"));
  assert.ok(obo, out);
  const asUser = await run("sh", ["-c", `${obo.trim()} -w '\\n%{http_code}'`]);
  const userLines = asUser.stdout.trim().split("\n");
  assert.equal(userLines.at(-1), "200", asUser.stdout);
  const userEcho = JSON.parse(userLines.slice(0, -1).join("\n")) as {
    token: { upn?: string; idtyp?: string };
  };
  assert.equal(userEcho.token.upn, "lcs-operator@contoso.example");
  assert.equal(userEcho.token.idtyp, "user");
  // The LCS line uses an operation of Microsoft's Database Movement API (list database backups:
  // GET /databasemovement/v1/databases/project/{projectId}, header x-ms-version: 2017-09-15).
  const lcsLine = out.split("\n").find((l) => l.includes("/lcs/"));
  assert.ok(lcsLine, out);
  const lcs = await run("sh", ["-c", `${lcsLine.trim()} -w '\\n%{http_code}'`]);
  const lcsLines = lcs.stdout.trim().split("\n");
  assert.equal(lcsLines.at(-1), "200", lcs.stdout);
  const lcsEcho = JSON.parse(lcsLines.slice(0, -1).join("\n")) as {
    service: string;
    path: string;
    headers: Record<string, string>;
  };
  assert.equal(lcsEcho.service, "lcs");
  assert.match(lcsEcho.path, /^\/databasemovement\/v1\/databases\/project\/\d+$/);
  assert.equal(lcsEcho.headers["x-ms-version"], "2017-09-15");
  child.kill("SIGINT");
  const [code] = await once(child, "exit");
  assert.equal(code, 0);
});

test("demo at the default level logs one request line per call", async (t) => {
  const env = { ...process.env };
  delete env.LOG_LEVEL;
  const child = spawn(process.execPath, [MAIN, "demo", "--port", "0", "--admin-port", "0"], {
    stdio: ["ignore", "pipe", "pipe"],
    env,
  });
  t.after(() => child.kill("SIGKILL"));
  const stderr = collect(child.stderr);
  const out = await collect(child.stdout).until((text) => text.includes("Ctrl-C to stop"));
  const first = out.split("\n").find((l) => l.trim().startsWith("curl "));
  assert.ok(first, out);
  await run("sh", ["-c", first.trim()]);
  const err = await stderr.until((text) => text.includes('"msg":"request"'));
  const line = JSON.parse(err.split("\n").find((l) => l.includes('"msg":"request"'))!) as Record<
    string,
    unknown
  >;
  assert.equal(line.level, "info");
  assert.equal(line.route, "/powerplatform");
  child.kill("SIGINT");
  await once(child, "exit");
});

/** Accumulates a stream's text; `until` resolves on the first chunk after which `done` holds (20 s at most). */
function collect(stream: NodeJS.ReadableStream): { until(done: (text: string) => boolean): Promise<string> } {
  let text = "";
  stream.setEncoding("utf8");
  stream.on("data", (chunk: string) => {
    text += chunk;
  });
  return {
    until: (done) =>
      new Promise((resolve, reject) => {
        if (done(text)) return resolve(text);
        const timer = setTimeout(() => reject(new Error(`timed out; got: ${text}`)), 20_000);
        const check = () => {
          if (!done(text)) return;
          clearTimeout(timer);
          stream.off("data", check);
          resolve(text);
        };
        stream.on("data", check);
      }),
  };
}

test("serve exits 1 with file:line errors for a bad config, and for an unreadable credential file", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-cli-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(file, "listen:\n  port: eighty\nroutes: []\nbogus: 1\n");
  const bad = await run(process.execPath, [MAIN, "serve", "--config", file]).catch((e) => e);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /routes\.yaml:2:9 listen\.port/);
  assert.match(bad.stderr, /routes\.yaml:4:1 bogus/);
  // Valid YAML, but the secret file it names does not exist: refused before listening.
  await writeFile(
    file,
    `identities:
  app:
    tenantId: contoso.onmicrosoft.com
    clientId: 00000000-0000-0000-0000-0000000000aa
    clientSecretFile: ${join(dir, "missing-secret")}
routes:
  - { prefix: /pp, service: powerplatform, identity: app, access: { anonymous: true } }
`,
  );
  const missing = await run(process.execPath, [MAIN, "serve", "--config", file]).catch((e) => e);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /identity "app": cannot read clientSecretFile .*missing-secret: ENOENT/);
  const checked = await run(process.execPath, [MAIN, "check", "--config", file]).catch((e) => e);
  assert.equal(checked.code, 1);
  assert.match(checked.stderr, /cannot read clientSecretFile/);
  const unknown = await run(process.execPath, [MAIN, "serve", "--bogus-flag"]).catch((e) => e);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /bogus-flag/);
  const help = await run(process.execPath, [MAIN, "serve", "--help"]);
  assert.match(help.stdout, /Usage: entra-auth-proxy serve/);
});
