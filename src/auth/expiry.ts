// When a cached token expires, when it stops being served, and when it is refreshed ahead
// (design.md "Tokens").
import { validityOf } from "./claims.ts";
import type { AcquiredToken } from "./credentials.ts";

export interface TokenSchedule {
  /** Epoch ms: the token's own `exp`, else the source's expiry (expires_in from before the request). */
  expiresOn: number;
  /** Epoch ms: from here the token counts as expired and is never sent. */
  usableUntil: number;
  /** Epoch ms: from here a background refresh is started. */
  refreshAt: number;
}

const FIVE_MINUTES = 5 * 60_000;
const MAX_SAFETY_MARGIN = 30_000;

/** The safety margin before expiry: min(30 s, 10 % of the lifetime), for clock skew with Microsoft. */
export function safetyMargin(lifetimeMs: number): number {
  return Math.min(MAX_SAFETY_MARGIN, lifetimeMs / 10);
}

/**
 * The schedule of a token requested at `requestedAt` (epoch ms, taken before the request was sent).
 * Refresh: Entra's refresh_in when sent, else when min(5 min, half the lifetime) remains.
 */
export function tokenSchedule(token: AcquiredToken, requestedAt: number): TokenSchedule {
  const claimed = validityOf(token.accessToken);
  const expiresOn = claimed?.expiresOn ?? token.expiresOn;
  const lifetimeMs = Math.max(0, expiresOn - (claimed?.issuedAt ?? requestedAt));
  const usableUntil = expiresOn - safetyMargin(lifetimeMs);
  const refreshAt =
    token.refreshOn !== undefined && token.refreshOn < usableUntil
      ? token.refreshOn
      : expiresOn - Math.min(FIVE_MINUTES, lifetimeMs / 2);
  return { expiresOn, usableUntil, refreshAt };
}
