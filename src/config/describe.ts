// Short, secret-free descriptions of config pieces for logs, check output and the status page.
import type { AccessConfig } from "./types.ts";

/** "anonymous", or e.g. "apiKeys[2] + cidrs[1]". */
export function describeAccess(access: AccessConfig): string {
  if (access.anonymous) return "anonymous";
  const parts: string[] = [];
  if (access.apiKeys) parts.push(`apiKeys[${access.apiKeys.length}]`);
  if (access.cidrs) parts.push(`cidrs[${access.cidrs.length}]`);
  if (access.jwt) parts.push("jwt");
  return parts.join(" + ");
}
