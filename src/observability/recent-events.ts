// A small, bounded memory of notable events (upstream 401s, failed token refreshes) for the status
// page. Bounded by count, so a 401 storm cannot grow memory.

export interface RecentEvent {
  at: number;
  kind: "upstream_401" | "refresh_failure";
  /** Route prefix for upstream 401s, identity for refresh failures. */
  subject: string;
  /** AADSTS code / short reason; never a token or secret. */
  detail: string;
}

export class RecentEvents {
  private readonly items: RecentEvent[] = [];
  private readonly max: number;
  private readonly now: () => number;

  constructor(max = 200, now: () => number = Date.now) {
    this.max = max;
    this.now = now;
  }

  record(kind: RecentEvent["kind"], subject: string, detail: string): void {
    this.items.push({ at: this.now(), kind, subject, detail });
    if (this.items.length > this.max) this.items.splice(0, this.items.length - this.max);
  }

  /** Newest first, at most `limit`, no older than `windowMs`. */
  list(windowMs: number, limit = 50): RecentEvent[] {
    const since = this.now() - windowMs;
    return this.items
      .filter((e) => e.at >= since)
      .slice(-limit)
      .reverse();
  }

  count(kind: RecentEvent["kind"], subject: string, windowMs: number): number {
    const since = this.now() - windowMs;
    let n = 0;
    for (const e of this.items) if (e.kind === kind && e.subject === subject && e.at >= since) n++;
    return n;
  }
}
