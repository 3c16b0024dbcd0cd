// The limits of a running proxy: one IdentityGate per identity and one set of caller buckets per route
// prefix, both kept across reloads (a reload must not hand every caller a fresh budget), and per route
// the view the request path uses.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { IdentityLimits, RateLimitConfig, RetryThrottledConfig, RouteConfig } from "../config/types.ts";
import { CallerBuckets, type CallerBudget } from "./caller-limits.ts";
import { type GateSnapshot, IdentityGate, type Ticket } from "./identity-gate.ts";

export interface LimitsOptions {
  now: () => number;
  /** A request waited `seconds` for room under `identity`'s limits. */
  onWaited?: (identity: string, seconds: number) => void;
}

export class Limits {
  private readonly gates = new Map<string, IdentityGate>();
  private readonly buckets = new Map<string, CallerBuckets>();
  private readonly now: () => number;
  private readonly onWaited: (identity: string, seconds: number) => void;

  constructor(options: LimitsOptions) {
    this.now = options.now;
    this.onWaited = options.onWaited ?? (() => {});
  }

  /** Applies a config's identity limits; gates of identities no longer configured are kept while busy. */
  configure(identities: Record<string, { limits?: IdentityLimits }>): void {
    for (const [name, gate] of this.gates) gate.configure(identities[name]?.limits);
    for (const [name, identity] of Object.entries(identities)) this.gate(name, identity.limits);
  }

  /** The view of the limits one route's requests use. */
  forRoute(route: RouteConfig, identityLimits: IdentityLimits | undefined): RouteLimits {
    const gate = this.gate(route.identity, identityLimits);
    const limited = route.rateLimit !== undefined || route.consumerRateLimits !== undefined;
    let callers: CallerBuckets | undefined;
    if (limited) {
      callers = this.buckets.get(route.prefix);
      if (callers === undefined) {
        callers = new CallerBuckets(this.now);
        this.buckets.set(route.prefix, callers);
      }
    }
    return new RouteLimits(route, gate, callers, this.now);
  }

  identities(): GateSnapshot[] {
    return [...this.gates.values()].map((g) => g.snapshot());
  }

  /** Callers with a spent (not full) budget, by route prefix. */
  callers(): Array<{ route: string } & CallerBudget> {
    return [...this.buckets].flatMap(([route, b]) => b.budgets().map((budget) => ({ route, ...budget })));
  }

  close(): void {
    for (const gate of this.gates.values()) gate.close();
  }

  private gate(identity: string, limits: IdentityLimits | undefined): IdentityGate {
    let gate = this.gates.get(identity);
    if (gate === undefined) {
      gate = new IdentityGate(identity, limits, this.now, (s) => this.onWaited(identity, s));
      this.gates.set(identity, gate);
    }
    return gate;
  }
}

/** One route's limits, compiled with the route. */
export class RouteLimits {
  readonly gate: IdentityGate;
  /** Pauses are per upstream host: another host of the same identity is not held up. */
  readonly host: string;
  readonly retryThrottled: RetryThrottledConfig | undefined;
  /** Set only when some caller of the route has a rate limit, so others pay nothing. */
  readonly callers: CallerBuckets | undefined;
  private readonly defaultLimit: RateLimitConfig | undefined;
  private readonly consumerLimits: Record<string, RateLimitConfig> | undefined;
  /** The limits' clock (ms), for `since` in afterThrottled. */
  readonly now: () => number;

  constructor(route: RouteConfig, gate: IdentityGate, callers: CallerBuckets | undefined, now: () => number) {
    this.gate = gate;
    this.host = new URL(route.upstream).host;
    this.retryThrottled = route.retryThrottled;
    this.callers = callers;
    this.defaultLimit = route.rateLimit;
    this.consumerLimits = route.consumerRateLimits;
    this.now = now;
  }

  /**
   * Takes one request from the caller's budget, or throws a LimitRefusal. The caller is its consumer
   * (or API key) name, else its JWT principal, else its client IP.
   */
  chargeCaller(consumer: string | undefined, principal: string | undefined, clientIp: string): void {
    const callers = this.callers;
    if (callers === undefined) return;
    const own = consumer === undefined ? undefined : this.consumerLimits?.[consumer];
    const limit = own ?? this.defaultLimit;
    if (limit === undefined) return;
    const caller = consumer ?? (principal?.startsWith("jwt:") ? principal : `ip:${clientIp}`);
    callers.take(caller, limit);
  }

  /** Room for one upstream attempt (see IdentityGate.enter). */
  enter(res: ServerResponse, maxWaitMs?: number): Ticket | Promise<Ticket> {
    return this.gate.enter(this.host, res, maxWaitMs);
  }

  /**
   * After an upstream 429, or 503 with Retry-After: pauses the identity for this host, and tells
   * whether to replay (retryThrottled, a replayable request, attempts and wait budget left).
   * `since` is when the first throttled answer came (ms), `replays` how many were made already.
   */
  afterThrottled(
    upstream: IncomingMessage,
    replayable: boolean,
    since: number,
    replays: number,
  ): number | undefined {
    const status = upstream.statusCode;
    const retryAfterMs = parseRetryAfter(upstream.headers["retry-after"], this.now());
    if (retryAfterMs !== undefined) this.gate.pause(this.host, retryAfterMs);
    const rt = this.retryThrottled;
    if (status !== 429 || rt === undefined || !replayable || replays >= rt.attempts) return undefined;
    if (retryAfterMs === undefined) return undefined; // no word on when: the caller decides
    const left = rt.maxWaitMs - (this.now() - since);
    if (this.gate.pausedFor(this.host) > left) return undefined;
    return left;
  }
}

/** Retry-After as delay-seconds or an HTTP-date, in ms from `now`; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const text = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!text) return undefined;
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether an upstream status may carry a service-protection answer (cheap test on every response). */
export function mayBeThrottled(status: number | undefined): boolean {
  return status === 429 || status === 503;
}
