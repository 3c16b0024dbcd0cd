// Just enough of kustomize to render k8s/ on a machine without kubectl: `resources` (files and
// directories), `configMapGenerator` (files; behavior create/replace/merge; no name hash) and
// strategic-merge `patches` given by path or inline. Anything else in a kustomization is an error, so
// a new kustomize feature in k8s/ cannot be silently ignored. A test checks it agrees with kubectl.
import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parse, parseAllDocuments } from "yaml";

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

interface Kustomization {
  resources?: string[];
  configMapGenerator?: { name: string; files: string[]; behavior?: "create" | "replace" | "merge" }[];
  patches?: { path?: string; patch?: string }[];
}

const SUPPORTED = new Set(["apiVersion", "kind", "resources", "configMapGenerator", "patches"]);

export function parseObjects(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text).flatMap((doc) => {
    if (doc.errors.length > 0) throw new Error(`${source}: ${doc.errors[0]!.message}`);
    const value = doc.toJS() as K8sObject | null;
    return value === null ? [] : [value];
  });
}

export function kustomizeLite(dir: string): K8sObject[] {
  const k = parse(readFileSync(join(dir, "kustomization.yaml"), "utf8")) as Kustomization;
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED.has(key));
  if (unsupported.length > 0)
    throw new Error(`${dir}: kustomize-lite does not support ${unsupported.join(", ")}`);

  const objects: K8sObject[] = [];
  for (const resource of k.resources ?? []) {
    const path = join(dir, resource);
    objects.push(
      ...(statSync(path).isDirectory()
        ? kustomizeLite(path)
        : parseObjects(readFileSync(path, "utf8"), path)),
    );
  }

  for (const gen of k.configMapGenerator ?? []) {
    if (gen.files.some((f) => f.includes("="))) throw new Error(`${dir}: key=file is not supported`);
    const data = Object.fromEntries(gen.files.map((f) => [basename(f), readFileSync(join(dir, f), "utf8")]));
    const existing = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === gen.name);
    const behavior = gen.behavior ?? "create";
    if (behavior === "create") {
      if (existing) throw new Error(`${dir}: ConfigMap ${gen.name} already exists`);
      objects.push({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: gen.name }, data });
    } else {
      if (!existing) throw new Error(`${dir}: no ConfigMap ${gen.name} to ${behavior}`);
      existing["data"] = behavior === "replace" ? data : { ...(existing["data"] as object), ...data };
    }
  }

  for (const p of k.patches ?? []) {
    const patch = parse(
      p.path === undefined ? p.patch! : readFileSync(join(dir, p.path), "utf8"),
    ) as K8sObject;
    const index = objects.findIndex((o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name);
    if (index < 0) throw new Error(`${dir}: patch target ${patch.kind}/${patch.metadata.name} not found`);
    objects[index] = strategicMerge(objects[index], patch) as K8sObject;
  }
  return objects;
}

const isMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** The strategic-merge key of a list field, as in the Kubernetes types these manifests use. */
const mergeKeyOf = (field: string | undefined) => (field === "volumeMounts" ? "mountPath" : "name");

/**
 * Strategic merge, reduced to what these manifests use: maps merge recursively (null deletes a key);
 * lists of keyed maps (containers, env, volumes and ports by name, volumeMounts by mountPath) merge by
 * that key, honouring `$patch: delete`; any other list is replaced. Real kustomize knows each list's
 * merge key by type.
 */
export function strategicMerge(base: unknown, patch: unknown, field?: string): unknown {
  if (isMap(base) && isMap(patch)) {
    const out: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = key in out ? strategicMerge(out[key], value, key) : value;
    }
    return out;
  }
  const mergeKey = mergeKeyOf(field);
  const keyed = (v: unknown): v is Record<string, unknown> => isMap(v) && typeof v[mergeKey] === "string";
  if (Array.isArray(base) && Array.isArray(patch) && base.every(keyed) && patch.every(keyed)) {
    const out = [...base];
    for (const item of patch) {
      const at = out.findIndex((b) => b[mergeKey] === item[mergeKey]);
      if (item["$patch"] === "delete") {
        if (at >= 0) out.splice(at, 1);
      } else if (at >= 0) {
        out[at] = strategicMerge(out[at], item) as (typeof out)[number];
      } else {
        out.push(item);
      }
    }
    return out;
  }
  return patch;
}
