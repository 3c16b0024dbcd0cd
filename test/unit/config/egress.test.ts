import assert from "node:assert/strict";
import { test } from "node:test";
import { describeEgress, displayProxy, parseProxyUrl } from "../../../src/config/egress.ts";
import { parseConfig } from "../../../src/config/load.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { ENV, errors, KEY_HASH, locate, withRoutes } from "./helpers.ts";

const ROUTE = `  - prefix: /pp
    service: powerplatform
    identity: app
    access: { apiKeys: [{ name: k, sha256: ${KEY_HASH} }] }
`;

function egressOf(extra: string, env: NodeJS.ProcessEnv = {}) {
  const { config, issues } = parseConfig(withRoutes(ROUTE, extra), "routes.yaml", { ...ENV, ...env });
  assert.deepEqual(errors(issues), []);
  return config!.egress;
}

test("egress: absent without egress.proxy and without HTTPS_PROXY / https_proxy", () => {
  assert.equal(egressOf(""), undefined);
  assert.equal(egressOf("", { HTTP_PROXY: "http://only-for-http:3128", NO_PROXY: "x" }), undefined);
  assert.equal(egressOf("egress:\n  noProxy: [a]\n"), undefined);
});

test("egress: defaults from HTTPS_PROXY and NO_PROXY, the lower-case forms winning; empty counts as unset", () => {
  assert.deepEqual(
    egressOf("", { HTTPS_PROXY: "http://upper:3128", NO_PROXY: "a.example, .b.example,10.0.0.0/8" }),
    {
      proxy: "http://upper:3128",
      noProxy: ["a.example", ".b.example", "10.0.0.0/8"],
    },
  );
  assert.deepEqual(
    egressOf("", {
      HTTPS_PROXY: "http://upper:3128",
      https_proxy: "http://lower:3128",
      NO_PROXY: "upper.example",
      no_proxy: "lower.example",
    }),
    { proxy: "http://lower:3128", noProxy: ["lower.example"] },
  );
  assert.deepEqual(egressOf("", { https_proxy: "", HTTPS_PROXY: "http://upper:3128", no_proxy: "" }), {
    proxy: "http://upper:3128",
    noProxy: [],
  });
});

test("egress: routes.yaml wins over the environment, key by key; host:port alone means http://", () => {
  const env = { HTTPS_PROXY: "http://env:3128", NO_PROXY: "env.example" };
  assert.deepEqual(egressOf("egress:\n  proxy: proxy.corp.example:3128\n", env), {
    proxy: "http://proxy.corp.example:3128",
    noProxy: ["env.example"],
  });
  assert.deepEqual(egressOf("egress:\n  noProxy: []\n", env), { proxy: "http://env:3128", noProxy: [] });
  assert.deepEqual(
    egressOf(
      "egress:\n  proxy: https://u:p%40ss@proxy.corp.example\n  noProxy: [.svc.cluster.local, 10.0.0.0/8]\n",
    ),
    { proxy: "https://u:p%40ss@proxy.corp.example", noProxy: [".svc.cluster.local", "10.0.0.0/8"] },
  );
  assert.deepEqual(egressOf('egress:\n  proxy: http://p:1\n  noProxy: "a.example,b.example"\n'), {
    proxy: "http://p:1",
    noProxy: ["a.example", "b.example"],
  });
});

test("egress: a bad proxy URL is an error at its key (or naming its variable) that never repeats the value", () => {
  const secret = "hunter2-secret";
  const yaml = withRoutes(ROUTE, `egress:\n  proxy: socks5://user:${secret}@proxy:1080\n`);
  const file = parseConfig(yaml, "routes.yaml", ENV);
  assert.equal(file.config, undefined);
  const [issue] = errors(file.issues);
  assert.equal(issue?.location, locate("routes.yaml", yaml, "socks5://"));
  assert.equal(issue?.path, "egress.proxy");
  assert.match(issue!.message, /must be an http:\/\/ or https:\/\/ proxy URL/);

  const fromEnv = parseConfig(withRoutes(ROUTE), "routes.yaml", {
    ...ENV,
    HTTPS_PROXY: `http://user:${secret}@proxy:3128/some/path`,
  });
  const [envIssue] = errors(fromEnv.issues);
  assert.match(envIssue!.message, /only scheme, credentials, host and port.*\(from HTTPS_PROXY\)/);
  for (const i of [...file.issues, ...fromEnv.issues]) assert.ok(!formatConfigIssue(i).includes(secret));

  const unknown = parseConfig(withRoutes(ROUTE, "egress:\n  proxies: http://p:1\n"), "routes.yaml", ENV);
  assert.match(errors(unknown.issues)[0]!.message, /unknown key "proxies".*proxy/);
});

test("parseProxyUrl, displayProxy and describeEgress never show credentials", () => {
  assert.deepEqual(parseProxyUrl("http://proxy:3128/"), { url: "http://proxy:3128" });
  assert.ok("problem" in parseProxyUrl("http://proxy:3128/?x=1"));
  assert.ok("problem" in parseProxyUrl("http://"));
  assert.equal(displayProxy("http://svc:S3cret@proxy.corp.example:3128"), "http://proxy.corp.example:3128");
  const line = describeEgress({ proxy: "http://svc:S3cret@proxy.corp.example:3128", noProxy: [".corp"] });
  assert.equal(
    line,
    "egress: HTTPS via proxy http://proxy.corp.example:3128 with Basic credentials; not for noProxy: .corp; managed-identity endpoints always direct",
  );
  assert.match(describeEgress(undefined), /^egress: direct/);
});
