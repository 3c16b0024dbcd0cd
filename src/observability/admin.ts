// The admin port: liveness, token-aware readiness, Prometheus metrics and a status page.
// Never routed to upstreams; the proxy port never serves these paths.
import express from "express";
import helmet from "helmet";
import type { Registry } from "prom-client";

export interface ReadinessItem {
  identity: string;
  scope: string;
  ready: boolean;
  reason: string;
}

export interface StatusSnapshot {
  ready: boolean;
  routes: Array<{ prefix: string; upstream: string; identity: string; scope: string; access: string }>;
  tokens: Array<{
    identity: string;
    scope: string;
    valid: boolean;
    expiresAt?: string;
    lastResult?: string;
    lastError?: { error: string; message: string; hint: string };
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
  app.use((_req, res) => {
    res.status(404).json({ error: "not found" });
  });
  return app;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function renderStatusPage(status: StatusSnapshot): string {
  const routes = status.routes
    .map(
      (r) =>
        `<tr><td>${escapeHtml(r.prefix)}</td><td>${escapeHtml(r.upstream)}</td><td>${escapeHtml(r.identity)}</td><td>${escapeHtml(r.scope)}</td><td>${escapeHtml(r.access)}</td></tr>`,
    )
    .join("");
  const tokens = status.tokens
    .map(
      (t) =>
        `<tr><td>${escapeHtml(t.identity)}</td><td>${escapeHtml(t.scope)}</td><td>${t.valid ? "valid" : "none"}</td><td>${escapeHtml(t.expiresAt ?? "—")}</td><td>${escapeHtml(t.lastResult ?? "—")}</td><td>${escapeHtml(t.lastError ? `${t.lastError.error}: ${t.lastError.hint}` : "")}</td></tr>`,
    )
    .join("");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>entra-auth-proxy status</title></head>
<body><h1>entra-auth-proxy</h1><p>Ready: <strong>${status.ready ? "yes" : "no"}</strong> · <a href="/metrics">metrics</a> · <a href="/status.json">status.json</a></p>
<h2>Routes</h2><table><thead><tr><th>Prefix</th><th>Upstream</th><th>Identity</th><th>Scope</th><th>Access</th></tr></thead><tbody>${routes}</tbody></table>
<h2>Tokens</h2><table><thead><tr><th>Identity</th><th>Scope</th><th>State</th><th>Expires</th><th>Last refresh</th><th>Last error</th></tr></thead><tbody>${tokens}</tbody></table>
</body></html>`;
}
