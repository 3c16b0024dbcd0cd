// The Grafana dashboard and the alert rules query only metrics the proxy exports: every PromQL
// expression is parsed with Prometheus' own grammar (lezer-promql) and each metric it selects is
// looked up in a live /metrics scrape.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";
import { Identifier, parser, VectorSelector } from "@prometheus-io/lezer-promql";
import { parseAllDocuments } from "yaml";
import { parseMetrics } from "../helpers/prometheus.ts";
import { startStack } from "../helpers/stack.ts";

const DIR = new URL("../../k8s/observability/", import.meta.url);

/** Metric names selected by a PromQL expression; throws on a syntax error. */
function selectedMetrics(expr: string): string[] {
  const tree = parser.parse(expr);
  const names: string[] = [];
  let error: string | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) error ??= `syntax error at ${node.from} in ${expr}`;
      if (node.type.id === Identifier && node.node.parent?.type.id === VectorSelector) {
        names.push(expr.slice(node.from, node.to));
      }
    },
  });
  if (error) throw new Error(error);
  return names;
}

async function dashboardExprs(): Promise<string[]> {
  const dashboard = JSON.parse(await readFile(new URL("grafana-dashboard.json", DIR), "utf8")) as {
    panels: Array<{ targets?: Array<{ expr: string }> }>;
    templating: { list: Array<{ query?: string }> };
  };
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

async function ruleExprs(): Promise<string[]> {
  const docs = parseAllDocuments(await readFile(new URL("prometheus-rule.yaml", DIR), "utf8"));
  const rule = docs[0]!.toJS() as {
    kind: string;
    spec: { groups: Array<{ rules: Array<{ alert: string; expr: string }> }> };
  };
  assert.equal(rule.kind, "PrometheusRule");
  return rule.spec.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

test("every dashboard panel and alert rule uses only metrics the proxy exports", async (t) => {
  const stack = await startStack(t);
  await (await stack.call("/powerplatform/x")).arrayBuffer();
  const exported = new Set<string>();
  for (const f of parseMetrics(await stack.metrics()).families.values()) {
    exported.add(f.name);
    if (f.type === "HISTOGRAM") for (const s of ["_bucket", "_sum", "_count"]) exported.add(f.name + s);
  }
  const dashboard = await dashboardExprs();
  const rules = await ruleExprs();
  assert.ok(dashboard.length >= 10 && rules.length >= 5);
  const used = new Set<string>();
  // `up` is Prometheus' own per-target series, which the proxy-down alerts rely on.
  exported.add("up");
  for (const expr of [...dashboard, ...rules]) {
    const names = selectedMetrics(expr);
    assert.ok(names.length > 0, `selects a metric: ${expr}`);
    for (const name of names) {
      assert.ok(exported.has(name), `${name} (in ${expr}) is not exported by the proxy`);
      used.add(name);
    }
  }
  // The four things the dashboard exists to show.
  for (const name of [
    "entra_proxy_requests_total",
    "entra_proxy_request_duration_seconds_bucket",
    "entra_proxy_upstream_401_total",
    "entra_proxy_token_refreshes_total",
    "entra_proxy_token_expiry_seconds",
  ]) {
    assert.ok(used.has(name), `${name} is charted or alerted on`);
  }
});

test("the PromQL checker rejects what it should", () => {
  assert.deepEqual(selectedMetrics('sum by (route) (rate(entra_proxy_requests_total{status=~"5.."}[5m]))'), [
    "entra_proxy_requests_total",
  ]);
  assert.throws(() => selectedMetrics("sum by (route (rate(x[5m]))"), /syntax error/);
});

test("alert rules cover the unusual token activity the OAuth guidance names", async () => {
  const text = await readFile(new URL("prometheus-rule.yaml", DIR), "utf8");
  for (const alert of [
    "EntraProxyTokenRefreshFailing",
    "EntraProxyTokenExpiringWithoutRefresh",
    "EntraProxyTokenExpired",
    "EntraProxyTokenUnavailable",
    "EntraProxyUpstream401Ratio",
    "EntraProxyAccessDeniedRatio",
    "EntraProxyHigh5xxRatio",
    "EntraProxyConfigReloadRejected",
    "EntraProxyDown",
  ]) {
    assert.match(text, new RegExp(`alert: ${alert}\\b`));
  }
});
