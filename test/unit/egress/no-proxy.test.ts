import assert from "node:assert/strict";
import { test } from "node:test";
import { compileNoProxy } from "../../../src/egress/no-proxy.ts";

test("noProxy: empty bypasses nothing, * bypasses everything", () => {
  assert.equal(compileNoProxy([])("localhost", 443), false);
  assert.equal(compileNoProxy([" ", ""])("127.0.0.1", 443), false);
  assert.equal(compileNoProxy(["*"])("login.microsoftonline.com", 443), true);
});

test("noProxy names (curl): a name and a leading-dot name match the host and its subdomains, nothing else", () => {
  for (const entry of ["example.com", ".example.com", "EXAMPLE.com."]) {
    const bypass = compileNoProxy([entry]);
    assert.equal(bypass("example.com", 443), true, entry);
    assert.equal(bypass("api.Example.com", 443), true, entry);
    assert.equal(bypass("a.b.example.com.", 443), true, entry);
    assert.equal(bypass("notexample.com", 443), false, entry);
    assert.equal(bypass("example.com.evil", 443), false, entry);
  }
});

test("noProxy names (Node): *.name matches subdomains only; name:port only that port", () => {
  const wildcard = compileNoProxy(["*.example.com"]);
  assert.equal(wildcard("api.example.com", 443), true);
  assert.equal(wildcard("example.com", 443), false);
  const withPort = compileNoProxy(["internal.example:8443"]);
  assert.equal(withPort("internal.example", 8443), true);
  assert.equal(withPort("api.internal.example", 8443), true);
  assert.equal(withPort("internal.example", 443), false);
});

test("noProxy addresses: single IPv4/IPv6 (with or without brackets), CIDR blocks (curl), IPv4 ranges (Node)", () => {
  const bypass = compileNoProxy([
    "10.0.0.0/8",
    "192.168.1.10",
    "::1",
    "[fd00::5]",
    "2001:db8::/32",
    "172.16.0.1-172.16.0.9",
  ]);
  assert.equal(bypass("10.20.30.40", 443), true);
  assert.equal(bypass("11.0.0.1", 443), false);
  assert.equal(bypass("192.168.1.10", 443), true);
  assert.equal(bypass("192.168.1.11", 443), false);
  assert.equal(bypass("[::1]", 443), true);
  assert.equal(bypass("fd00::5", 443), true);
  assert.equal(bypass("[2001:db8:1::7]", 443), true);
  assert.equal(bypass("2001:db9::1", 443), false);
  assert.equal(bypass("172.16.0.5", 443), true);
  assert.equal(bypass("172.16.0.10", 443), false);
  // No DNS: a name never matches an address block.
  assert.equal(bypass("localhost", 443), false);
});

test("noProxy: a malformed CIDR or range matches nothing instead of everything", () => {
  const bypass = compileNoProxy(["10.0.0.0/99", "10.0.0.9-10.0.0.1"]);
  assert.equal(bypass("10.0.0.5", 443), false);
});
