// Room under one identity's limits (design.md "Consumers and Microsoft's service limits"): upstream
// requests in flight, requests started per sliding window, and pauses per upstream host after the
// upstream said 429 / 503 with Retry-After. Requests without room wait in FIFO order, holding no
// upstream connection, and leave the queue when their caller disconnects.
import type { ServerResponse } from "node:http";
import type { IdentityLimits } from "../config/types.ts";
import { LimitRefusal, rateLimitHeaders } from "./refusal.ts";

/** The longest pause an upstream's Retry-After can impose (a bound on a bogus value). */
const MAX_PAUSE_MS = 3_600_000;

/** The caller left while its request waited for room. */
export class LeftQueue extends Error {
  readonly code = "caller_gone";
}

/** Held by one upstream attempt that took room; `done` gives the room back (idempotent). */
export interface Ticket {
  done(): void;
}

/** The ticket of an attempt that holds nothing (no concurrency limit, not a probe): shared. */
export const NO_TICKET: Ticket = { done() {} };

interface Pause {
  until: number;
  /** After the pause, one request (the probe) goes first; the rest wait for its answer. */
  probing: boolean;
}

interface Waiter {
  host: string;
  since: number;
  resolve(ticket: Ticket): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout | undefined;
  res: ServerResponse;
  onClose: () => void;
}

export interface GateSnapshot {
  identity: string;
  concurrent?: number;
  inFlight: number;
  window?: { requests: number; perSeconds: number; used: number };
  maxWaitMs: number;
  queued: number;
  pauses: Array<{ host: string; until: string; remainingSeconds: number }>;
}

class AttemptTicket implements Ticket {
  private readonly gate: IdentityGate;
  private readonly host: string;
  private readonly counted: boolean;
  private readonly probe: boolean;
  private open = true;

  constructor(gate: IdentityGate, host: string, counted: boolean, probe: boolean) {
    this.gate = gate;
    this.host = host;
    this.counted = counted;
    this.probe = probe;
  }

  done(): void {
    if (!this.open) return;
    this.open = false;
    this.gate.release(this.host, this.counted, this.probe);
  }
}

export class IdentityGate {
  readonly identity: string;
  private limits: IdentityLimits | undefined;
  private readonly now: () => number;
  /** Seconds a request waited for room, for entra_proxy_limit_wait_seconds. */
  private readonly onWaited: (seconds: number) => void;
  /** Upstream requests holding a concurrency slot. */
  inFlight = 0;
  /** Start times of the last `window.requests` upstream requests (a ring), when a window is set. */
  private starts: Float64Array | undefined;
  private startsCount = 0;
  private startsHead = 0;
  private readonly pauses = new Map<string, Pause>();
  private readonly queue: Waiter[] = [];
  private wakeTimer: NodeJS.Timeout | undefined;
  private wakeAt = 0;

  constructor(
    identity: string,
    limits: IdentityLimits | undefined,
    now: () => number,
    onWaited: (s: number) => void,
  ) {
    this.identity = identity;
    this.now = now;
    this.onWaited = onWaited;
    this.configure(limits);
  }

  /** A reload's limits; in-flight counts and pauses carry over. */
  configure(limits: IdentityLimits | undefined): void {
    const size = limits?.window?.requests;
    if (size !== this.limits?.window?.requests) {
      // A new window size starts a fresh history: the old one cannot be mapped onto it.
      this.starts = size === undefined ? undefined : new Float64Array(size);
      this.startsCount = 0;
      this.startsHead = 0;
    }
    this.limits = limits;
    this.drain();
  }

  /**
   * Room for one upstream attempt to `host`: a ticket now, a promise of one after waiting (at most
   * `maxWaitMs`, default the identity's), or a LimitRefusal. Costs nothing without limits or pauses.
   */
  enter(host: string, res: ServerResponse, maxWaitMs?: number): Ticket | Promise<Ticket> {
    if (this.limits === undefined && this.pauses.size === 0) return NO_TICKET;
    const now = this.now();
    const pause = this.pauses.get(host);
    // FIFO: nobody overtakes a waiter for the same host.
    if (!this.queue.some((w) => w.host === host || !this.isPaused(w.host, now))) {
      const admitted = this.tryAdmit(host, now);
      if (admitted !== undefined) return admitted;
    }
    const budget = maxWaitMs ?? this.limits?.maxWaitMs ?? 0;
    const pausedFor = pause && pause.until > now ? pause.until - now : 0;
    if (budget <= 0 || pausedFor > budget) throw this.refusal(host, now);
    return new Promise<Ticket>((resolve, reject) => {
      const waiter: Waiter = {
        host,
        since: now,
        resolve,
        reject,
        timer: undefined,
        res,
        onClose: () => this.leave(waiter, new LeftQueue("the caller left while waiting for room")),
      };
      waiter.timer = setTimeout(() => this.leave(waiter, this.refusal(host, this.now())), budget);
      res.on("close", waiter.onClose);
      this.queue.push(waiter);
      this.scheduleWake(now);
    });
  }

  /** The upstream said 429 (or 503) with Retry-After: nothing more goes to `host` until it has passed. */
  pause(host: string, retryAfterMs: number): void {
    const until = this.now() + Math.min(retryAfterMs, MAX_PAUSE_MS);
    const pause = this.pauses.get(host);
    if (pause === undefined) this.pauses.set(host, { until, probing: false });
    else {
      pause.until = Math.max(pause.until, until);
      pause.probing = false;
    }
    this.scheduleWake(this.now());
  }

  /** Milliseconds `host` stays paused (0 when it is not). */
  pausedFor(host: string): number {
    const pause = this.pauses.get(host);
    return pause === undefined ? 0 : Math.max(0, pause.until - this.now());
  }

  /** Gives back what an attempt's ticket held (called by AttemptTicket.done). */
  release(host: string, counted: boolean, probe: boolean): void {
    if (counted) this.inFlight--;
    if (probe) {
      const pause = this.pauses.get(host);
      // The probe was answered without a new pause: the host is open again.
      if (pause !== undefined && pause.until <= this.now()) this.pauses.delete(host);
      else if (pause !== undefined) pause.probing = false;
    }
    this.drain();
  }

  snapshot(): GateSnapshot {
    const now = this.now();
    const s: GateSnapshot = {
      identity: this.identity,
      inFlight: this.inFlight,
      maxWaitMs: this.limits?.maxWaitMs ?? 0,
      queued: this.queue.length,
      pauses: [...this.pauses]
        .filter(([, p]) => p.until > now)
        .map(([host, p]) => ({
          host,
          until: new Date(p.until).toISOString(),
          remainingSeconds: Math.ceil((p.until - now) / 1000),
        })),
    };
    if (this.limits?.concurrent !== undefined) s.concurrent = this.limits.concurrent;
    const w = this.limits?.window;
    if (w) s.window = { requests: w.requests, perSeconds: w.perMs / 1000, used: this.usedInWindow(now) };
    return s;
  }

  /** Rejects every waiter (the proxy is closing). */
  close(): void {
    for (const w of [...this.queue]) this.leave(w, new LeftQueue("the proxy is closing"));
    clearTimeout(this.wakeTimer);
  }

  private isPaused(host: string, now: number): boolean {
    const pause = this.pauses.get(host);
    return pause !== undefined && (pause.until > now || pause.probing);
  }

  /** A ticket when `host` has room now; undefined otherwise (nothing taken). */
  private tryAdmit(host: string, now: number): Ticket | undefined {
    const pause = this.pauses.get(host);
    if (pause !== undefined && (pause.until > now || pause.probing)) return undefined;
    const limits = this.limits;
    const counted = limits?.concurrent !== undefined;
    if (counted && this.inFlight >= limits!.concurrent!) return undefined;
    const starts = this.starts;
    if (starts !== undefined) {
      const perMs = limits!.window!.perMs;
      if (this.startsCount === starts.length) {
        if (now - starts[this.startsHead]! < perMs) return undefined;
        starts[this.startsHead] = now;
        this.startsHead = (this.startsHead + 1) % starts.length;
      } else {
        starts[(this.startsHead + this.startsCount) % starts.length] = now;
        this.startsCount++;
      }
    }
    if (counted) this.inFlight++;
    const probe = pause !== undefined;
    if (probe) pause.probing = true;
    return counted || probe ? new AttemptTicket(this, host, counted, probe) : NO_TICKET;
  }

  private usedInWindow(now: number): number {
    const starts = this.starts;
    if (starts === undefined) return 0;
    const perMs = this.limits!.window!.perMs;
    let used = 0;
    for (let i = 0; i < this.startsCount; i++) {
      if (now - starts[(this.startsHead + i) % starts.length]! < perMs) used++;
    }
    return used;
  }

  /** Admits waiters in order; a waiter for a paused host does not hold up those for other hosts. */
  private drain(): void {
    if (this.queue.length === 0) return;
    const now = this.now();
    for (let i = 0; i < this.queue.length; ) {
      const waiter = this.queue[i]!;
      if (this.isPaused(waiter.host, now)) {
        i++;
        continue;
      }
      const ticket = this.tryAdmit(waiter.host, now);
      if (ticket === undefined) break;
      this.queue.splice(i, 1);
      this.forget(waiter);
      this.onWaited((now - waiter.since) / 1000);
      waiter.resolve(ticket);
    }
    this.scheduleWake(now);
  }

  private leave(waiter: Waiter, error: Error): void {
    const at = this.queue.indexOf(waiter);
    if (at === -1) return;
    this.queue.splice(at, 1);
    this.forget(waiter);
    waiter.reject(error);
    // The head may have been the one holding up others behind it.
    this.drain();
  }

  private forget(waiter: Waiter): void {
    clearTimeout(waiter.timer);
    waiter.res.off("close", waiter.onClose);
  }

  /** One timer for the earliest instant a waiter may get room by time alone (a pause or the window). */
  private scheduleWake(now: number): void {
    if (this.queue.length === 0) {
      clearTimeout(this.wakeTimer);
      this.wakeTimer = undefined;
      return;
    }
    let at = Number.POSITIVE_INFINITY;
    for (const p of this.pauses.values()) if (p.until > now) at = Math.min(at, p.until);
    const starts = this.starts;
    if (starts !== undefined && this.startsCount === starts.length) {
      at = Math.min(at, starts[this.startsHead]! + this.limits!.window!.perMs);
    }
    if (at === Number.POSITIVE_INFINITY) return;
    if (this.wakeTimer !== undefined && this.wakeAt <= at && this.wakeAt > now) return;
    clearTimeout(this.wakeTimer);
    this.wakeAt = at;
    this.wakeTimer = setTimeout(
      () => {
        this.wakeTimer = undefined;
        this.drain();
      },
      Math.max(0, at - now),
    );
    this.wakeTimer.unref();
  }

  private refusal(host: string, now: number): LimitRefusal {
    const paused = this.pausedFor(host);
    // Paused, or its probe still out: either way the upstream asked this identity to wait.
    if (paused > 0 || this.pauses.get(host)?.probing) {
      return new LimitRefusal("upstream_pause", "the upstream asked to wait; this identity is paused", {
        "retry-after": String(Math.max(1, Math.ceil(paused / 1000))),
      });
    }
    const w = this.limits?.window;
    const starts = this.starts;
    let waitMs = 1000;
    if (w && starts && this.startsCount === starts.length) {
      waitMs = Math.max(waitMs, starts[this.startsHead]! + w.perMs - now);
    }
    const retryAfter = Math.ceil(waitMs / 1000);
    const headers: Record<string, string> = { "retry-after": String(retryAfter) };
    if (w) Object.assign(headers, rateLimitHeaders(w, 0, retryAfter, "identity"));
    return new LimitRefusal("identity", "no room under this route's identity limits in time", headers);
  }
}
