import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { test } from "node:test";
import { compileAccessCheck } from "../../../src/access/check.ts";

const sha256 = (key: string) => createHash("sha256").update(key).digest("hex");

function checkFor(keys: Array<{ name: string; key: string; expires?: Date }>, now: () => number = Date.now) {
  const check = compileAccessCheck(
    {
      anonymous: false,
      apiKeys: keys.map((k) => ({ name: k.name, sha256: sha256(k.key), expires: k.expires })),
    },
    now,
  );
  return (headers: IncomingHttpHeaders) => {
    const decision = check(headers, "127.0.0.1");
    assert.ok(!(decision instanceof Promise));
    return decision.allowed ? decision.principal : decision.reason;
  };
}

test("API keys: each key maps to its principal on every request; near misses never pass", () => {
  const long = "k".repeat(300);
  const check = checkFor([
    { name: "erp", key: "erp-0123456789abcdef" },
    { name: "unicode", key: "clé-ключ-鍵-0001" },
    { name: "long", key: long },
  ]);
  for (let round = 0; round < 3; round++) {
    assert.equal(check({ "x-api-key": "erp-0123456789abcdef" }), "key:erp");
    assert.equal(check({ "x-api-key": "clé-ключ-鍵-0001" }), "key:unicode");
    assert.equal(check({ "x-api-key": long }), "key:long");
    const basic = `Basic ${Buffer.from("anyone:erp-0123456789abcdef").toString("base64")}`;
    assert.equal(check({ authorization: basic }), "key:erp");
    for (const wrong of [
      "erp-0123456789abcdeF",
      "erp-0123456789abcde",
      "erp-0123456789abcdef0",
      "erp-0123456789abcdef\u0000",
      "clé-ключ-鍵-000",
      `${long}k`,
      long.slice(1),
    ]) {
      assert.equal(check({ "x-api-key": wrong }), "invalid_key", JSON.stringify(wrong));
    }
  }
  assert.equal(check({}), "no_credential");
});

test("API keys: an expiry is enforced after the key has been recognised", () => {
  let now = Date.parse("2027-06-29T12:00:00Z");
  const check = checkFor(
    [{ name: "erp", key: "erp-key-1", expires: new Date("2027-06-30T00:00:00Z") }],
    () => now,
  );
  assert.equal(check({ "x-api-key": "erp-key-1" }), "key:erp");
  assert.equal(check({ "x-api-key": "erp-key-1" }), "key:erp");
  now = Date.parse("2027-06-30T00:00:00Z");
  assert.equal(check({ "x-api-key": "erp-key-1" }), "expired_key");
});
