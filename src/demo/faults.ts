/** Fault injection for the emulator's token endpoints: outages, throttling, slowness, broken responses. */
import type { ServerResponse } from "node:http";
import { setTimeout as sleep } from "node:timers/promises";

export interface Fault {
  /** Answer with this status (and `body`, default: an Entra-shaped server error). */
  status?: number;
  body?: unknown;
  /** Extra response headers, e.g. `{ "Retry-After": "2" }`. */
  headers?: Record<string, string>;
  /** Wait this long first; on its own the request is then served normally. */
  delayMs?: number;
  /** Destroy the socket without answering. */
  drop?: boolean;
  /** Answer 200 with a body that is not valid JSON. */
  malformed?: boolean;
  /** How many matching requests it hits; default: until `clearFaults()`. */
  times?: number;
  /** Hit only this fraction of matching requests (0–1), at random; default: every one. */
  probability?: number;
  match?: { clientId?: string; grantType?: string };
}

export interface FaultTarget {
  clientId?: string | undefined;
  grantType: string;
}

interface ActiveFault {
  fault: Fault;
  remaining: number;
}

export class FaultInjector {
  #active: ActiveFault[] = [];

  /** Returns a function that removes this fault again. */
  inject(fault: Fault): () => void {
    const entry: ActiveFault = { fault, remaining: fault.times ?? Number.POSITIVE_INFINITY };
    this.#active.push(entry);
    return () => {
      this.#active = this.#active.filter((f) => f !== entry);
    };
  }

  clear(): void {
    this.#active = [];
  }

  /** The first fault that matches the request, counted as used. */
  take(target: FaultTarget): Fault | undefined {
    const entry = this.#active.find(
      (f) => f.remaining > 0 && matches(f.fault, target) && Math.random() < (f.fault.probability ?? 1),
    );
    if (!entry) return undefined;
    entry.remaining -= 1;
    if (entry.remaining <= 0) this.#active = this.#active.filter((f) => f !== entry);
    return entry.fault;
  }
}

function matches(fault: Fault, target: FaultTarget): boolean {
  const m = fault.match;
  if (!m) return true;
  if (m.clientId !== undefined && m.clientId.toLowerCase() !== target.clientId?.toLowerCase()) return false;
  if (m.grantType !== undefined && m.grantType !== target.grantType) return false;
  return true;
}

/**
 * Plays the fault on the response. Returns false when the request should still be served normally
 * (a delay-only fault); true when the fault produced the answer (or dropped the connection).
 */
export async function playFault(
  fault: Fault,
  res: ServerResponse,
  defaultBody: (status: number) => unknown,
  signal: AbortSignal,
): Promise<boolean> {
  if (fault.delayMs) await sleep(fault.delayMs, undefined, { signal });
  if (fault.drop) {
    res.socket?.destroy();
    return true;
  }
  if (fault.malformed) {
    res.writeHead(200, { "content-type": "application/json; charset=utf-8", ...fault.headers });
    res.end('{"token_type":"Bearer","access_token":');
    return true;
  }
  if (fault.status === undefined && fault.body === undefined) return false;
  const status = fault.status ?? 200;
  const body = fault.body ?? defaultBody(status);
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", ...fault.headers });
  res.end(text);
  return true;
}
