// The alert rules of k8s/observability/prometheus-rule.yaml, proven with Prometheus' own rule tester:
// `promtool test rules test/deploy/alerts.promtool.yaml` shows each alert firing on the series that
// should trigger it and staying quiet during an ordinary rollout. Annotations are templated text, so
// they are checked by `promtool check rules` and left out of the unit-test comparison.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parse, stringify } from "yaml";

const RULE = new URL("../../k8s/observability/prometheus-rule.yaml", import.meta.url);
const CASES = new URL("alerts.promtool.yaml", import.meta.url);

interface Rule {
  alert: string;
  expr: string;
  annotations?: Record<string, string>;
}

function findPromtool(): string | undefined {
  if (process.env.PROMTOOL) return process.env.PROMTOOL;
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const candidate = join(dir, "promtool");
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

async function promtool(bin: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await promisify(execFile)(bin, args, { cwd, timeout: 60_000 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    assert.fail(`promtool ${args.join(" ")} failed:\n${e.stdout ?? ""}${e.stderr ?? e.message}`);
  }
}

test("alert rules: promtool check rules, and promtool test rules (fires when it should, quiet on a rollout)", async (t) => {
  const bin = findPromtool();
  // npm test must work with only Node and npm; .ci/run installs Debian's prometheus and sets REQUIRE_PROMTOOL=1.
  if (!bin) {
    assert.notEqual(process.env.REQUIRE_PROMTOOL, "1", "promtool not found and REQUIRE_PROMTOOL=1");
    t.skip("promtool not found: apt-get install prometheus (or set PROMTOOL) to run the alert rule tests");
    return;
  }
  const dir = await mkdtemp(join(tmpdir(), "eap-alerts-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const resource = parse(await readFile(RULE, "utf8")) as {
    kind: string;
    spec: { groups: Array<{ name: string; rules: Rule[] }> };
  };
  assert.equal(resource.kind, "PrometheusRule");
  const groups = resource.spec.groups;
  await writeFile(join(dir, "full.yaml"), stringify({ groups }));
  t.diagnostic((await promtool(bin, ["check", "rules", "full.yaml"], dir)).trim());
  const withoutText = groups.map((g) => ({
    ...g,
    rules: g.rules.map(({ annotations: _text, ...rule }) => rule),
  }));
  await writeFile(join(dir, "rules.yaml"), stringify({ groups: withoutText }));
  await copyFile(CASES, join(dir, "alerts.promtool.yaml"));
  const output = await promtool(bin, ["test", "rules", "alerts.promtool.yaml"], dir);
  t.diagnostic(output.trim());
  assert.match(output, /SUCCESS/);

  // Every alert is exercised: at least one case where it fires.
  const cases = parse(await readFile(CASES, "utf8")) as {
    tests: Array<{ alert_rule_test?: Array<{ alertname: string; exp_alerts: unknown[] }> }>;
  };
  const fired = new Set(
    cases.tests.flatMap((c) =>
      (c.alert_rule_test ?? []).filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname),
    ),
  );
  for (const rule of groups.flatMap((g) => g.rules)) {
    assert.ok(fired.has(rule.alert), `${rule.alert} has a case where it fires`);
  }
});
