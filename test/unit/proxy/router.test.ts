import assert from "node:assert/strict";
import { test } from "node:test";
import { ProxyError } from "../../../src/errors.ts";
import { rewriteUpstreamUrl, withPinnedQuery } from "../../../src/proxy/rewrite.ts";
import { compilePathAllowlist, Router } from "../../../src/proxy/router.ts";

const router = new Router([{ prefix: "/pp" }, { prefix: "/pp/admin" }, { prefix: "/apps" }]);

function code(url: string): string {
  try {
    router.match(url);
    return "ok";
  } catch (err) {
    assert.ok(err instanceof ProxyError);
    return err.code;
  }
}

test("longest segment-bounded prefix wins and the rest keeps its query", () => {
  assert.deepEqual(router.match("/pp/admin/x?a=1"), {
    route: { prefix: "/pp/admin" },
    rest: "/x",
    query: "?a=1",
  });
  assert.deepEqual(router.match("/pp/x"), { route: { prefix: "/pp" }, rest: "/x", query: "" });
  assert.deepEqual(router.match("/pp"), { route: { prefix: "/pp" }, rest: "", query: "" });
  assert.deepEqual(router.match("/pp?x=1"), { route: { prefix: "/pp" }, rest: "", query: "?x=1" });
  assert.equal(code("/ppx"), "route_not_found");
  assert.equal(code("/pp/adminx"), "ok"); // falls back to /pp
  assert.equal(router.match("/pp/adminx").route.prefix, "/pp");
  assert.equal(code("/nothing"), "route_not_found");
});

test("path escapes are refused with bad_path", () => {
  for (const url of [
    "/pp/../x",
    "/pp/./x",
    "/pp/..",
    "/pp/%2e%2e/x",
    "/pp/%2E%2E/x",
    "/pp/.%2e/x",
    "/pp%2f..",
    "/pp/a%2fb",
    "/pp/a%5cb",
    "/pp/a\\b",
    "/pp/a%00b",
    "/pp/%252e%252e/x",
    "/pp/%E0%80%AE", // overlong UTF-8 for "."
    "/pp/%zz",
    "http://evil.example/pp/x",
    "*",
  ]) {
    assert.equal(code(url), "bad_path", url);
  }
  assert.equal(code("/pp/a%20b/c.json"), "ok");
  assert.equal(code("/pp/..x/x..y"), "ok");
});

test("paths allowlist matches the decoded rest of the path", () => {
  const allow = compilePathAllowlist(["/environmentmanagement/**"]);
  assert.ok(allow);
  assert.equal(allow("/environmentmanagement/environments"), true);
  assert.equal(allow("/licensing/x"), false);
  assert.equal(compilePathAllowlist(undefined), undefined);
});

test("upstream URLs in Location are rewritten only when they are under the route's upstream", () => {
  const base = new URL("https://api.powerplatform.com");
  assert.equal(
    rewriteUpstreamUrl("https://api.powerplatform.com/ops/1?api-version=1", base, "https://proxy.example/pp"),
    "https://proxy.example/pp/ops/1?api-version=1",
  );
  assert.equal(
    rewriteUpstreamUrl("https://other.example/ops/1", base, "https://p/pp"),
    "https://other.example/ops/1",
  );
  assert.equal(rewriteUpstreamUrl("/relative", base, "https://p/pp"), "/relative");
  const withPath = new URL("http://127.0.0.1:9/base");
  assert.equal(rewriteUpstreamUrl("http://127.0.0.1:9/base/x", withPath, "http://p/r"), "http://p/r/x");
  assert.equal(
    rewriteUpstreamUrl("http://127.0.0.1:9/other", withPath, "http://p/r"),
    "http://127.0.0.1:9/other",
  );
});

test("pinned query parameters win over the caller's; other caller parameters pass", () => {
  const pinned = [
    ["api-version", "1"],
    ["sp", "/triggers/manual/run"],
  ] as const;
  const out = new URLSearchParams(withPinnedQuery("?api-version=2099&orderId=42&SP=x", pinned));
  assert.deepEqual(
    [...out],
    [
      ["orderId", "42"],
      ["api-version", "1"],
      ["sp", "/triggers/manual/run"],
    ],
  );
  assert.equal(withPinnedQuery("", pinned), "?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun");
  assert.equal(withPinnedQuery("?a=1", []), "?a=1");
});
