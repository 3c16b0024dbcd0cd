// The operator documentation says what the code and manifests do: readiness, the alerts, the log
// settings, the Prometheus rule selector, and a fair comparison with API Management.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { parse } from "yaml";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

test("troubleshooting: readiness is about the process; every alert of the PrometheusRule is explained", () => {
  const doc = read("docs/troubleshooting.md");
  assert.doesNotMatch(doc, /200 when every route's identity holds a valid token/);
  assert.match(doc, /readyz\?verbose/);
  assert.match(doc, /health: \{ readiness: tokens \}/);
  assert.match(doc, /One route answers 503 token_unavailable/);
  const rule = parse(read("k8s/observability/prometheus-rule.yaml")) as {
    spec: { groups: Array<{ rules: Array<{ alert: string }> }> };
  };
  for (const { alert } of rule.spec.groups.flatMap((g) => g.rules)) {
    assert.match(doc, new RegExp(`^\\| ${alert} \\|`, "m"), `${alert} in the alert table`);
  }
});

test("README documents LOG_LEVEL and LOG_FORMAT (json|pretty) and the bound-address startup line", () => {
  const readme = read("README.md");
  assert.match(readme, /\| `LOG_LEVEL` \|/);
  assert.match(readme, /\| `LOG_FORMAT` \| `json`[^\n]*`pretty`/);
  assert.match(readme, /"proxy":"http:\/\/0\.0\.0\.0:8080"/);
});

test("k8s/README: observability renders the PrometheusRule, which needs the ruleSelector label", () => {
  const doc = read("k8s/README.md");
  assert.match(doc, /`observability\/` \|[^\n]*PrometheusRule/);
  assert.match(doc, /ruleSelector/);
});

test("why-not-api-keys: APIM's credential manager does client credentials without hand-written policy", () => {
  const doc = read("docs/why-not-api-keys.md");
  assert.match(doc, /credential manager/);
  assert.match(doc, /client credentials/);
  assert.match(doc, /get-authorization-context/);
  assert.doesNotMatch(
    doc,
    /client secret, a certificate of your own, or a \*\*user\*\* identity is not covered/,
  );
});
