// The typed ProxyConfig a valid routes.yaml resolves to, and the defaults it fills in.
import assert from "node:assert/strict";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { parseConfig } from "../../../src/config/load.ts";
import type { ProxyConfig } from "../../../src/config/types.ts";
import { formatConfigIssue } from "../../../src/errors.ts";
import { APP_ID, ENV, errors, KEY_HASH, PUBLIC_APP_ID, TENANT, warnings, withRoutes } from "./helpers.ts";

const FULL = `listen:
  host: 127.0.0.1
  port: 8081
  adminPort: 9091
  publicUrl: https://proxy.contoso.example/
  trustProxy: [10.0.0.0/8, "::1"]
  tls: { certFile: tls/tls.crt, keyFile: /etc/tls/tls.key }
  drainTimeoutMs: 5000
warmup: false
cloud: public
identities:
  platform-app:
    tenantId: \${TENANT_ID}
    clientId: \${CLIENT_ID}
    clientSecret: \${CLIENT_SECRET}
  lcs-user:
    tenantId: \${TENANT_ID}
    clientId: \${LCS_CLIENT_ID}
    user: { username: \${LCS_USERNAME}, passwordFile: secrets/lcs-password }
routes:
  - prefix: /powerplatform/
    service: powerplatform
    identity: platform-app
    methods: [get, Post]
    paths: ["/environmentmanagement/**"]
    timeoutMs: 1000
    maxBodyBytes: 2048
    maxConcurrent: 8
    rewriteLinks: true
    access:
      apiKeys:
        - { name: erp-nightly, sha256: "\${ERP_API_KEY_SHA256}", expires: 2027-06-30 }
        - { name: other, sha256: ${"0".repeat(64)} }
      cidrs: [10.20.0.0/16]
  - prefix: /flows/order-created
    service: flow
    url: https://abc.ef.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/w1/triggers/manual/paths/invoke?api-version=1&x=a%20b
    identity: platform-app
    access: { anonymous: true }
  - prefix: /lcs
    service: lcs
    region: EU
    identity: lcs-user
    access: { cidrs: [192.0.2.7] }
  - prefix: /graph
    upstream: https://graph.microsoft.com/v1.0/
    scope: https://graph.microsoft.com/.default
    identity: platform-app
    access:
      jwt: { issuer: https://login.microsoftonline.com/${TENANT}/v2.0, audience: api://proxy, jwksUri: https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys, requiredRoles: [Proxy.Use] }
`;

test("a full valid config resolves to the expected ProxyConfig", () => {
  const { config, issues } = parseConfig(FULL, "conf/routes.yaml", ENV, { now: Date.UTC(2026, 0, 1) });
  assert.deepEqual(errors(issues), [], issues.map(formatConfigIssue).join("\n"));
  assert.ok(config);
  const dir = resolve("conf");
  const expected: Omit<ProxyConfig, "warnings"> = {
    file: resolve("conf/routes.yaml"),
    consumers: {},
    listen: {
      host: "127.0.0.1",
      port: 8081,
      adminPort: 9091,
      publicUrl: "https://proxy.contoso.example",
      publicHosts: [],
      trustProxy: ["10.0.0.0/8", "::1"],
      tls: { certFile: join(dir, "tls/tls.crt"), keyFile: "/etc/tls/tls.key" },
      drainTimeoutMs: 5000,
    },
    warmup: false,
    health: { readiness: "process" },
    cloud: { name: "public", authorityHost: "https://login.microsoftonline.com" },
    identities: {
      "platform-app": {
        name: "platform-app",
        tenantId: TENANT,
        clientId: APP_ID,
        credential: { kind: "clientSecret", clientSecret: "s3cr3t~value" },
      },
      "lcs-user": {
        name: "lcs-user",
        tenantId: TENANT,
        clientId: PUBLIC_APP_ID,
        credential: {
          kind: "user",
          username: "ops@contoso.example",
          passwordFile: join(dir, "secrets/lcs-password"),
        },
      },
    },
    routes: [
      {
        prefix: "/powerplatform",
        service: "powerplatform",
        identity: "platform-app",
        upstream: "https://api.powerplatform.com",
        scope: "https://api.powerplatform.com/.default",
        methods: ["GET", "POST"],
        paths: ["/environmentmanagement/**"],
        timeoutMs: 1000,
        maxBodyBytes: 2048,
        maxConcurrent: 8,
        rewriteLinks: true,
        forwardAuth: false,
        access: {
          anonymous: false,
          apiKeys: [
            { name: "erp-nightly", sha256: KEY_HASH, expires: new Date("2027-07-01T00:00:00.000Z") },
            { name: "other", sha256: "0".repeat(64) },
          ],
          cidrs: ["10.20.0.0/16"],
        },
      },
      {
        prefix: "/flows/order-created",
        service: "flow",
        identity: "platform-app",
        upstream:
          "https://abc.ef.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/w1/triggers/manual/paths/invoke",
        scope: "https://service.flow.microsoft.com//.default",
        pinnedQuery: [
          ["api-version", "1"],
          ["x", "a b"],
        ],
        methods: ["POST"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        forwardAuth: false,
        access: { anonymous: true },
      },
      {
        prefix: "/lcs",
        service: "lcs",
        region: "eu",
        identity: "lcs-user",
        upstream: "https://lcsapi.eu.lcs.dynamics.com",
        scope: "https://lcsapi.eu.lcs.dynamics.com//.default",
        methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        forwardAuth: false,
        access: { anonymous: false, cidrs: ["192.0.2.7"] },
      },
      {
        prefix: "/graph",
        identity: "platform-app",
        upstream: "https://graph.microsoft.com/v1.0",
        scope: "https://graph.microsoft.com/.default",
        methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        timeoutMs: 30000,
        maxBodyBytes: 104857600,
        maxConcurrent: 256,
        rewriteLinks: false,
        forwardAuth: false,
        access: {
          anonymous: false,
          jwt: {
            issuer: `https://login.microsoftonline.com/${TENANT}/v2.0`,
            audience: "api://proxy",
            jwksUri: `https://login.microsoftonline.com/${TENANT}/discovery/v2.0/keys`,
            requiredRoles: ["Proxy.Use"],
          },
        },
      },
    ],
  };
  const { warnings: configWarnings, ...rest } = config;
  assert.deepEqual(rest, expected);
  // Warnings: anonymous flow route and the Power Platform management-app note, and nothing else.
  assert.deepEqual(
    configWarnings.map((w) => w.path),
    ["routes[0].identity", "routes[1].access.anonymous"],
  );
  assert.deepEqual(warnings(issues), configWarnings);
});

test("defaults: listen, warmup, cloud, route limits and methods", () => {
  const yaml = withRoutes(`  - prefix: /pp
    service: powerplatform
    identity: app
    access: { cidrs: [10.0.0.0/8] }
  - prefix: /flow
    service: flow
    url: https://x.environment.api.powerplatform.com/powerautomate/automations/direct/workflows/1/triggers/manual/paths/invoke
    identity: ops-user
    access: { cidrs: [10.0.0.0/8] }
`);
  const { config, issues } = parseConfig(yaml, "routes.yaml", {});
  assert.deepEqual(errors(issues), []);
  assert.ok(config);
  assert.deepEqual(config.listen, {
    host: "0.0.0.0",
    port: 8080,
    adminPort: 9090,
    publicHosts: [],
    trustProxy: [],
    drainTimeoutMs: 20000,
  });
  assert.equal(config.warmup, true);
  assert.deepEqual(config.cloud, { name: "public", authorityHost: "https://login.microsoftonline.com" });
  const [pp, flow] = config.routes;
  assert.deepEqual(pp?.methods, ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]);
  assert.equal(pp?.timeoutMs, 30000);
  assert.equal(pp?.maxBodyBytes, 104857600);
  assert.equal(pp?.maxConcurrent, 256);
  assert.equal(pp?.rewriteLinks, false);
  assert.deepEqual(flow?.methods, ["POST"]);
  assert.deepEqual(flow?.pinnedQuery, []);
});
