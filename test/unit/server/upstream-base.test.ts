import assert from "node:assert/strict";
import { test } from "node:test";
import { ProxyError } from "../../../src/errors.ts";
import { UpstreamBase } from "../../../src/server/route-runtime.ts";

test("paths after the prefix join the upstream's base path, query kept", () => {
  const base = new UpstreamBase(new URL("https://api.example/base/"));
  assert.equal(base.join("/x/y?a=1").href, "https://api.example/base/x/y?a=1");
  assert.equal(base.join("").href, "https://api.example/base");
  assert.equal(new UpstreamBase(new URL("https://api.example")).join("").href, "https://api.example/");
  assert.equal(
    new UpstreamBase(new URL("http://127.0.0.1:8080/")).join("/a").href,
    "http://127.0.0.1:8080/a",
  );
});

test("a joined path never names another host", () => {
  const base = new UpstreamBase(new URL("https://api.example"));
  // "//" after the origin is a path on the same host, not a network-path reference.
  assert.equal(base.join("//evil.example/x").href, "https://api.example//evil.example/x");
  for (const rest of ["@evil.example/x", ".evil.example/x", ":1@evil.example/x"]) {
    assert.throws(
      () => base.join(rest),
      (err: unknown) => err instanceof ProxyError && err.code === "bad_path",
      rest,
    );
  }
});
