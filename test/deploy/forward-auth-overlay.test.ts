// k8s/overlays/forward-auth: Envoy Gateway asks the proxy's forward-auth port for the token. Checks the
// cross-references a typo would silently break: the port from routes.yaml through the container and
// the Service to the SecurityPolicy, the pathPrefix against extAuth.http.path, the headers the gateway
// sends and takes back, the X-Api-Key removal, and that only the gateway may reach the port.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { parseConfig } from "../../src/config/load.ts";
import { type K8sObject, kustomizeLite, parseObjects } from "./kustomize-lite.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const DIR = "k8s/overlays/forward-auth";
const KUBECTL = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;
const objects: K8sObject[] = KUBECTL
  ? parseObjects(execFileSync("kubectl", ["kustomize", join(ROOT, DIR)], { encoding: "utf8" }), DIR)
  : kustomizeLite(join(ROOT, DIR));

// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are read field by field
type Loose = any;
const find = (kind: string, name?: string): Loose => {
  const found = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.ok(found, `${kind}${name ? `/${name}` : ""} is rendered`);
  return found;
};

const secret = parseObjects(readFileSync(join(ROOT, "k8s/base/secret.example.yaml"), "utf8"), "secret")[0]!;
const configMap = objects.find(
  (o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("entra-auth-proxy-config"),
);
const routesYaml = (configMap?.["data"] as Record<string, string> | undefined)?.["routes.yaml"] ?? "";
const { config, issues } = parseConfig(routesYaml, "/etc/entra-auth-proxy/routes.yaml", {
  ...(secret["stringData"] as Record<string, string>),
});

test("core objects are valid Kubernetes objects; routes.yaml loads with a forwardAuth block and an opted-in route", () => {
  for (const obj of objects) {
    const Model = { Deployment, Service, NetworkPolicy, ConfigMap }[obj.kind as "Deployment"];
    if (Model) new Model(obj as never).validate();
  }
  assert.deepEqual(
    issues.filter((i) => i.severity === "error"),
    [],
  );
  assert.ok(config?.forwardAuth, "routes.yaml has a forwardAuth block");
  assert.ok(config.routes.some((r) => r.forwardAuth));
});

test("the forward-auth port runs from routes.yaml through the container and Service to the SecurityPolicy", () => {
  const container = find("Deployment", "entra-auth-proxy").spec.template.spec.containers[0];
  const containerPort = container.ports.find((p: Loose) => p.name === "forward-auth");
  assert.equal(containerPort?.containerPort, config?.forwardAuth?.port);
  const service = find("Service", "entra-auth-proxy");
  const servicePort = service.spec.ports.find((p: Loose) => p.name === "forward-auth");
  assert.equal(servicePort?.targetPort, "forward-auth");
  const policy = find("SecurityPolicy");
  const backend = policy.spec.extAuth.http.backendRefs[0];
  assert.equal(backend.name, service.metadata.name);
  assert.equal(backend.port, servicePort.port);
  assert.equal(policy.spec.extAuth.http.path, config?.forwardAuth?.pathPrefix, "Envoy's path is pathPrefix");
});

test("the gateway sends only the caller's key, address and method overrides, takes back Authorization, and drops X-Api-Key", () => {
  const policy = find("SecurityPolicy");
  const route = find("HTTPRoute");
  assert.deepEqual(policy.spec.targetRefs, [
    { group: "gateway.networking.k8s.io", kind: "HTTPRoute", name: route.metadata.name },
  ]);
  const sent = policy.spec.extAuth.headersToExtAuth.map((h: string) => h.toLowerCase());
  assert.ok(sent.includes("x-api-key"));
  // The proxy holds the route's methods for a tunnelled method too, so it must see the override headers.
  for (const override of ["x-http-method", "x-http-method-override", "x-method-override"]) {
    assert.ok(sent.includes(override), `${override} goes to the proxy`);
  }
  for (const claimed of ["x-original-uri", "x-original-method", "x-forwarded-uri", "x-forwarded-method"]) {
    assert.ok(!sent.includes(claimed), `${claimed} is not passed from the caller`);
  }
  assert.deepEqual(policy.spec.extAuth.http.headersToBackend, ["authorization"]);
  for (const rule of route.spec.rules) {
    const removed = rule.filters
      .filter((f: Loose) => f.type === "RequestHeaderModifier")
      .flatMap((f: Loose) => f.requestHeaderModifier.remove ?? [])
      .map((h: string) => h.toLowerCase());
    assert.ok(removed.includes("x-api-key"), "the caller's key never reaches the upstream");
    for (const match of rule.matches) {
      const served = config?.routes.find((r) => r.prefix === match.path.value);
      assert.ok(served?.forwardAuth, `${match.path.value} is a forwardAuth route`);
    }
  }
});

test("only Envoy Gateway's namespace may reach the forward-auth port", () => {
  const policies = objects.filter((o) => o.kind === "NetworkPolicy") as Loose[];
  const admitting = policies.flatMap((p) =>
    (p.spec.ingress ?? []).filter((rule: Loose) =>
      (rule.ports ?? []).some((port: Loose) => port.port === "forward-auth" || port.port === 8081),
    ),
  );
  assert.equal(admitting.length, 1);
  const namespaces = admitting[0].from.map(
    (peer: Loose) => peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"],
  );
  assert.deepEqual(namespaces, ["envoy-gateway-system"]);
  // A rule without ports would admit every port, the forward-auth one included.
  for (const p of policies) {
    for (const rule of p.spec.ingress ?? [])
      assert.ok(rule.ports?.length > 0, `${p.metadata.name}: a rule names ports`);
  }
});
