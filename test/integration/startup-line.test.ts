// The startup line names the addresses actually bound: with no listen.host the sockets are bound to
// 0.0.0.0, and the line must say so rather than a loopback URL.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DEMO_ROUTES_YAML } from "../../src/demo/stack.ts";
import { startStack } from "../helpers/stack.ts";

test("the listening line names the bound addresses (0.0.0.0 without listen.host)", async (t) => {
  const yaml = DEMO_ROUTES_YAML.replace("  host: 127.0.0.1\n", "");
  assert.notEqual(yaml, DEMO_ROUTES_YAML);
  const stack = await startStack(t, { yaml });
  const line = stack.logs
    .map((l) => JSON.parse(l) as Record<string, string>)
    .find((l) => l.msg === "listening");
  assert.match(line?.proxy ?? "", /^http:\/\/0\.0\.0\.0:\d+$/);
  assert.match(line?.admin ?? "", /^http:\/\/0\.0\.0\.0:\d+$/);
  // The URL handed to this process's own callers still reaches the server.
  assert.match(stack.proxy.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal((await fetch(`${stack.proxy.adminUrl}/healthz`)).status, 200);
});
