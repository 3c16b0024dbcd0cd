// The admin port: liveness, process readiness (token health only in its verbose form or when opted in),
// Prometheus metrics and a status page.
// Never routed to upstreams; the proxy port never serves these paths.
import express from "express";
import helmet from "helmet";
import type { Registry } from "prom-client";
import type { GateSnapshot } from "../limits/identity-gate.ts";
import type { RecentEvent } from "./recent-events.ts";

export interface ReadinessItem {
  identity: string;
  scope: string;
  ready: boolean;
  reason: string;
}

/** Whether this process should receive traffic, and why (design.md "Admin port"). */
export interface Readiness {
  ready: boolean;
  reason: string;
  /** `process`: tokens never fail readiness; `tokens`: every identity must hold a valid token. */
  mode: "process" | "tokens";
  identities: ReadinessItem[];
  routes: Array<{ prefix: string; identity: string; ready: boolean }>;
}

/**
 * The readiness decision. A broken identity never fails it in `process` mode: one bad secret would
 * otherwise take every route on every replica out of the Service.
 */
export function decideReadiness(input: {
  accepting: boolean;
  warmedUp: boolean;
  mode: "process" | "tokens";
  identities: ReadinessItem[];
  routes: Array<{ prefix: string; identity: string; scope: string }>;
}): Readiness {
  const { accepting, warmedUp, mode, identities } = input;
  const tokenReady = new Map(identities.map((i) => [`${i.identity}\u0000${i.scope}`, i.ready]));
  const routes = input.routes.map((r) => ({
    prefix: r.prefix,
    identity: r.identity,
    ready: tokenReady.get(`${r.identity}\u0000${r.scope}`) ?? false,
  }));
  const broken = identities.filter((i) => !i.ready);
  const verdict = (ready: boolean, reason: string): Readiness => ({
    ready,
    reason,
    mode,
    identities,
    routes,
  });
  if (!accepting) return verdict(false, "shutting down");
  if (!warmedUp) return verdict(false, "starting: token warm-up not finished");
  if (mode === "tokens" && broken.length > 0) {
    return verdict(false, `no valid token for ${broken.map((i) => i.identity).join(", ")}`);
  }
  return verdict(true, broken.length > 0 ? "serving; some identities have no valid token" : "serving");
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
    /** Requests answered on this prefix since the process started, and how many were 5xx. */
    requests: number;
    serverErrors: number;
  }>;
  /** Every API key by name (never its hash) with its expiry, per route. */
  apiKeys: Array<{ route: string; name: string; expiresAt?: string; expiresInDays?: number }>;
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
  /** On-behalf-of token caches: how many users each holds (never who). */
  onBehalfOf: Array<{ identity: string; scope: string; cachedUsers: number; maxUsers: number }>;
  /** Upstream 401s and failed refreshes of the last hour, newest first. */
  recentEvents: Array<Omit<RecentEvent, "at"> & { at: string }>;
  /** Where outgoing HTTPS goes: the egress proxy (without its credentials) or direct. */
  egress?: string;
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
  identities: GateSnapshot[];
}

export interface AdminDeps {
  registry: Registry;
  readiness(): Readiness;
  status(): StatusSnapshot;
}

export function createAdminApp(deps: AdminDeps): express.Express {
  const app = express();
  app.disable("x-powered-by");
  app.use(helmet());
  app.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  app.get("/readyz", (req, res) => {
    const r = deps.readiness();
    // ?verbose adds per-identity and per-route health; it never changes the status code.
    const body = req.query.verbose === undefined ? { ready: r.ready, reason: r.reason } : r;
    res.status(r.ready ? 200 : 503).json(body);
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

/** "2027-07-01 00:00 UTC (in 207 days)" — the instant the key stops working; expired red, within 30 days amber. */
function keyExpiry(k: { expiresAt?: string; expiresInDays?: number }): string {
  const days = k.expiresInDays ?? 0;
  const date = `${escapeHtml((k.expiresAt ?? "").slice(0, 16).replace("T", " "))} UTC`;
  if (days <= 0) return `<span class="bad">${date} (expired)</span>`;
  return `<span class="${days <= 30 ? "warn" : "ok"}">${date} (in ${days} days)</span>`;
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
        // URLs (flow trigger URLs especially) may break anywhere, so they never widen the page.
        `<span class="url">${e(r.upstream)}</span>`,
        e(r.identity),
        `<code class="url">${e(r.scope)}</code>`,
        e(r.access),
        String(r.requests),
        `<span class="${r.serverErrors > 0 ? "bad" : "ok"}">${r.serverErrors}</span>`,
        `<span class="${r.upstream401LastHour > 0 ? "warn" : "ok"}">${r.upstream401LastHour}</span>`,
      ]),
    )
    .join("");
  const keys =
    status.apiKeys.length === 0
      ? "<p>No API keys configured.</p>"
      : `<table><thead><tr><th>Route</th><th>Key</th><th>Expires</th></tr></thead><tbody>${status.apiKeys
          .map((k) =>
            cells([
              `<code>${e(k.route)}</code>`,
              e(k.name),
              k.expiresAt === undefined ? "never" : keyExpiry(k),
            ]),
          )
          .join("")}</tbody></table>`;
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
  const obo =
    status.onBehalfOf.length === 0
      ? ""
      : `<h2>On-behalf-of caches</h2>
<table><thead><tr><th>Identity</th><th>Scope</th><th>Cached users</th><th>Limit</th></tr></thead><tbody>${status.onBehalfOf
          .map((c) =>
            cells([e(c.identity), `<code>${e(c.scope)}</code>`, String(c.cachedUsers), String(c.maxUsers)]),
          )
          .join("")}</tbody></table>`;
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
.url{overflow-wrap:anywhere}
th{background:#f4f4f4}code{font-size:12px}
.ok{color:#0a7a2f}.warn{color:#a86400}.bad{color:#b3261e;font-weight:600}
</style>
<script src="/status.js" defer></script></head>
<body>
<h1>entra-auth-proxy</h1>
<p>Ready: <strong class="${status.ready ? "ok" : "bad"}" id="ready">${status.ready ? "yes" : "no"}</strong>
 · generated ${e(status.generatedAt)} · <a href="/metrics">metrics</a> · <a href="/status.json">status.json</a></p>
${status.egress ? `<p>${e(status.egress)}</p>` : ""}
<h2>Routes</h2>
<table class="routes"><thead><tr><th>Prefix</th><th>Upstream</th><th>Identity</th><th>Scope</th><th>Access</th><th>Requests</th><th>5xx</th><th>Upstream 401s (1 h)</th></tr></thead><tbody>${routes}</tbody></table>
<h2>API keys</h2>
${keys}
<h2>Tokens</h2>
<table><thead><tr><th>Identity</th><th>Kind</th><th>Scope</th><th>State</th><th>Expires</th><th>Last refresh</th><th>Hint</th></tr></thead><tbody>${tokens}</tbody></table>
${obo}
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
