// design.md "Admin port": /readyz is about this process. One broken identity (here a wrong LCS password)
// answers 503 token_unavailable on its own routes while every other route keeps serving and the pod
// stays in the Service; the details are in /readyz?verbose, /status.json and the metrics.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

interface VerboseReadiness {
  ready: boolean;
  reason: string;
  mode: string;
  identities: Array<{ identity: string; ready: boolean; reason: string }>;
  routes: Array<{ prefix: string; identity: string; ready: boolean }>;
}

/** Polls /readyz until warm-up has finished (it answers 503 only while starting). */
async function readyzOnceWarm(adminUrl: string, path = "/readyz"): Promise<Response> {
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${adminUrl}${path}`);
    const body = (await res.clone().json()) as { reason: string };
    if (!body.reason.startsWith("starting")) return res;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error("warm-up never finished");
}

test("one wrong LCS password: /readyz stays 200, /lcs answers 503 token_unavailable, other routes serve", async (t) => {
  const wrongPassword = "Wrong-LCS-Passw0rd-never-shown";
  const stack = await startStack(t, { env: { LCS_PASSWORD: wrongPassword } });
  const ready = await readyzOnceWarm(stack.proxy.adminUrl);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), {
    ready: true,
    reason: "serving; some identities have no valid token",
  });

  const pp = await stack.call("/powerplatform/environments");
  await pp.arrayBuffer();
  assert.equal(pp.status, 200, "routes of healthy identities keep serving");
  const lcs = await stack.call("/lcs/databasemovement/v1/databases/project/1");
  assert.equal(lcs.status, 503);
  assert.equal(((await lcs.json()) as { code: string }).code, "token_unavailable");

  const verbose = await fetch(`${stack.proxy.adminUrl}/readyz?verbose`);
  assert.equal(verbose.status, 200, "?verbose reports details without changing the status");
  const v = (await verbose.json()) as VerboseReadiness;
  t.diagnostic(`GET /readyz?verbose → ${verbose.status} ${JSON.stringify(v)}`);
  assert.equal(v.mode, "process");
  const lcsUser = v.identities.find((i) => i.identity === "lcs-user");
  assert.equal(lcsUser?.ready, false);
  assert.match(lcsUser?.reason ?? "", /^AADSTS50126: (?!AADSTS50126)/, "the code once");
  assert.equal(v.identities.find((i) => i.identity === "platform-app")?.ready, true);
  assert.deepEqual(
    v.routes.map((r) => [r.prefix, r.ready]),
    [
      ["/powerplatform", true],
      ["/powerapps", true],
      ["/flows/order-created", true],
      ["/lcs", false],
    ],
  );

  const status = (await (await fetch(`${stack.proxy.adminUrl}/status.json`)).json()) as {
    ready: boolean;
    tokens: Array<{ identity: string; valid: boolean }>;
  };
  assert.equal(status.ready, true);
  assert.equal(status.tokens.find((tk) => tk.identity === "lcs-user")?.valid, false);
  const metrics = await stack.metrics();
  assert.match(metrics, /entra_proxy_token_refreshes_total\{identity="lcs-user",[^}]*result="failure"/);
  const everything = `${JSON.stringify(v)}${JSON.stringify(status)}${metrics}${stack.logs.join("\n")}`;
  assert.ok(!everything.includes(wrongPassword), "the password appears nowhere");
});

test("health: { readiness: tokens } opts into the strict form: 503 while an identity has no valid token", async (t) => {
  const yaml = DEMO_ROUTES_YAML.replace("warmup: true", "warmup: true\nhealth: { readiness: tokens }");
  const stack = await startStack(t, { yaml, env: { LCS_PASSWORD: "wrong" } });
  const ready = await readyzOnceWarm(stack.proxy.adminUrl);
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { ready: false, reason: "no valid token for lcs-user" });
  const verbose = (await (await fetch(`${stack.proxy.adminUrl}/readyz?verbose`)).json()) as VerboseReadiness;
  assert.equal(verbose.mode, "tokens");
});

test('/readyz answers 200 "serving" once warm-up has finished with healthy identities', async (t) => {
  const stack = await startStack(t);
  const ready = await readyzOnceWarm(stack.proxy.adminUrl);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { ready: true, reason: "serving" });
});
