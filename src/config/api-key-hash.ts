// How API keys are stored in routes.yaml: only as the SHA-256 of the key, written as 64 lowercase hex
// digits, optionally prefixed "sha256:" — the same digits `printf %s "$KEY" | sha256sum` prints.
import { createHash, randomBytes } from "node:crypto";

export const SHA256_PREFIX = "sha256:";

/** 64 lowercase hex digits, optionally prefixed "sha256:". */
export const API_KEY_HASH_PATTERN = /^(?:sha256:)?[0-9a-f]{64}$/;

/** SHA-256 of the key's UTF-8 bytes as 64 lowercase hex digits. */
export function sha256Hex(key: string): string {
  return createHash("sha256").update(key, "utf8").digest("hex");
}

/** A new API key: 32 random bytes, base64url (43 characters, safe in headers and URLs). */
export function generateApiKey(): string {
  return randomBytes(32).toString("base64url");
}

/** The 64 hex digits of a routes.yaml `sha256:` value, or undefined when it is not one. */
export function parseApiKeyHash(text: string): string | undefined {
  if (!API_KEY_HASH_PATTERN.test(text)) return undefined;
  return text.startsWith(SHA256_PREFIX) ? text.slice(SHA256_PREFIX.length) : text;
}
