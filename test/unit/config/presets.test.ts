import assert from "node:assert/strict";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import {
  defaultMethods,
  LCS_REGIONS,
  lcsEndpoints,
  resolveCloud,
  resolveRouteTarget,
} from "../../../src/config/presets.ts";
import { errors, withRoutes } from "./helpers.ts";

const PUBLIC = resolveCloud("public");

test("presets give Microsoft's exact upstreams and scopes, double slashes included", () => {
  assert.deepEqual(resolveRouteTarget({ service: "powerplatform" }, PUBLIC), {
    upstream: "https://api.powerplatform.com",
    scope: "https://api.powerplatform.com/.default",
    problems: [],
  });
  assert.deepEqual(resolveRouteTarget({ service: "powerapps" }, PUBLIC), {
    upstream: "https://api.powerapps.com",
    scope: "https://service.powerapps.com//.default",
    problems: [],
  });
  assert.deepEqual(
    resolveRouteTarget({ service: "flow", flowUpstream: "https://t.example/invoke" }, PUBLIC),
    {
      upstream: "https://t.example/invoke",
      scope: "https://service.flow.microsoft.com//.default",
      problems: [],
    },
  );
  assert.deepEqual(resolveRouteTarget({ service: "lcs" }, PUBLIC), {
    upstream: "https://lcsapi.lcs.dynamics.com",
    scope: "https://lcsapi.lcs.dynamics.com//.default",
    problems: [],
  });
  assert.deepEqual(resolveRouteTarget({ service: "lcs", region: "fr" }, PUBLIC), {
    upstream: "https://lcsapi.fr.lcs.dynamics.com",
    scope: "https://lcsapi.fr.lcs.dynamics.com//.default",
    region: "fr",
    problems: [],
  });
  for (const region of LCS_REGIONS) {
    assert.equal(lcsEndpoints(region).scope, `https://lcsapi.${region}.lcs.dynamics.com//.default`);
  }
});

test("upstream and scope override a preset independently (region's scope is kept)", () => {
  assert.deepEqual(
    resolveRouteTarget({ service: "powerapps", upstream: "https://api.bap.microsoft.com" }, PUBLIC),
    {
      upstream: "https://api.bap.microsoft.com",
      scope: "https://service.powerapps.com//.default",
      problems: [],
    },
  );
  assert.deepEqual(
    resolveRouteTarget({ service: "powerplatform", scope: "https://x.example/.default" }, PUBLIC),
    {
      upstream: "https://api.powerplatform.com",
      scope: "https://x.example/.default",
      problems: [],
    },
  );
  assert.deepEqual(
    resolveRouteTarget({ service: "lcs", region: "uae", upstream: "https://127.0.0.1:9" }, PUBLIC),
    {
      upstream: "https://127.0.0.1:9",
      scope: "https://lcsapi.uae.lcs.dynamics.com//.default",
      region: "uae",
      problems: [],
    },
  );
  assert.deepEqual(
    resolveRouteTarget({ service: "lcs", region: "ch", scope: "https://s.example//.default" }, PUBLIC),
    {
      upstream: "https://lcsapi.ch.lcs.dynamics.com",
      scope: "https://s.example//.default",
      region: "ch",
      problems: [],
    },
  );
});

test("the same overrides through routes.yaml", () => {
  const yaml = withRoutes(`  - prefix: /pa
    service: powerapps
    upstream: https://api.bap.microsoft.com/
    identity: app
    access: { anonymous: true }
  - prefix: /pp
    service: powerplatform
    scope: https://api.powerplatform.com/.default
    identity: app
    access: { anonymous: true }
  - prefix: /lcs
    service: lcs
    region: no
    upstream: http://127.0.0.1:8443/lcs
    identity: ops-user
    access: { anonymous: true }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(errors(issues), []);
  assert.deepEqual(
    config?.routes.map((r) => [r.upstream, r.scope]),
    [
      ["https://api.bap.microsoft.com", "https://service.powerapps.com//.default"],
      ["https://api.powerplatform.com", "https://api.powerplatform.com/.default"],
      ["http://127.0.0.1:8443/lcs", "https://lcsapi.no.lcs.dynamics.com//.default"],
    ],
  );
});

test("no preset: upstream and scope are both required", () => {
  const target = resolveRouteTarget({}, PUBLIC);
  assert.deepEqual(
    target.problems.map((p) => p.key),
    ["upstream", "scope"],
  );
});

test("sovereign clouds: presets are not guessed; custom authority hosts keep them", () => {
  for (const name of ["usgov", "usgovhigh", "dod", "china"] as const) {
    const cloud = resolveCloud(name);
    const target = resolveRouteTarget({ service: "powerplatform" }, cloud);
    assert.deepEqual(target.problems, [
      {
        key: "service",
        message: `service powerplatform has no built-in endpoints for the ${name} cloud; set upstream and scope explicitly for this route (the public-cloud defaults are never assumed)`,
      },
    ]);
    const onlyScope = resolveRouteTarget({ service: "powerapps", upstream: "https://api.example.us" }, cloud);
    assert.match(onlyScope.problems[0]?.message ?? "", /set scope explicitly/);
    const flow = resolveRouteTarget({ service: "flow", flowUpstream: "https://t.example.us/invoke" }, cloud);
    assert.match(flow.problems[0]?.message ?? "", /set scope explicitly/, "flow's upstream is its url");
    assert.deepEqual(
      resolveRouteTarget(
        { service: "lcs", upstream: "https://lcs.example.us", scope: "https://lcs.example.us//.default" },
        cloud,
      ).problems,
      [],
    );
  }
  assert.deepEqual(resolveCloud({ authorityHost: "https://login.example:8443/" }), {
    name: "custom",
    authorityHost: "https://login.example:8443",
  });
  assert.deepEqual(
    resolveRouteTarget({ service: "powerapps" }, resolveCloud({ authorityHost: "https://login.example" }))
      .problems,
    [],
  );
  assert.equal(resolveCloud("china").authorityHost, "https://login.chinacloudapi.cn");
  assert.equal(resolveCloud("dod").authorityHost, "https://login.microsoftonline.us");
});

test("default methods: flow is POST only, everything else all but CONNECT and TRACE", () => {
  assert.deepEqual(defaultMethods("flow"), ["POST"]);
  assert.deepEqual(defaultMethods(undefined), ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
});
