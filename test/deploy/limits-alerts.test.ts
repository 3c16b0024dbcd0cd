// The limits alerts (k8s/observability/prometheus-rule-limits.yaml) tested with Prometheus' own
// `promtool test rules`: a key is alerted on from 14 days before it expires, not earlier.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parseDocument, stringify } from "yaml";

const RULE = new URL("../../k8s/observability/prometheus-rule-limits.yaml", import.meta.url);

const promtool = await promisify(execFile)("promtool", ["--version"]).then(
  () => true,
  () => false,
);

test("an API key is alerted on 14 days before it expires; an expired key is critical", {
  skip: !promtool && "promtool is not installed",
}, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "eap-rules-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const rule = parseDocument(await readFile(RULE, "utf8")).toJS() as { kind: string; spec: unknown };
  assert.equal(rule.kind, "PrometheusRule");
  await writeFile(join(dir, "rules.yaml"), stringify(rule.spec));
  const day = 86_400;
  await writeFile(
    join(dir, "test.yaml"),
    stringify({
      rule_files: ["rules.yaml"],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          // 15 days left at the start, counting down a minute a minute, for 16 days.
          input_series: [
            {
              series: 'entra_proxy_api_key_expiry_seconds{consumer="erp-nightly",key="k2026"}',
              values: `${15 * day}-60x23040`,
            },
          ],
          alert_rule_test: [
            { eval_time: "23h", alertname: "EntraProxyApiKeyExpiresSoon", exp_alerts: [] },
            {
              eval_time: "26h",
              alertname: "EntraProxyApiKeyExpiresSoon",
              exp_alerts: [
                {
                  exp_labels: { severity: "warning", consumer: "erp-nightly", key: "k2026" },
                  exp_annotations: {
                    summary: "API key k2026 of erp-nightly expires in less than 14 days",
                    description:
                      "Issue a new key (entra-auth-proxy hash-key), add it next to the old one in routes.yaml, hand it to the caller, then remove the old one.",
                  },
                },
              ],
            },
            { eval_time: "15d2h", alertname: "EntraProxyApiKeyExpiresSoon", exp_alerts: [] },
            {
              eval_time: "15d2h",
              alertname: "EntraProxyApiKeyExpired",
              exp_alerts: [
                {
                  exp_labels: { severity: "critical", consumer: "erp-nightly", key: "k2026" },
                  exp_annotations: { summary: "API key k2026 of erp-nightly has expired and is refused" },
                },
              ],
            },
          ],
        },
      ],
    }),
  );
  const { stdout } = await promisify(execFile)("promtool", ["test", "rules", join(dir, "test.yaml")]).catch(
    (err: { stdout: string; stderr: string }) => {
      assert.fail(`${err.stdout}\n${err.stderr}`);
    },
  );
  assert.match(stdout, /SUCCESS/);
});
