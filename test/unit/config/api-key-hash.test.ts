import assert from "node:assert/strict";
import { test } from "node:test";
import { generateApiKey, parseApiKeyHash, sha256Hex } from "../../../src/config/api-key-hash.ts";

test('sha256Hex is the 64 lowercase hex digits `printf %s "$KEY" | sha256sum` prints', () => {
  assert.equal(sha256Hex("test"), "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
  assert.equal(sha256Hex("some key"), "6e3b0e6bd28267dc94feba47229b4cb749cbd6685ee8286fb8cd82d4dea99790");
});

test("generated keys are 32 random bytes in base64url", () => {
  const a = generateApiKey();
  const b = generateApiKey();
  assert.match(a, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(a, "base64url").length, 32);
  assert.notEqual(a, b);
});

test("parseApiKeyHash accepts 64 lowercase hex with an optional sha256: prefix", () => {
  const hex = "a".repeat(64);
  assert.equal(parseApiKeyHash(hex), hex);
  assert.equal(parseApiKeyHash(`sha256:${hex}`), hex);
  for (const bad of ["A".repeat(64), "a".repeat(63), `sha1:${hex}`, `sha256:${hex}0`, "", `SHA256:${hex}`]) {
    assert.equal(parseApiKeyHash(bad), undefined, bad);
  }
});
