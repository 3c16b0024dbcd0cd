// A reload never takes the running proxy down: whatever loading, parsing, validating or applying the new
// config throws is logged as a rejected reload, and the config in force keeps serving (issue 20 §3).
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigReloader } from "../../src/commands/serve.ts";
import { DEMO_ROUTES_YAML, demoConfig } from "../../src/demo/stack.ts";
import { createLogger } from "../../src/observability/logger.ts";
import { metricValue, startStack } from "../helpers/stack.ts";

test("a reload whose loader throws an unexpected error is rejected and logged; the old config keeps serving", async (t) => {
  const stack = await startStack(t);
  const dir = await mkdtemp(join(tmpdir(), "eap-reload-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, "routes.yaml");
  await writeFile(file, DEMO_ROUTES_YAML);
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({
    level: "info",
    destination: { write: (l: string) => lines.push(JSON.parse(l)) },
  });
  const throwing = async (): Promise<never> => {
    throw new RangeError("Invalid string length");
  };
  const reloader = new ConfigReloader(file, demoConfig(stack.world), {}, stack.proxy, logger, throwing);
  t.after(() => reloader.stop());

  await reloader.reload("SIGHUP"); // resolves: nothing escapes to become an unhandled rejection
  logger.flush();
  const rejected = lines.find((l) => l.msg === "config reload rejected; the previous config keeps serving");
  assert.deepEqual(rejected?.errors, ["Invalid string length"]);
  assert.equal(rejected?.trigger, "SIGHUP");
  const metrics = await stack.metrics();
  assert.equal(metricValue(metrics, "entra_proxy_config_reloads_total", { result: "failure" }), 1);
  assert.match(
    metrics,
    /^entra_proxy_config_last_reload_successful 0$/m,
    "the rejected-reload alert's signal",
  );
  assert.equal((await stack.call("/powerplatform/x")).status, 200, "the old config keeps serving");
});
