// Deployment artefacts: the Dockerfile and the kustomize trees under k8s/. Renders each tree (with
// `kubectl kustomize`, or test/deploy/kustomize-lite.ts where kubectl is missing), validates every
// object against the Kubernetes schemas, and checks the cross-references a typo would silently break:
// probe and Service ports, the config mount against the image's CMD, the routes.yaml in the ConfigMap
// against the config loader, grace period against drain timeout, selectors against pod labels.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { cp, mkdtemp, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, posix, sep } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Deployment as DeploymentModel } from "kubernetes-models/apps/v1/Deployment";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler";
import { Ingress as IngressModel } from "kubernetes-models/networking.k8s.io/v1/Ingress";
import { NetworkPolicy as NetworkPolicyModel } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Secret } from "kubernetes-models/v1/Secret";
import { Service as ServiceModel } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import picomatch from "picomatch";
import { parse } from "yaml";
import { parseConfig } from "../../src/config/load.ts";
import { lcsEndpoints, resolveCloud, resolveRouteTarget } from "../../src/config/presets.ts";
import type { ProxyConfig } from "../../src/config/types.ts";
import { type K8sObject, kustomizeLite, parseObjects } from "./kustomize-lite.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const read = (path: string) => readFileSync(join(ROOT, path), "utf8");

// ---------------------------------------------------------------------------------------------
// Rendering and schema validation

const KUBECTL = spawnSync("kubectl", ["version", "--client"], { stdio: "ignore" }).status === 0;

const rendered = new Map<string, K8sObject[]>();
function render(dir: string): K8sObject[] {
  let objects = rendered.get(dir);
  if (!objects) {
    objects = KUBECTL
      ? parseObjects(execFileSync("kubectl", ["kustomize", join(ROOT, dir)], { encoding: "utf8" }), dir)
      : kustomizeLite(join(ROOT, dir));
    rendered.set(dir, objects);
  }
  return structuredClone(objects); // tests may sort or edit what they get
}

type ModelClass = new (data: never) => { validate(): void };
const MODELS: Record<string, ModelClass> = {
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": ServiceModel,
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": DeploymentModel,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicyModel,
  "networking.k8s.io/v1/Ingress": IngressModel,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};

/**
 * Gateway API's HTTPRoute has no model package among the dependencies: the fields used here are
 * checked against the v1 CRD's rules by hand (required keys, enums, the Duration pattern).
 */
function validateHttpRoute(obj: K8sObject): void {
  const spec = obj["spec"] as HttpRoute["spec"];
  assert.ok(
    spec.parentRefs.length > 0 && spec.parentRefs.every((p) => typeof p.name === "string"),
    "parentRefs",
  );
  for (const h of spec.hostnames ?? [])
    assert.match(h, /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
  for (const rule of spec.rules) {
    for (const m of rule.matches ?? [])
      assert.ok(["Exact", "PathPrefix", "RegularExpression"].includes(m.path?.type ?? "PathPrefix"));
    for (const b of rule.backendRefs) {
      assert.equal(typeof b.name, "string");
      assert.ok(
        Number.isInteger(b.port) && b.port > 0 && b.port < 65536,
        "backendRefs[].port is required for a Service",
      );
    }
    for (const d of Object.values(rule.timeouts ?? {}))
      assert.match(d, /^([0-9]{1,5}(h|m|s|ms)){1,4}$/, `Duration ${d}`);
  }
}

function validateSchema(obj: K8sObject): void {
  if (`${obj.apiVersion}/${obj.kind}` === "gateway.networking.k8s.io/v1/HTTPRoute") {
    validateHttpRoute(obj);
    return;
  }
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
  assert.ok(Model, `${obj.apiVersion} ${obj.kind}: no schema here; add its model to MODELS`);
  try {
    new Model(obj as never).validate();
  } catch (err) {
    const details = (err as { errors?: unknown }).errors;
    assert.fail(`${obj.kind}/${obj.metadata.name}: ${(err as Error).message} ${JSON.stringify(details)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// The few object shapes the cross-checks read

type Labels = Record<string, string>;
type PortRef = string | number;
interface Probe {
  httpGet?: { path: string; port: PortRef };
}
interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[] };
  seccompProfile?: { type: string };
}
interface Container {
  name: string;
  args?: string[];
  ports?: { name?: string; containerPort: number; protocol?: string }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface PodSpec {
  serviceAccountName?: string;
  terminationGracePeriodSeconds?: number;
  securityContext?: SecurityContext;
  topologySpreadConstraints?: { labelSelector?: { matchLabels?: Labels } }[];
  containers: Container[];
  volumes?: {
    name: string;
    configMap?: { name: string; items?: { key: string; path: string }[] };
    secret?: { secretName: string; items?: { key: string; path: string }[] };
    emptyDir?: object;
  }[];
}
interface Deployment extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Labels };
    template: { metadata: { labels: Labels }; spec: PodSpec };
  };
}
interface Service extends K8sObject {
  spec: { selector: Labels; ports: { name?: string; port: number; targetPort?: PortRef }[] };
}
interface NetworkPolicyPeer {
  namespaceSelector?: { matchLabels?: Labels };
  podSelector?: { matchLabels?: Labels };
}
interface NetworkPolicyPort {
  port?: PortRef;
  protocol?: string;
}
interface NetworkPolicy extends K8sObject {
  spec: {
    podSelector: { matchLabels: Labels };
    policyTypes: string[];
    ingress?: { from?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
    egress?: { to?: NetworkPolicyPeer[]; ports?: NetworkPolicyPort[] }[];
  };
}
interface Ingress extends K8sObject {
  spec: {
    ingressClassName?: string;
    tls?: { hosts?: string[]; secretName?: string }[];
    rules: {
      host?: string;
      http: { paths: { backend: { service: { name: string; port: { name?: string; number?: number } } } }[] };
    }[];
  };
}

interface HttpRoute extends K8sObject {
  spec: {
    parentRefs: { name: string; namespace?: string; sectionName?: string }[];
    hostnames?: string[];
    rules: {
      matches?: { path?: { type?: string; value?: string } }[];
      backendRefs: { name: string; port: number }[];
      timeouts?: { request?: string; backendRequest?: string };
    }[];
  };
}

/** Gateway API Duration ("130s", "2m10s") in seconds. */
function durationSeconds(d: string): number {
  let total = 0;
  for (const [, n, unit] of d.matchAll(/([0-9]+)(h|ms|m|s)/g)) {
    total += Number(n) * { h: 3600, m: 60, s: 1, ms: 0.001 }[unit as "h" | "m" | "s" | "ms"];
  }
  return total;
}

function find<T extends K8sObject>(objects: K8sObject[], kind: string, name?: string): T {
  const matches = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  assert.equal(matches.length, 1, `expected exactly one ${kind}${name ? `/${name}` : ""}`);
  return matches[0] as T;
}

const containerOf = (d: Deployment): Container => {
  assert.equal(d.spec.template.spec.containers.length, 1, "one container");
  return d.spec.template.spec.containers[0]!;
};

/** The container port a probe, Service or NetworkPolicy refers to, by name or number. */
function containerPort(c: Container, ref: PortRef | undefined): number | undefined {
  return c.ports?.find((p) => (typeof ref === "number" ? p.containerPort === ref : p.name === ref))
    ?.containerPort;
}

const selects = (selector: Labels | undefined, labels: Labels) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels[k] === v);

// ---------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

function parseDockerfile(text: string): Instruction[] {
  let stage = -1;
  return text
    .replace(/\\\r?\n/g, " ") // line continuations
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const [, op = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
      if (op.toUpperCase() === "FROM") stage++;
      return { op: op.toUpperCase(), args, stage };
    });
}

const dockerfile = parseDockerfile(read("Dockerfile"));
const finalStage = dockerfile.filter((i) => i.stage === Math.max(...dockerfile.map((d) => d.stage)));
const jsonArgs = (op: string): string[] => {
  const found = finalStage.filter((i) => i.op === op);
  assert.equal(found.length, 1, `one ${op} in the final stage`);
  return JSON.parse(found[0]!.args) as string[];
};
/** The routes.yaml path the image serves by default: CMD's --config (the Deployment passes no args). */
const CONFIG_PATH = (() => {
  const cmd = jsonArgs("CMD");
  return cmd[cmd.indexOf("--config") + 1]!;
})();
const IMAGE_UID = Number(/^(\d+)/.exec(finalStage.findLast((i) => i.op === "USER")?.args ?? "")?.[1]);

/** .dockerignore in Docker's sense, reduced: the last matching rule wins, a rule on a folder covers its contents. */
function dockerIgnored(path: string): boolean {
  const rules = read(".dockerignore")
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => {
      const negate = l.startsWith("!");
      const pattern = (negate ? l.slice(1) : l).replace(/^\/+|\/+$/g, "");
      return { negate, match: picomatch(pattern, { dot: true }) };
    });
  const parts = posix.normalize(path).replace(/\/+$/, "").split("/");
  const selfAndParents = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
  let ignored = false;
  for (const rule of rules) if (selfAndParents.some((p) => rule.match(p))) ignored = !rule.negate;
  return ignored;
}

describe("Dockerfile", () => {
  test("every FROM pins its image: node stages an exact Node 24, the final stage the same Debian release", () => {
    const stageNames = new Set<string>();
    const froms = dockerfile.filter((i) => i.op === "FROM");
    assert.ok(froms.length >= 2, "multi-stage");
    const codenames = new Set<string>();
    for (const { args } of froms) {
      const [image = "", , alias] = args.replace(/--platform=\S+\s+/, "").split(/\s+/);
      if (!stageNames.has(image)) {
        const node = /^node:24\.\d+\.\d+-([a-z]+)-slim(@sha256:[0-9a-f]{64})?$/.exec(image);
        const debian = /^debian:([a-z]+)-slim(@sha256:[0-9a-f]{64})?$/.exec(image);
        assert.ok(
          node || debian,
          `FROM ${args}: an exact node:24.x.y-<release>-slim, or debian:<release>-slim`,
        );
        codenames.add((node ?? debian)![1]!);
      }
      if (alias) stageNames.add(alias);
    }
    // The node binary is copied onto Debian: the same release means the same glibc and libstdc++.
    assert.equal(codenames.size, 1, `one Debian release: ${[...codenames].join(", ")}`);
  });

  test("the final stage ships node and /app only: no npm, npx, yarn or corepack", () => {
    const base = finalStage.find((i) => i.op === "FROM")!.args;
    assert.match(base, /^debian:/, "not the node image, which carries npm, yarn and corepack");
    const copied = finalStage
      .filter((i) => i.op === "COPY" && /--from=/.test(i.args))
      .map((i) => i.args.replace(/--\S+\s+/g, "").split(/\s+/)[0]);
    assert.deepEqual(copied.sort(), ["/app", "/usr/local/bin/node"]);
    assert.doesNotMatch(finalStage.map((i) => i.args).join("\n"), /\b(npm|npx|yarn|corepack)\b/);
  });

  test("OCI labels name the image, its version (package.json's) and licence", () => {
    const pkg = JSON.parse(read("package.json")) as { version: string; license: string };
    const labels = finalStage
      .filter((i) => i.op === "LABEL")
      .map((i) => i.args)
      .join(" ");
    const label = (key: string) =>
      new RegExp(`org\\.opencontainers\\.image\\.${key}="([^"]*)"`).exec(labels)?.[1];
    assert.equal(label("title"), "entra-auth-proxy");
    assert.ok(label("description"));
    assert.equal(label("licenses"), pkg.license);
    assert.equal(label("version"), "${VERSION}");
    const arg = finalStage.find((i) => i.op === "ARG" && i.args.startsWith("VERSION="));
    assert.equal(arg?.args, `VERSION=${pkg.version}`, "the default VERSION is package.json's");
  });

  test("the image holds every module `serve`, `check`, `token` and `hash-key` load, and not the demo", () => {
    // Follows static and dynamic relative imports from the CLI entry, except the demo command's.
    const reachable = new Set<string>();
    const visit = (file: string) => {
      if (reachable.has(file)) return;
      reachable.add(file);
      const text = read(file);
      for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)"(\.{1,2}\/[^"]+\.ts)"/g)) {
        const target = posix.normalize(posix.join(posix.dirname(file), m[1]!));
        if (target === "src/commands/demo.ts") continue;
        visit(target);
      }
    };
    visit("src/main.ts");
    assert.ok(reachable.has("src/server/start.ts") && reachable.has("src/commands/check.ts"));
    for (const file of reachable)
      assert.ok(!dockerIgnored(file), `${file} is needed but left out of the image`);
    for (const file of ["src/demo/emulator.ts", "src/demo/upstreams.ts", "src/commands/demo.ts"]) {
      assert.ok(dockerIgnored(file), `${file} stays out of the image`);
    }
  });

  test("laid out as the image lays out /app (demo left out), serve, check, token and hash-key still load", async (t) => {
    const app = await mkdtemp(join(tmpdir(), "eap-image-"));
    t.after(() => rm(app, { recursive: true, force: true }));
    await cp(join(ROOT, "bin"), join(app, "bin"), { recursive: true });
    await cp(join(ROOT, "src"), join(app, "src"), {
      recursive: true,
      filter: (from) => !dockerIgnored(posix.relative(ROOT, from.split(sep).join("/"))),
    });
    await cp(join(ROOT, "package.json"), join(app, "package.json"));
    await symlink(join(ROOT, "node_modules"), join(app, "node_modules"));
    assert.ok(!existsSync(join(app, "src/demo")), "the demo is not in the image");
    for (const args of [["serve", "--help"], ["check", "--help"], ["token", "--help"], ["hash-key"]]) {
      const run = spawnSync(process.execPath, [join(app, "bin/entra-auth-proxy.js"), ...args], {
        encoding: "utf8",
        env: { PATH: process.env.PATH ?? "" },
      });
      assert.equal(run.status, 0, `${args.join(" ")}: ${run.stderr}`);
    }
  });

  test("the final stage runs as a numeric non-root user with NODE_ENV=production", () => {
    const user = finalStage.findLast((i) => i.op === "USER");
    assert.match(user?.args ?? "", /^\d+(:\d+)?$/, "numeric USER (runAsNonRoot can only verify numbers)");
    assert.ok(IMAGE_UID > 0, "not root");
    assert.ok(
      finalStage.some((i) => i.op === "ENV" && /\bNODE_ENV=production\b/.test(i.args)),
      "ENV NODE_ENV=production",
    );
  });

  test("NODE_OPTIONS caps the young generation, and Node accepts it and applies it", () => {
    const env = finalStage.find((i) => i.op === "ENV" && i.args.startsWith("NODE_OPTIONS="));
    const value = /^NODE_OPTIONS="([^"]*)"$/.exec(env?.args ?? "")?.[1];
    assert.ok(value, 'ENV NODE_OPTIONS="…" in the final stage');
    assert.match(value, /--max-semi-space-size=\d+/);
    // Objects that survive a scavenge or two make V8 grow the new space: to 128 MiB on Node's defaults
    // on a 24 GiB host. With the cap it stays near 2 × the semi-space size, but V8 reports a few pages
    // more now and then (17–19 MiB seen under load with a cap of 8), so the bound leaves a quarter of
    // room and still fails without the cap.
    const probe = (nodeOptions: string): number => {
      const run = spawnSync(
        process.execPath,
        [
          "-e",
          `const v8 = require("node:v8"); let keep = []; let max = 0;
           for (let i = 0; i < 2e7; i++) {
             keep.push({ i });
             if (keep.length > 3e5) keep = [];
             if ((i & 0xffff) === 0) {
               const space = v8.getHeapSpaceStatistics().find((s) => s.space_name === "new_space");
               max = Math.max(max, space.space_size);
             }
           }
           console.log(max);`,
        ],
        { env: { ...process.env, NODE_OPTIONS: nodeOptions }, encoding: "utf8" },
      );
      assert.equal(run.status, 0, run.stderr);
      return Number(run.stdout);
    };
    const semiSpaceMiB = Number(/--max-semi-space-size=(\d+)/.exec(value)![1]);
    const capped = probe(value);
    const uncapped = probe("");
    assert.ok(capped <= 2.5 * semiSpaceMiB * 1024 * 1024, `new space ${capped} bytes with ${value}`);
    assert.ok(capped * 2 <= uncapped, `new space ${capped} bytes with the cap, ${uncapped} without`);
  });

  test("dependencies are installed without dev dependencies, and the node binary package is dev-only", () => {
    // Every stage counts: the final stage copies node_modules from the build stage.
    const installs = dockerfile.filter((i) => i.op === "RUN" && /\bnpm\s+(ci|install|i)\b/.test(i.args));
    assert.ok(installs.length > 0, "an npm ci");
    for (const i of installs) assert.match(i.args, /--omit=dev\b/, i.args);
    const lock = JSON.parse(read("package-lock.json")) as { packages: Record<string, { dev?: boolean }> };
    assert.equal(
      lock.packages["node_modules/node"]?.dev,
      true,
      "the `node` package must stay a devDependency",
    );
  });

  test("entrypoint, command, healthcheck and ports", () => {
    assert.deepEqual(jsonArgs("ENTRYPOINT"), ["entra-auth-proxy"]);
    assert.deepEqual(jsonArgs("CMD"), ["serve", "--config", "/etc/entra-auth-proxy/routes.yaml"]);
    // `entra-auth-proxy` resolves on PATH to the package's bin launcher inside /app.
    const bin = (JSON.parse(read("package.json")) as { bin: Record<string, string> }).bin[
      "entra-auth-proxy"
    ]!;
    const link = `ln -s ${posix.join("/app", bin)} /usr/local/bin/entra-auth-proxy`;
    assert.ok(
      finalStage.some((i) => i.op === "RUN" && i.args.includes(link)),
      `the final stage runs ${link}`,
    );
    assert.match(read(bin), /^#!\/usr\/bin\/env node\n/);
    const health = finalStage.find((i) => i.op === "HEALTHCHECK");
    assert.match(health?.args ?? "", /CMD .*http:\/\/127\.0\.0\.1:9090\/healthz/);
    const exposed = finalStage.filter((i) => i.op === "EXPOSE").flatMap((i) => i.args.split(/\s+/));
    assert.deepEqual(exposed.sort(), ["8080", "9090"]);
  });

  test("every COPY source exists and is in the build context; dist/ and node_modules are not", () => {
    for (const { args } of dockerfile.filter((i) => i.op === "COPY" && !/--from=/.test(i.args))) {
      const sources = args.split(/\s+/).filter((a) => !a.startsWith("--"));
      for (const src of sources.slice(0, -1)) {
        assert.ok(existsSync(join(ROOT, src)), `COPY ${src}: missing in the repository`);
        assert.ok(!dockerIgnored(src), `COPY ${src}: excluded by .dockerignore`);
      }
    }
    // dist/ especially: the launcher prefers a (possibly stale) dist/main.js over src/.
    for (const path of [
      "dist/main.js",
      "node_modules/yaml",
      ".git",
      "test/unit",
      "docs",
      "test-results",
      ".env",
    ]) {
      assert.ok(dockerIgnored(path), `${path} must be excluded by .dockerignore`);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Kubernetes

const exampleSecret = parseObjects(read("k8s/base/secret.example.yaml"), "secret.example.yaml")[0]!;
const exampleSecretData = exampleSecret["stringData"] as Record<string, string>;

/** The environment the container would see: its env, the example Secret, and the webhook's variables. */
function containerEnv(d: Deployment): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const e of containerOf(d).env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    env[e.name] = ref ? exampleSecretData[ref.key] : e.value;
  }
  if (d.spec.template.metadata.labels["azure.workload.identity/use"] === "true") {
    Object.assign(env, {
      AZURE_TENANT_ID: "00000000-0000-0000-0000-000000000000",
      AZURE_CLIENT_ID: "00000000-0000-0000-0000-000000000000",
      AZURE_FEDERATED_TOKEN_FILE: "/var/run/secrets/azure/tokens/azure-identity-token",
      AZURE_AUTHORITY_HOST: "https://login.microsoftonline.com/",
    });
  }
  return env;
}

/** routes.yaml as mounted at CONFIG_PATH, loaded with the project's own config loader. */
function mountedConfig(objects: K8sObject[]): { text: string; config: ProxyConfig } {
  const d = find<Deployment>(objects, "Deployment");
  const c = containerOf(d);
  assert.equal(c.args, undefined, "no args: the image's CMD (and its --config) applies");
  const dir = posix.dirname(CONFIG_PATH);
  const mount = c.volumeMounts?.find((m) =>
    m.subPath === undefined ? m.mountPath === dir : m.mountPath === CONFIG_PATH,
  );
  assert.ok(mount, `a volume mounted at ${dir}`);
  const volume = d.spec.template.spec.volumes?.find((v) => v.name === mount.name);
  assert.ok(volume?.configMap, `volume ${mount.name} is a ConfigMap`);
  const fileName = mount.subPath ?? posix.basename(CONFIG_PATH);
  const key = volume.configMap.items
    ? volume.configMap.items.find((i) => i.path === fileName)?.key
    : fileName;
  assert.ok(key, `the ConfigMap volume projects ${fileName}`);
  const cm = find(objects, "ConfigMap", volume.configMap.name);
  const text = (cm["data"] as Record<string, string>)[key];
  assert.ok(text, `ConfigMap ${cm.metadata.name} has key ${key}`);

  const { config, issues } = parseConfig(text, CONFIG_PATH, containerEnv(d), {
    now: Date.parse("2026-01-01"),
  });
  assert.deepEqual(
    issues.filter((i) => i.severity === "error").map((i) => `${i.location} ${i.path}: ${i.message}`),
    [],
  );
  assert.ok(config);
  return { text, config };
}

/** Checks every tree that contains the proxy Deployment. */
function checkWorkload(dir: string, options: { proxyFrom: string } = { proxyFrom: "ingress-nginx" }): void {
  const objects = () => render(dir);
  const deployment = () => find<Deployment>(objects(), "Deployment", "entra-auth-proxy");
  const podLabels = () => deployment().spec.template.metadata.labels;

  test("every object is valid against its Kubernetes schema, and names are unique", () => {
    for (const obj of objects()) validateSchema(obj);
    const ids = objects().map((o) => `${o.kind}/${o.metadata.name}`);
    assert.deepEqual(ids, [...new Set(ids)]);
  });

  test("the Deployment selects its own pods and uses the ServiceAccount it ships", () => {
    const d = deployment();
    assert.ok(selects(d.spec.selector.matchLabels, podLabels()));
    find(objects(), "ServiceAccount", d.spec.template.spec.serviceAccountName);
  });

  test("the HPA owns the replica count: no replicas on the Deployment, at least two from the HPA", () => {
    // replicas beside an HPA is reset on every apply, scaling a busy Deployment down until the HPA reacts.
    assert.equal(deployment().spec.replicas, undefined);
    const hpa = find(objects(), "HorizontalPodAutoscaler")["spec"] as { minReplicas: number };
    assert.ok(hpa.minReplicas >= 2, "at least two replicas");
  });

  test("routes.yaml is mounted at the image's --config path and passes the config loader", () => {
    const { config } = mountedConfig(objects());
    const c = containerOf(deployment());
    assert.equal(containerPort(c, "proxy"), config.listen.port, "containerPort proxy = listen.port");
    assert.equal(
      containerPort(c, "admin"),
      config.listen.adminPort,
      "containerPort admin = listen.adminPort",
    );
    assert.ok(["0.0.0.0", "::"].includes(config.listen.host), "listens on the pod IP, not loopback");
  });

  test("probes use the admin port: liveness /healthz, readiness /readyz", () => {
    const c = containerOf(deployment());
    const { config } = mountedConfig(objects());
    assert.equal(c.livenessProbe?.httpGet?.path, "/healthz");
    assert.equal(c.readinessProbe?.httpGet?.path, "/readyz");
    assert.equal(containerPort(c, c.livenessProbe?.httpGet?.port), config.listen.adminPort);
    assert.equal(containerPort(c, c.readinessProbe?.httpGet?.port), config.listen.adminPort);
  });

  test("the grace period outlasts preStop plus listen.drainTimeoutMs", () => {
    const spec = deployment().spec.template.spec;
    const { config } = mountedConfig(objects());
    const preStopMs = (containerOf(deployment()).lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
    const graceMs = (spec.terminationGracePeriodSeconds ?? 30) * 1000;
    assert.ok(
      graceMs > preStopMs + config.listen.drainTimeoutMs,
      `${graceMs} ms grace > ${preStopMs} ms preStop + ${config.listen.drainTimeoutMs} ms drain`,
    );
  });

  test("pod and container are locked down: non-root (the image's uid), read-only root, no capabilities", () => {
    const spec = deployment().spec.template.spec;
    const c = containerOf(deployment());
    const pod = spec.securityContext ?? {};
    const ctr = c.securityContext ?? {};
    assert.equal(ctr.runAsNonRoot ?? pod.runAsNonRoot, true);
    assert.equal(ctr.runAsUser ?? pod.runAsUser, IMAGE_UID, "runAsUser is the Dockerfile's USER");
    assert.equal(ctr.readOnlyRootFilesystem, true);
    assert.equal(ctr.allowPrivilegeEscalation, false);
    assert.deepEqual(ctr.capabilities?.drop, ["ALL"]);
    assert.equal((ctr.seccompProfile ?? pod.seccompProfile)?.type, "RuntimeDefault");
    const tmp = c.volumeMounts?.find((m) => m.mountPath === "/tmp");
    assert.ok(tmp && spec.volumes?.find((v) => v.name === tmp.name)?.emptyDir, "an emptyDir at /tmp");
    assert.ok(c.resources?.requests?.["cpu"] && c.resources.limits?.["memory"], "requests and limits");
    for (const t of spec.topologySpreadConstraints ?? []) {
      assert.ok(selects(t.labelSelector?.matchLabels, podLabels()), "topology spread counts these pods");
    }
  });

  test("Secret references (env and volumes) are covered by the example Secret", () => {
    for (const e of containerOf(deployment()).env ?? []) {
      const ref = e.valueFrom?.secretKeyRef;
      if (!ref) continue;
      assert.equal(ref.name, exampleSecret.metadata.name, `${e.name}: Secret name`);
      assert.ok(ref.key in exampleSecretData, `${e.name}: key ${ref.key} in secret.example.yaml`);
    }
    for (const v of deployment().spec.template.spec.volumes ?? []) {
      if (!v.secret) continue;
      assert.equal(v.secret.secretName, exampleSecret.metadata.name, `volume ${v.name}: Secret name`);
      for (const item of v.secret.items ?? [])
        assert.ok(item.key in exampleSecretData, `volume ${v.name}: key ${item.key}`);
    }
  });

  test("no secret in the environment: a client secret is only ever a mounted file", () => {
    for (const e of containerOf(deployment()).env ?? []) {
      assert.doesNotMatch(
        e.name,
        /SECRET|PASSWORD/,
        `${e.name} must be a file (clientSecretFile, passwordFile)`,
      );
    }
  });

  test("the Service selects the pods and targets container ports", () => {
    const svc = find<Service>(objects(), "Service", "entra-auth-proxy");
    assert.ok(selects(svc.spec.selector, podLabels()));
    const c = containerOf(deployment());
    for (const p of svc.spec.ports) {
      assert.ok(
        containerPort(c, p.targetPort ?? p.port),
        `Service port ${p.name}: targetPort ${p.targetPort}`,
      );
    }
    assert.deepEqual(svc.spec.ports.map((p) => p.name).sort(), ["admin", "proxy"]);
  });

  test("PDB and HPA target the Deployment", () => {
    const pdb = find(objects(), "PodDisruptionBudget");
    const pdbSpec = pdb["spec"] as { minAvailable: number; selector: { matchLabels: Labels } };
    assert.ok(selects(pdbSpec.selector.matchLabels, podLabels()));
    const hpa = find(objects(), "HorizontalPodAutoscaler")["spec"] as {
      scaleTargetRef: object;
      minReplicas: number;
      metrics: { resource?: { name: string; target: { type: string } } }[];
    };
    assert.deepEqual(hpa.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "entra-auth-proxy",
    });
    assert.ok(hpa.minReplicas >= 2);
    assert.ok(pdbSpec.minAvailable < hpa.minReplicas, "a pod can still be evicted");
    // The schema has no enum here; the API server would reject a misspelt "Utilization".
    assert.deepEqual(
      hpa.metrics.map((m) => [m.resource?.name, m.resource?.target.type]),
      [["cpu", "Utilization"]],
    );
    assert.ok(containerOf(deployment()).resources?.requests?.["cpu"], "CPU utilisation needs a CPU request");
  });

  test(`the NetworkPolicy selects the pods: proxy port from ${options.proxyFrom}, admin from monitoring, DNS and 443 out`, () => {
    const np = find<NetworkPolicy>(objects(), "NetworkPolicy");
    assert.ok(selects(np.spec.podSelector.matchLabels, podLabels()));
    assert.deepEqual(np.spec.policyTypes.toSorted(), ["Egress", "Ingress"]);
    const c = containerOf(deployment());
    const { config } = mountedConfig(objects());
    const allowedFrom = (namespace: string) =>
      (np.spec.ingress ?? [])
        .filter((r) =>
          r.from?.some(
            (f) =>
              f.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === namespace &&
              !f.podSelector,
          ),
        )
        .flatMap((r) => r.ports ?? [])
        .map((p) => containerPort(c, p.port));
    assert.deepEqual(allowedFrom(options.proxyFrom), [config.listen.port]);
    assert.deepEqual(allowedFrom("monitoring"), [config.listen.adminPort]);
    for (const rule of np.spec.ingress ?? []) {
      for (const p of rule.ports ?? []) assert.ok(containerPort(c, p.port), `ingress port ${p.port} exists`);
    }
    const egress = (np.spec.egress ?? []).flatMap((r) =>
      (r.ports ?? []).map((p) => `${p.protocol}/${p.port}`),
    );
    assert.deepEqual(egress.sort(), ["TCP/443", "TCP/53", "UDP/53"]);
  });
}

describe("k8s/base", () => {
  checkWorkload("k8s/base");

  test("renders the expected objects; the Secret is only an example", () => {
    assert.deepEqual(
      render("k8s/base")
        .map((o) => o.kind)
        .sort(),
      [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
      ],
    );
    const sa = find(render("k8s/base"), "ServiceAccount");
    assert.equal(sa["automountServiceAccountToken"], false);
  });

  test("the example Secret is a valid Secret with clearly marked placeholder values", () => {
    validateSchema(exampleSecret);
    assert.match(exampleSecret.metadata.annotations?.["entra-auth-proxy/example"] ?? "", /placeholder/);
    assert.deepEqual(Object.keys(exampleSecretData).sort(), ["CLIENT_ID", "CLIENT_SECRET", "TENANT_ID"]);
    assert.match(read("k8s/base/secret.example.yaml"), /REPLACE/);
  });

  test("the routes.yaml reads the client secret from the Secret's mounted file; a placeholder API key hash", () => {
    const objects = render("k8s/base");
    const { config } = mountedConfig(objects);
    const credential = config.identities["platform-app"]?.credential;
    assert.equal(credential?.kind, "clientSecretFile");
    const file = (credential as { clientSecretFile: string }).clientSecretFile;
    // The file is the CLIENT_SECRET key of the Secret volume mounted at its directory.
    const d = find<Deployment>(objects, "Deployment");
    const mount = containerOf(d).volumeMounts?.find((m) => m.mountPath === posix.dirname(file));
    const volume = d.spec.template.spec.volumes?.find((v) => v.name === mount?.name);
    assert.equal(volume?.secret?.secretName, exampleSecret.metadata.name);
    assert.deepEqual(volume?.secret?.items, [{ key: "CLIENT_SECRET", path: posix.basename(file) }]);
    const pod = d.spec.template.spec.securityContext as SecurityContext & { fsGroup?: number };
    assert.equal(pod.fsGroup, IMAGE_UID, "the secret file's group is the proxy's (mode 0440)");
    assert.deepEqual(
      config.routes.flatMap((r) => r.access.apiKeys ?? []).map((k) => k.sha256),
      ["0".repeat(64)],
    );
  });
});

describe("k8s/overlays/workload-identity", () => {
  const dir = "k8s/overlays/workload-identity";
  checkWorkload(dir);

  test("pods carry the webhook label and the ServiceAccount names the identity", () => {
    const d = find<Deployment>(render(dir), "Deployment");
    assert.equal(d.spec.template.metadata.labels["azure.workload.identity/use"], "true");
    assert.ok(!("azure.workload.identity/use" in d.spec.selector.matchLabels), "the selector is immutable");
    const sa = find(render(dir), "ServiceAccount", d.spec.template.spec.serviceAccountName);
    assert.match(sa.metadata.annotations?.["azure.workload.identity/client-id"] ?? "", /^[0-9a-f-]{36}$/);
  });

  test("no client secret: no Secret-backed env, and the identity is workloadIdentity", () => {
    const d = find<Deployment>(render(dir), "Deployment");
    assert.equal(containerOf(d).env, undefined, "no env at all (not even a leftover env: [])");
    assert.ok(!d.spec.template.spec.volumes?.some((v) => v.secret), "no Secret volume");
    assert.ok(!render(dir).some((o) => o.kind === "Secret"));
    const { text, config } = mountedConfig(render(dir));
    assert.doesNotMatch(text, /clientSecret/);
    const identity = config.identities["platform-app"];
    assert.equal(identity?.credential.kind, "workloadIdentity");
    assert.equal(identity.tenantId, "00000000-0000-0000-0000-000000000000", "from AZURE_TENANT_ID");
  });

  test("its routes.yaml is the base's except for the identities", () => {
    const withoutIdentities = (path: string) => {
      const { identities, ...rest } = parse(read(path)) as Record<string, unknown>;
      return { rest, identities };
    };
    const base = withoutIdentities("k8s/base/routes.yaml");
    const overlay = withoutIdentities(`${dir}/routes.yaml`);
    assert.deepEqual(overlay.rest, base.rest);
    assert.deepEqual(overlay.identities, { "platform-app": { workloadIdentity: {} } });
  });
});

describe("k8s/overlays/ingress", () => {
  const dir = "k8s/overlays/ingress";
  checkWorkload(dir);

  test("the Ingress (class nginx, TLS) routes its host to the proxy Service port", () => {
    const ingress = find<Ingress>(render(dir), "Ingress");
    assert.equal(ingress.spec.ingressClassName, "nginx");
    const tlsHosts = (ingress.spec.tls ?? []).flatMap((t) => (t.secretName ? (t.hosts ?? []) : []));
    for (const rule of ingress.spec.rules) {
      assert.ok(rule.host && tlsHosts.includes(rule.host), `TLS for ${rule.host}`);
      for (const { backend } of rule.http.paths) {
        const svc = find<Service>(render(dir), "Service", backend.service.name);
        const port = svc.spec.ports.find((p) =>
          backend.service.port.name
            ? p.name === backend.service.port.name
            : p.port === backend.service.port.number,
        );
        assert.equal(port?.name, "proxy", "the backend is the proxy port, never admin");
      }
    }
  });

  test("nginx waits longer than the routes' timeoutMs and the flows guide's 130 s", () => {
    const annotations = find<Ingress>(render(dir), "Ingress").metadata.annotations ?? {};
    const { config } = mountedConfig(render(dir));
    for (const key of ["proxy-read-timeout", "proxy-send-timeout"]) {
      const seconds = Number(annotations[`nginx.ingress.kubernetes.io/${key}`] ?? 60);
      assert.ok(seconds >= 130, `${key} ${seconds}`);
      assert.ok(seconds * 1000 >= Math.max(...config.routes.map((r) => r.timeoutMs)), key);
    }
  });

  test("nginx accepts the bodies the routes accept", () => {
    const ingress = find<Ingress>(render(dir), "Ingress");
    const size = ingress.metadata.annotations?.["nginx.ingress.kubernetes.io/proxy-body-size"] ?? "1m";
    const [, n = "0", unit = ""] = /^(\d+)([kmg]?)$/i.exec(size) ?? [];
    const bytes = Number(n) * ({ "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[unit.toLowerCase()] ?? 0);
    const { config } = mountedConfig(render(dir));
    assert.ok(bytes >= Math.max(...config.routes.map((r) => r.maxBodyBytes)), `proxy-body-size ${size}`);
  });
});

describe("k8s/overlays/gateway (recommended)", () => {
  const dir = "k8s/overlays/gateway";
  checkWorkload(dir, { proxyFrom: "gateway-system" });

  test("the HTTPRoute sends its host to the proxy Service port, never admin, with 130 s timeouts", () => {
    const route = find<HttpRoute>(render(dir), "HTTPRoute");
    assert.ok((route.spec.hostnames ?? []).length > 0);
    const { config } = mountedConfig(render(dir));
    for (const rule of route.spec.rules) {
      for (const b of rule.backendRefs) {
        const svc = find<Service>(render(dir), "Service", b.name);
        assert.equal(
          svc.spec.ports.find((p) => p.port === b.port)?.name,
          "proxy",
          "the backend is the proxy port",
        );
      }
      for (const d of [rule.timeouts?.request, rule.timeouts?.backendRequest]) {
        assert.ok(d !== undefined && durationSeconds(d) >= 130, `timeout ${d}`);
        assert.ok(durationSeconds(d) * 1000 >= Math.max(...config.routes.map((r) => r.timeoutMs)));
      }
    }
  });

  test("the README recommends it over the Ingress overlay", () => {
    assert.match(read("k8s/README.md"), /overlays\/gateway\/`[^\n]*recommended/i);
  });
});

describe("k8s/examples", () => {
  const base = render("k8s/base");
  const podLabels = find<Deployment>(base, "Deployment").spec.template.metadata.labels;

  test("managed identity: a NetworkPolicy for the pods that opens 169.254.169.254:80 and nothing else", () => {
    const [np] = parseObjects(
      read("k8s/examples/networkpolicy-managed-identity.yaml"),
      "mi",
    ) as NetworkPolicy[];
    validateSchema(np!);
    assert.ok(selects(np!.spec.podSelector.matchLabels, podLabels));
    assert.deepEqual(np!.spec.policyTypes, ["Egress"]);
    assert.deepEqual(np!.spec.egress, [
      { to: [{ ipBlock: { cidr: "169.254.169.254/32" } }], ports: [{ port: 80, protocol: "TCP" }] },
    ]);
    // The base's own policy does not allow it: that is why the example exists.
    const baseEgress = find<NetworkPolicy>(base, "NetworkPolicy").spec.egress ?? [];
    assert.ok(!baseEgress.some((r) => (r.ports ?? []).some((p) => p.port === 80)));
  });

  test("Cilium FQDN egress: the pods may reach Entra ID and every preset's public host on 443, and DNS", () => {
    const [policy] = parseObjects(read("k8s/examples/cilium-fqdn-egress.yaml"), "cilium");
    assert.equal(policy!.apiVersion, "cilium.io/v2");
    assert.equal(policy!.kind, "CiliumNetworkPolicy");
    const spec = policy!["spec"] as {
      endpointSelector: { matchLabels: Labels };
      egress: {
        toFQDNs?: { matchName?: string; matchPattern?: string }[];
        toPorts?: { ports: { port: string }[]; rules?: { dns?: unknown[] } }[];
      }[];
    };
    assert.ok(selects(spec.endpointSelector.matchLabels, podLabels));
    assert.ok(
      spec.egress.some((r) => r.toPorts?.some((p) => p.ports.some((x) => x.port === "53") && p.rules?.dns)),
      "DNS through Cilium's proxy",
    );
    const fqdnRules = spec.egress.filter((r) => r.toFQDNs);
    for (const r of fqdnRules)
      assert.deepEqual(
        r.toPorts?.flatMap((p) => p.ports.map((x) => x.port)),
        ["443"],
      );
    const names = fqdnRules.flatMap((r) => r.toFQDNs ?? []);
    // Cilium's "*" matches within one DNS label.
    const allowed = (host: string) =>
      names.some(
        (n) =>
          n.matchName === host ||
          (n.matchPattern !== undefined &&
            new RegExp(`^${n.matchPattern.replaceAll(".", "\\.").replaceAll("*", "[-a-z0-9]*")}$`).test(
              host,
            )),
      );
    const cloud = resolveCloud("public");
    const hosts = [
      new URL(cloud.authorityHost).hostname,
      ...(["powerplatform", "powerapps", "lcs"] as const).map(
        (service) => new URL(resolveRouteTarget({ service }, cloud).upstream!).hostname,
      ),
      new URL(lcsEndpoints("eu").upstream).hostname,
      "default0a1b2c3d4e5f.0a.environment.api.powerplatform.com",
    ];
    for (const host of hosts) assert.ok(allowed(host), `${host} is allowed`);
    assert.ok(
      !allowed("evil.example.com") && !allowed("login.microsoftonline.com.evil.example"),
      "nothing else",
    );
  });
});

describe("k8s/observability", () => {
  test("the ServiceMonitor and PrometheusRule are valid; the monitor scrapes /metrics on the admin port", () => {
    const objects = render("k8s/observability");
    for (const obj of objects) validateSchema(obj);
    const sm = find(objects, "ServiceMonitor");
    const spec = sm["spec"] as {
      selector: { matchLabels: Labels };
      endpoints: { port?: string; path?: string }[];
    };
    const base = render("k8s/base");
    const svc = find<Service>(base, "Service", "entra-auth-proxy");
    assert.ok(selects(spec.selector.matchLabels, svc.metadata.labels ?? {}), "selects the Service");
    const c = containerOf(find<Deployment>(base, "Deployment"));
    const { config } = mountedConfig(base);
    assert.ok(spec.endpoints.length > 0);
    for (const e of spec.endpoints) {
      assert.equal(e.path, "/metrics");
      const port = svc.spec.ports.find((p) => p.name === e.port);
      assert.ok(port, `Service port ${e.port}`);
      assert.equal(containerPort(c, port.targetPort ?? port.port), config.listen.adminPort);
    }
  });
});

describe("kustomize-lite (the renderer used without kubectl)", () => {
  for (const dir of [
    "k8s/base",
    "k8s/overlays/workload-identity",
    "k8s/overlays/ingress",
    "k8s/overlays/gateway",
    "k8s/observability",
  ]) {
    test(`agrees with kubectl kustomize on ${dir}`, (t) => {
      if (!KUBECTL) return t.skip("kubectl not found");
      const key = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;
      const lite = kustomizeLite(join(ROOT, dir)).sort((a, b) => key(a).localeCompare(key(b)));
      // kubectl names generated ConfigMaps <name>-<hash>; kustomize-lite keeps <name>.
      let kubectlText = JSON.stringify(render(dir));
      for (const cm of lite.filter((o) => o.kind === "ConfigMap")) {
        kubectlText = kubectlText.replace(
          new RegExp(`"${cm.metadata.name}-[a-z0-9]{10}"`, "g"),
          JSON.stringify(cm.metadata.name),
        );
      }
      const viaKubectl = (JSON.parse(kubectlText) as K8sObject[]).sort((a, b) =>
        key(a).localeCompare(key(b)),
      );
      assert.deepEqual(lite, viaKubectl);
    });
  }
});
