// Token cache per (identity, scope): single-flight acquisition, refresh ahead of expiry in the
// background, back-off with jitter on failure, and never an expired token (design.md "Tokens").
import { ProxyError } from "../errors.ts";
import type { AcquisitionFailure } from "./aadsts.ts";
import { TokenAcquisitionError, type TokenSource } from "./credentials.ts";
import { type TokenSchedule, tokenSchedule } from "./expiry.ts";

export type RefreshTrigger = "initial" | "proactive" | "upstream_401" | "on_behalf_of";

export interface AcquisitionEvent {
  identity: string;
  scope: string;
  trigger: RefreshTrigger;
  result: "success" | "failure";
  /** AADSTS code label ("AADSTS7000215"), "network", … or "" on success. */
  error: string;
  durationSeconds: number;
  /** Epoch ms, on success. */
  expiresOn?: number;
  failure?: AcquisitionFailure;
}

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export interface TokenProviderOptions {
  identity: string;
  scope: string;
  source: TokenSource;
  now?: () => number;
  random?: () => number;
  backoff?: BackoffPolicy;
  /** Longest a caller waits for an acquisition before getting token_unavailable. */
  acquireTimeoutMs?: number;
  /** A token obtained by a 401 renewal is not renewed again on a 401 for this long. */
  rejectionRenewalIntervalMs?: number;
  onAcquisition?: (event: AcquisitionEvent) => void;
  /** Reports every acquisition with this trigger (on-behalf-of exchanges are counted as such). */
  reportTrigger?: RefreshTrigger;
}

/** What the request path needs of a token cache: the route's, or one caller's on-behalf-of tokens. */
export interface BearerTokens {
  peek(): string | undefined;
  get(): Promise<string>;
  renewAfterRejection(rejectedToken: string): Promise<string>;
}

export interface TokenState {
  identity: string;
  scope: string;
  /** Epoch ms of the cached token's expiry (its `exp`), if any; it is served until a margin before. */
  expiresOn?: number;
  /** Epoch ms when it will be refreshed. */
  refreshAt?: number;
  valid: boolean;
  lastResult?: "success" | "failure";
  lastAttemptAt?: number;
  lastError?: { error: string; message: string; hint: string };
  consecutiveFailures: number;
  nextAttemptAt?: number;
}

interface CachedToken extends TokenSchedule {
  accessToken: string;
  /** Epoch ms when the request for it was started. */
  requestedAt: number;
  /** What caused the acquisition: a token renewed because of a 401 is not renewed again for a while. */
  trigger: RefreshTrigger;
}

const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 60_000 };

export class TokenProvider implements BearerTokens {
  readonly identity: string;
  readonly scope: string;
  private readonly source: TokenSource;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly backoff: BackoffPolicy;
  private readonly acquireTimeoutMs: number;
  private readonly onAcquisition: (event: AcquisitionEvent) => void;
  private readonly reportTrigger: RefreshTrigger | undefined;

  private cached: CachedToken | undefined;
  private inFlight: Promise<CachedToken> | undefined;
  private consecutiveFailures = 0;
  private nextAttemptAt = 0;
  private lastFailure: AcquisitionFailure | undefined;
  private lastResult: "success" | "failure" | undefined;
  private lastAttemptAt: number | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly rejectionRenewalIntervalMs: number;

  constructor(options: TokenProviderOptions) {
    this.identity = options.identity;
    this.scope = options.scope;
    this.source = options.source;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.backoff = options.backoff ?? DEFAULT_BACKOFF;
    this.acquireTimeoutMs = options.acquireTimeoutMs ?? 15_000;
    this.rejectionRenewalIntervalMs = options.rejectionRenewalIntervalMs ?? 30_000;
    this.onAcquisition = options.onAcquisition ?? (() => {});
    this.reportTrigger = options.reportTrigger;
  }

  /**
   * A valid token without waiting, when one is cached; starts a background refresh when the token
   * has reached its refresh time (unless `refreshWhenDue` is false). The hot path calls this first.
   */
  peek(refreshWhenDue = true): string | undefined {
    const cached = this.cached;
    if (!cached) return undefined;
    const now = this.now();
    if (now >= cached.usableUntil) return undefined;
    if (refreshWhenDue && now >= cached.refreshAt) this.refreshInBackground("proactive");
    return cached.accessToken;
  }

  /** A valid token, acquiring one if needed; rejects with ProxyError token_unavailable. */
  async get(): Promise<string> {
    const ready = this.peek();
    if (ready !== undefined) return ready;
    const now = this.now();
    if (!this.inFlight && now < this.nextAttemptAt) throw this.unavailable(now);
    const trigger: RefreshTrigger = this.lastResult === undefined ? "initial" : "proactive";
    try {
      const token = await this.withTimeout(this.acquireSingleFlight(trigger));
      return token.accessToken;
    } catch (err) {
      throw this.callerFacing(err);
    }
  }

  /**
   * The upstream rejected `rejectedToken`: drop it (if it is still the cached one) and acquire a new
   * one, or return the cached token when it is not renewed. Concurrent 401s share one acquisition.
   */
  async renewAfterRejection(rejectedToken: string): Promise<string> {
    const now = this.now();
    const cached = this.cached;
    if (cached && now < cached.usableUntil) {
      if (cached.accessToken !== rejectedToken) return cached.accessToken;
      // A path that always answers 401 must not turn each request into a token request: a token
      // that a 401 renewal obtained a moment ago is kept, and its 401s pass through.
      if (cached.trigger === "upstream_401" && now - cached.requestedAt < this.rejectionRenewalIntervalMs) {
        return cached.accessToken;
      }
    }
    if (cached?.accessToken === rejectedToken) this.cached = undefined;
    if (!this.inFlight && now < this.nextAttemptAt) throw this.unavailable(now);
    try {
      return (await this.withTimeout(this.acquireSingleFlight("upstream_401"))).accessToken;
    } catch (err) {
      throw this.callerFacing(err);
    }
  }

  /** Acquire now (start-up warm-up); resolves either way. */
  async warm(): Promise<boolean> {
    try {
      await this.get();
      return true;
    } catch {
      return false;
    }
  }

  state(): TokenState {
    const now = this.now();
    const state: TokenState = {
      identity: this.identity,
      scope: this.scope,
      valid: this.cached !== undefined && now < this.cached.usableUntil,
      consecutiveFailures: this.consecutiveFailures,
    };
    if (this.cached) {
      state.expiresOn = this.cached.expiresOn;
      state.refreshAt = this.cached.refreshAt;
    }
    if (this.lastResult) state.lastResult = this.lastResult;
    if (this.lastAttemptAt !== undefined) state.lastAttemptAt = this.lastAttemptAt;
    if (this.lastFailure) {
      const { error, message, hint } = this.lastFailure;
      state.lastError = { error, message, hint };
    }
    if (this.nextAttemptAt > now) state.nextAttemptAt = this.nextAttemptAt;
    return state;
  }

  /** Seconds until the cached token's `exp` (negative when expired), or undefined with none. */
  secondsToExpiry(): number | undefined {
    return this.cached ? (this.cached.expiresOn - this.now()) / 1000 : undefined;
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** The error a caller gets for a failed acquisition: the source's own verdict on the caller, else token_unavailable. */
  private callerFacing(err: unknown): ProxyError {
    if (err instanceof ProxyError) return err;
    if (err instanceof TokenAcquisitionError && err.callerError) return err.callerError;
    return this.unavailable(this.now());
  }

  private refreshInBackground(trigger: RefreshTrigger): void {
    if (this.inFlight || this.closed || this.now() < this.nextAttemptAt) return;
    this.acquireSingleFlight(trigger).catch(() => {
      // Recorded in state and metrics; callers keep the still-valid token.
    });
  }

  private acquireSingleFlight(trigger: RefreshTrigger): Promise<CachedToken> {
    this.inFlight ??= this.acquire(trigger).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async acquire(trigger: RefreshTrigger): Promise<CachedToken> {
    const started = this.now();
    const startedHr = performance.now();
    this.lastAttemptAt = started;
    try {
      const token = await this.source.acquire();
      const cached: CachedToken = {
        accessToken: token.accessToken,
        requestedAt: started,
        trigger,
        ...tokenSchedule(token, started),
      };
      if (cached.usableUntil <= this.now()) {
        throw new TokenAcquisitionError({
          error: "expired_token",
          hint: "The identity provider issued a token that has already expired: check the clocks.",
          message: "identity provider returned an expired token",
        });
      }
      this.cached = cached;
      this.consecutiveFailures = 0;
      this.nextAttemptAt = 0;
      this.lastFailure = undefined;
      this.lastResult = "success";
      this.emit(trigger, startedHr, { result: "success", error: "", expiresOn: cached.expiresOn });
      return cached;
    } catch (err) {
      const failure =
        err instanceof TokenAcquisitionError
          ? err.failure
          : {
              error: "unknown",
              hint: "Unexpected error; see the log.",
              message: String((err as Error)?.message ?? err),
            };
      // A refusal of the caller's own credential says nothing about the identity provider: no back-off.
      const callersFault = err instanceof TokenAcquisitionError && err.callerError !== undefined;
      this.recordFailure(failure, !callersFault);
      this.emit(trigger, startedHr, { result: "failure", error: failure.error, failure });
      throw err;
    }
  }

  private recordFailure(failure: AcquisitionFailure, backOff: boolean): void {
    this.lastFailure = failure;
    this.lastResult = "failure";
    if (!backOff) return;
    this.consecutiveFailures += 1;
    const exp = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** (this.consecutiveFailures - 1));
    // "Equal jitter": half fixed, half random, so retries spread out but never come too soon.
    let delay = exp / 2 + (this.random() * exp) / 2;
    if (failure.retryAfterMs !== undefined)
      delay = Math.max(delay, Math.min(failure.retryAfterMs, 3_600_000));
    this.nextAttemptAt = this.now() + delay;
    // While a valid token exists, keep trying in the background so it is replaced before it expires.
    if (this.cached && !this.closed) {
      if (this.retryTimer) clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        if (this.cached && this.now() < this.cached.usableUntil) this.refreshInBackground("proactive");
      }, delay);
      this.retryTimer.unref();
    }
  }

  private emit(
    trigger: RefreshTrigger,
    startedHr: number,
    outcome: Pick<AcquisitionEvent, "result" | "error" | "expiresOn" | "failure">,
  ): void {
    const event: AcquisitionEvent = {
      identity: this.identity,
      scope: this.scope,
      trigger: this.reportTrigger ?? trigger,
      durationSeconds: (performance.now() - startedHr) / 1000,
      ...outcome,
    };
    try {
      this.onAcquisition(event);
    } catch {
      // Observability must never break token acquisition.
    }
  }

  private withTimeout<T>(promise: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(this.unavailable(this.now(), "the identity provider did not answer in time")),
        this.acquireTimeoutMs,
      );
      timer.unref();
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  private unavailable(now: number, why?: string): ProxyError {
    const failure = this.lastFailure;
    const retryAfterSeconds = Math.max(1, Math.ceil((this.nextAttemptAt - now) / 1000));
    const detail =
      why ?? (failure ? `token acquisition failed: ${failure.message}` : "token acquisition failed");
    const options: ConstructorParameters<typeof ProxyError>[2] = {
      headers: { "retry-after": String(retryAfterSeconds) },
    };
    if (failure?.aadsts) options.aadsts = `AADSTS${failure.aadsts}`;
    if (failure?.hint) options.hint = failure.hint;
    return new ProxyError("token_unavailable", `identity "${this.identity}": ${detail}`, options);
  }
}

/** One T per (identity, scope) of a configuration, made on first use; reloads keep some and close the rest. */
export class PerIdentityScope<T extends { close(): void }> {
  private readonly items = new Map<string, T>();
  private readonly factory: (identity: string, scope: string) => T;

  constructor(factory: (identity: string, scope: string) => T) {
    this.factory = factory;
  }

  get(identity: string, scope: string): T {
    const key = `${identity}\u0000${scope}`;
    let item = this.items.get(key);
    if (!item) {
      item = this.factory(identity, scope);
      this.items.set(key, item);
    }
    return item;
  }

  all(): T[] {
    return [...this.items.values()];
  }

  /** Keeps the items `keep` approves of; closes and forgets the others (config reload). */
  retain(keep: (item: T) => boolean): void {
    for (const [key, item] of this.items) {
      if (!keep(item)) {
        item.close();
        this.items.delete(key);
      }
    }
  }

  close(): void {
    for (const item of this.items.values()) item.close();
  }
}

/** All token providers of one configuration, keyed by identity and scope. */
export class TokenManager extends PerIdentityScope<TokenProvider> {
  async warmAll(): Promise<boolean[]> {
    return Promise.all(this.all().map((p) => p.warm()));
  }
}
