// Short, secret-free descriptions of config pieces for logs, check output and the status page.
import type { AccessConfig } from "./types.ts";

/** "anonymous", or e.g. "apiKeys[2] + consumers[erp-nightly, reporting] + cidrs[1]". */
export function describeAccess(access: AccessConfig): string {
  if (access.anonymous) return "anonymous";
  const parts: string[] = [];
  const ownKeys = access.apiKeys?.filter((k) => k.consumer === undefined).length ?? 0;
  if (ownKeys > 0) parts.push(`apiKeys[${ownKeys}]`);
  if (access.consumers) parts.push(`consumers[${access.consumers.join(", ")}]`);
  if (access.cidrs) parts.push(`cidrs[${access.cidrs.length}]`);
  if (access.jwt) parts.push("jwt");
  return parts.join(" + ");
}
