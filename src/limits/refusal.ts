// The 429 rate_limited answers of the limits, and the IETF rate-limit headers they carry.
import { ProxyError } from "../errors.ts";

export type LimitKind = "consumer" | "identity" | "upstream_pause";

/** 429 rate_limited, saying which limit refused (for entra_proxy_rate_limited_total). */
export class LimitRefusal extends ProxyError {
  readonly limit: LimitKind;
  constructor(limit: LimitKind, message: string, headers: Record<string, string>) {
    super("rate_limited", message, { headers });
    this.limit = limit;
  }
}

/**
 * IETF draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy names the quota (q requests per w seconds),
 * RateLimit the units remaining (r) and the seconds until the quota has room again (t).
 */
export function rateLimitHeaders(
  limit: { requests: number; perMs: number },
  remaining: number,
  resetSeconds: number,
  policy: string,
): Record<string, string> {
  const w = Math.max(1, Math.round(limit.perMs / 1000));
  return {
    "ratelimit-policy": `"${policy}";q=${limit.requests};w=${w}`,
    ratelimit: `"${policy}";r=${remaining};t=${resetSeconds}`,
  };
}
