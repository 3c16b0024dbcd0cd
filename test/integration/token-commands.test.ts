// check --online and token --route against the emulator: claims summaries and verdicts, never a token
// unless --raw asks for it.
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { run as check } from "../../src/commands/check.ts";
import { run as token } from "../../src/commands/token.ts";
import {
  DEMO_APP,
  DEMO_ROUTES_YAML,
  DEMO_USER,
  type DemoWorld,
  startDemoWorld,
} from "../../src/demo/stack.ts";
import { captureIO } from "../helpers/io.ts";
import { trustedPki } from "../helpers/pki.ts";

const JWT = /eyJ[\w-]+\.[\w-]+\.[\w-]+/;

async function world(t: {
  after(fn: () => Promise<void>): void;
}): Promise<{ world: DemoWorld; file: string }> {
  const w = await startDemoWorld({ pki: await trustedPki() });
  const dir = await mkdtemp(join(tmpdir(), "eap-online-"));
  t.after(async () => {
    await w.close();
    await rm(dir, { recursive: true, force: true });
  });
  const file = join(dir, "routes.yaml");
  await writeFile(file, DEMO_ROUTES_YAML);
  return { world: w, file };
}

test("check --online: one token per identity and scope, a claims summary and verdict per route", async (t) => {
  const { world: w, file } = await world(t);
  const io = captureIO(w.env);
  assert.equal(await check(["--config", file, "--online"], io), 0, io.err());
  const out = io.out();
  assert.match(
    out,
    /\/powerplatform \(identity platform-app, scope https:\/\/api\.powerplatform\.com\/\.default\)/,
  );
  assert.match(out, /aud https:\/\/api\.powerplatform\.com · tid [0-9a-f-]{36} · appid /);
  assert.match(out, /ok: aud is https:\/\/service\.powerapps\.com\/ — matches route \/powerapps/);
  assert.match(out, new RegExp(`upn ${DEMO_USER.username}.*scp "user_impersonation"`));
  assert.match(out, /roles \[Environment\.Read\]/);
  assert.doesNotMatch(out + io.err(), JWT, "never prints a token");
  assert.ok(!(out + io.err()).includes(w.secrets.clientSecret));
  // Four routes with four different (identity, scope) pairs: one token request each.
  assert.equal(w.emulator.tokenRequests.filter((r) => r.outcome === "success").length, 4);
});

test("check --online with a wrong secret: FAILED with the AADSTS code and hint, exit 2", async (t) => {
  const { world: w, file } = await world(t);
  const io = captureIO({ ...w.env, CLIENT_SECRET: "wrong-secret" });
  assert.equal(await check(["--config", file, "--online"], io), 2);
  assert.match(io.out(), /FAILED: AADSTS7000215/);
  assert.match(io.out(), /hint: Invalid client secret/);
  assert.ok(!io.out().includes("wrong-secret"));
});

test("token --route prints the claims summary; --raw prints the token with a warning", async (t) => {
  const { world: w, file } = await world(t);
  const summary = captureIO(w.env);
  assert.equal(await token(["--config", file, "--route", "/powerplatform/"], summary), 0, summary.err());
  assert.match(summary.out(), new RegExp(`appid ${DEMO_APP.clientId}`));
  assert.doesNotMatch(summary.out(), JWT);
  const raw = captureIO(w.env);
  assert.equal(await token(["--config", file, "--route", "/lcs", "--raw"], raw), 0);
  assert.match(raw.out().trim(), /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(raw.err(), /warning/);
  const unknown = captureIO(w.env);
  assert.equal(await token(["--config", file, "--route", "/nope"], unknown), 1);
  assert.match(unknown.err(), /no route with prefix \/nope/);
});
