// Per-caller token buckets on one route (design.md "Consumers and Microsoft's service limits"): a caller
// over its budget is refused at once, before anything is read or sent, and other callers are unaffected.
import type { RateLimitConfig } from "../config/types.ts";
import { LimitRefusal, rateLimitHeaders } from "./refusal.ts";

/** Buckets kept per route before full (idle) ones are forgotten: callers by IP or JWT are unbounded. */
const MAX_IDLE_BUCKETS = 10_000;

/** A token bucket: starts full (`burst`), refills continuously at `requests` per `perMs`. */
export class TokenBucket {
  tokens: number;
  updatedAt: number;
  readonly limit: RateLimitConfig;

  constructor(limit: RateLimitConfig, now: number) {
    this.limit = limit;
    this.tokens = limit.burst;
    this.updatedAt = now;
  }

  private refill(now: number): void {
    const { burst, requests, perMs } = this.limit;
    if (now > this.updatedAt) {
      this.tokens = Math.min(burst, this.tokens + ((now - this.updatedAt) * requests) / perMs);
      this.updatedAt = now;
    }
  }

  /** Takes one token; returns 0, or the ms until one is available (nothing taken). */
  take(now: number): number {
    this.refill(now);
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.tokens) * this.limit.perMs) / this.limit.requests);
  }

  /** Whole tokens left now. */
  remaining(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  isFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.limit.burst;
  }
}

export interface CallerBudget {
  caller: string;
  remaining: number;
  burst: number;
  requests: number;
  perSeconds: number;
}

/** The buckets of one route prefix, kept across reloads (the limits themselves come from each config). */
export class CallerBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly now: () => number;

  constructor(now: () => number) {
    this.now = now;
  }

  /**
   * Takes one request from `caller`'s budget, or throws 429 rate_limited with Retry-After and the IETF
   * RateLimit-Policy / RateLimit headers.
   */
  take(caller: string, limit: RateLimitConfig): void {
    const now = this.now();
    let bucket = this.buckets.get(caller);
    if (bucket === undefined || !sameLimit(bucket.limit, limit)) {
      // A new caller, or a reload changed its limit: start from the new limit's full bucket (a reload
      // that keeps the limit keeps the budget, so it hands no caller a fresh one).
      if (bucket === undefined && this.buckets.size >= MAX_IDLE_BUCKETS) this.forgetIdle(now);
      bucket = new TokenBucket(limit, now);
      this.buckets.set(caller, bucket);
    }
    const waitMs = bucket.take(now);
    if (waitMs === 0) return;
    const retryAfter = Math.max(1, Math.ceil(waitMs / 1000));
    throw new LimitRefusal("consumer", "this caller is over its request budget on this route", {
      "retry-after": String(retryAfter),
      ...rateLimitHeaders(limit, 0, retryAfter, "caller"),
    });
  }

  /** Budgets of the callers seen recently (a full bucket is as good as none, so it is left out). */
  budgets(): CallerBudget[] {
    const now = this.now();
    const out: CallerBudget[] = [];
    for (const [caller, bucket] of this.buckets) {
      if (bucket.isFull(now)) continue;
      out.push({
        caller,
        remaining: bucket.remaining(now),
        burst: bucket.limit.burst,
        requests: bucket.limit.requests,
        perSeconds: bucket.limit.perMs / 1000,
      });
    }
    return out;
  }

  /** A full bucket carries no state, so forgetting it changes nothing for its caller. */
  private forgetIdle(now: number): void {
    for (const [caller, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(caller);
    if (this.buckets.size >= MAX_IDLE_BUCKETS) {
      // Still too many busy callers (e.g. many client IPs): drop the oldest to bound memory.
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
  }
}

function sameLimit(a: RateLimitConfig, b: RateLimitConfig): boolean {
  return a === b || (a.requests === b.requests && a.perMs === b.perMs && a.burst === b.burst);
}
