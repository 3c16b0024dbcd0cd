// Shared bits for the config tests: a valid environment, and where a piece of text sits in a YAML source.
import type { ConfigIssue } from "../../../src/errors.ts";

export const TENANT = "11111111-2222-3333-4444-555555555555";
export const APP_ID = "aaaaaaaa-0000-0000-0000-000000000001";
export const PUBLIC_APP_ID = "aaaaaaaa-0000-0000-0000-000000000002";
export const KEY_HASH = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // sha256("test")

export const ENV: NodeJS.ProcessEnv = {
  TENANT_ID: TENANT,
  CLIENT_ID: APP_ID,
  CLIENT_SECRET: "s3cr3t~value",
  LCS_CLIENT_ID: PUBLIC_APP_ID,
  LCS_USERNAME: "ops@contoso.example",
  LCS_PASSWORD: "pa55word",
  ERP_API_KEY_SHA256: `sha256:${KEY_HASH}`,
};

/**
 * "file:line:col" of the first occurrence of `needle` in `text` (1-based), moved `shift` characters
 * into the needle — e.g. locate(yaml, "identity: erp", 10) is the position of "erp".
 */
export function locate(file: string, text: string, needle: string, shift = 0): string {
  const index = text.indexOf(needle);
  if (index === -1) throw new Error(`"${needle}" is not in the text`);
  const offset = index + shift;
  const before = text.slice(0, offset);
  const line = before.split("\n").length;
  const col = offset - before.lastIndexOf("\n");
  return `${file}:${line}:${col}`;
}

export function errors(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.filter((i) => i.severity === "error");
}

export function warnings(issues: ConfigIssue[]): ConfigIssue[] {
  return issues.filter((i) => i.severity === "warning");
}

/** A minimal valid config with one app identity, one user identity and the given routes block. */
export function withRoutes(routes: string, extra = ""): string {
  return `${extra}identities:
  app:
    tenantId: ${TENANT}
    clientId: ${APP_ID}
    clientSecret: secret
  ops-user:
    tenantId: ${TENANT}
    clientId: ${PUBLIC_APP_ID}
    user: { username: ops@contoso.example, password: pw }
routes:
${routes}`;
}
