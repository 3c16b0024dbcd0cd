// The admin port: liveness, token-aware readiness, Prometheus metrics and a status page.
// Never routed to upstreams; the proxy port never serves these paths.
import express from "express";
import helmet from "helmet";
import type { Registry } from "prom-client";
import type { RecentEvent } from "./recent-events.ts";

export interface ReadinessItem {
  identity: string;
  scope: string;
  ready: boolean;
  reason: string;
}

export interface StatusSnapshot {
  ready: boolean;
  generatedAt: string;
  routes: Array<{
    prefix: string;
    upstream: string;
    identity: string;
    scope: string;
    access: string;
    upstream401LastHour: number;
    /** Requests on this prefix right now, from routing to the end of the response. */
    inFlight: number;
  }>;
  tokens: Array<{
    identity: string;
    kind: string;
    scope: string;
    valid: boolean;
    expiresAt?: string;
    expiresInSeconds?: number;
    lastResult?: string;
    lastAttemptAt?: string;
    lastError?: { error: string; message: string; hint: string };
  }>;
  /** Upstream 401s and failed refreshes of the last hour, newest first. */
  recentEvents: Array<Omit<RecentEvent, "at"> & { at: string }>;
  /** Consumers, caller budgets being spent, and each identity's limits, queue and pauses. */
  limits?: LimitsStatus;
}

export interface LimitsStatus {
  consumers: Array<{
    name: string;
    routes: string[];
    rateLimit?: { requests: number; perSeconds: number; burst: number };
  }>;
  /** Named callers (consumer or API key names) whose budget is not full; others are only counted. */
  callers: Array<{ route: string; caller: string; remaining: number; burst: number }>;
  otherCallersLimited: number;
  identities: Array<{
    identity: string;
    concurrent?: number;
    inFlight: number;
    window?: { requests: number; perSeconds: number; used: number };
    maxWaitMs: number;
    queued: number;
    pauses: Array<{ host: string; until: string; remainingSeconds: number }>;
  }>;
}

export interface AdminDeps {
  registry: Registry;
  readiness(): ReadinessItem[];
  /** False once draining (SIGTERM): readiness then fails regardless of tokens. */
  accepting(): boolean;
  status(): StatusSnapshot;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(helmet());
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", (_req, res) => {
    const items = deps.readiness();
    const notReady = items.filter((i) => !i.ready);
    if (!deps.accepting()) {
      res.status(503).json({ ready: false, reason: "shutting down", notReady });
      return;
    }
    res.status(notReady.length === 0 ? 200 : 503).json({ ready: notReady.length === 0, notReady, items });
  });
  app.get("/metrics", async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.get("/status.json", (_req, res) => {
    res.json(deps.status());
  });
  app.get("/status", (_req, res) => {
    res.type("html").send(renderStatusPage(deps.status()));
  });
  // The countdown script is a file of its own: helmet's Content-Security-Policy forbids inline scripts.
  app.get("/status.js", (_req, res) => {
    res.type("text/javascript").set("cache-control", "no-cache").send(STATUS_SCRIPT);
  });
  app.use((_req, res) => {
    res.status(404).json({ error: "not found" });
  });
  return app;
}

const STATUS_SCRIPT = `// Counts token expiries down every second from the data-expires attributes.
function tick() {
  for (const el of document.querySelectorAll("[data-expires]")) {
    const left = Math.round((Date.parse(el.dataset.expires) - Date.now()) / 1000);
    el.textContent = left > 0 ? "in " + Math.floor(left / 60) + "m " + (left % 60) + "s" : "expired";
    el.className = left > 300 ? "ok" : left > 0 ? "warn" : "bad";
  }
}
tick();
setInterval(tick, 1000);
`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cells(values: string[]): string {
  return `<tr>${values.map((v) => `<td>${v}</td>`).join("")}</tr>`;
}

export function renderStatusPage(status: StatusSnapshot): string {
  const e = escapeHtml;
  const routes = status.routes
    .map((r) =>
      cells([
        `<code>${e(r.prefix)}</code>`,
        e(r.upstream),
        e(r.identity),
        `<code>${e(r.scope)}</code>`,
        e(r.access),
        `<span class="${r.upstream401LastHour > 0 ? "warn" : "ok"}">${r.upstream401LastHour}</span>`,
      ]),
    )
    .join("");
  const tokens = status.tokens
    .map((t) =>
      cells([
        e(t.identity),
        e(t.kind),
        `<code>${e(t.scope)}</code>`,
        t.valid ? '<span class="ok">valid</span>' : '<span class="bad">none</span>',
        t.expiresAt ? `<span data-expires="${e(t.expiresAt)}">${e(t.expiresAt)}</span>` : "—",
        t.lastResult === "failure"
          ? `<span class="bad">failure</span>${t.lastError ? ` <code>${e(t.lastError.error)}</code>` : ""}`
          : e(t.lastResult ?? "—"),
        t.lastError ? e(t.lastError.hint) : "",
      ]),
    )
    .join("");
  const events =
    status.recentEvents.length === 0
      ? '<p class="ok">No upstream 401s or refresh failures in the last hour.</p>'
      : `<table><thead><tr><th>Time</th><th>Event</th><th>Route / identity</th><th>Detail</th></tr></thead><tbody>${status.recentEvents
          .map((ev) => cells([e(ev.at), e(ev.kind.replace("_", " ")), e(ev.subject), e(ev.detail)]))
          .join("")}</tbody></table>`;
  const limits = status.limits ? renderLimits(status.limits) : "";
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>entra-auth-proxy status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}
th,td{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}code{font-size:12px}
.ok{color:#0a7a2f}.warn{color:#a86400}.bad{color:#b3261e;font-weight:600}
</style>
<script src="/status.js" defer></script></head>
<body>
<h1>entra-auth-proxy</h1>
<p>Ready: <strong class="${status.ready ? "ok" : "bad"}" id="ready">${status.ready ? "yes" : "no"}</strong>
 · generated ${e(status.generatedAt)} · <a href="/metrics">metrics</a> · <a href="/status.json">status.json</a></p>
<h2>Routes</h2>
<table><thead><tr><th>Prefix</th><th>Upstream</th><th>Identity</th><th>Scope</th><th>Access</th><th>Upstream 401s (1 h)</th></tr></thead><tbody>${routes}</tbody></table>
<h2>Tokens</h2>
<table><thead><tr><th>Identity</th><th>Kind</th><th>Scope</th><th>State</th><th>Expires</th><th>Last refresh</th><th>Hint</th></tr></thead><tbody>${tokens}</tbody></table>
${limits}<h2>Recent events</h2>
${events}
</body></html>`;
}

function renderLimits(limits: LimitsStatus): string {
  const e = escapeHtml;
  const budgetOf = new Map<string, string[]>();
  for (const c of limits.callers) {
    const list = budgetOf.get(c.caller) ?? [];
    list.push(`${e(c.route)}: ${c.remaining}/${c.burst} left`);
    budgetOf.set(c.caller, list);
  }
  const consumers = limits.consumers
    .map((c) =>
      cells([
        e(c.name),
        c.routes.map((r) => `<code>${e(r)}</code>`).join(", ") || "—",
        c.rateLimit
          ? `${c.rateLimit.requests} per ${c.rateLimit.perSeconds} s (burst ${c.rateLimit.burst})`
          : "—",
        budgetOf.get(c.name)?.join("<br>") ?? '<span class="ok">full</span>',
      ]),
    )
    .join("");
  const identities = limits.identities
    .map((i) =>
      cells([
        e(i.identity),
        i.concurrent === undefined ? `${i.inFlight} (no limit)` : `${i.inFlight} / ${i.concurrent}`,
        i.window ? `${i.window.used} / ${i.window.requests} per ${i.window.perSeconds} s` : "—",
        String(i.queued),
        i.pauses.length === 0
          ? '<span class="ok">none</span>'
          : i.pauses
              .map(
                (p) => `<span class="bad">${e(p.host)} until ${e(p.until)} (${p.remainingSeconds} s)</span>`,
              )
              .join("<br>"),
      ]),
    )
    .join("");
  return `<h2>Consumers</h2>
<table><thead><tr><th>Consumer</th><th>Routes</th><th>Rate limit</th><th>Budget</th></tr></thead><tbody>${consumers}</tbody></table>
${limits.otherCallersLimited > 0 ? `<p>${limits.otherCallersLimited} other callers (by IP or token) are spending a budget.</p>` : ""}
<h2>Identity limits</h2>
<table><thead><tr><th>Identity</th><th>Upstream in flight</th><th>Window</th><th>Queued</th><th>Pauses (429 / Retry-After)</th></tr></thead><tbody>${identities}</tbody></table>
`;
}
