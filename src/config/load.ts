// Loads routes.yaml once: YAML with positions → ${VAR} substitution → each section parsed by zod and cross-checked →
// one typed ProxyConfig. Every problem is collected and returned together (never thrown), each with
// file:line:column and a path such as routes[2].identity.
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { ConfigIssue } from "../errors.ts";
import { resolveConfig } from "./resolve.ts";
import { readYamlSource } from "./source.ts";
import type { ProxyConfig } from "./types.ts";

export interface ConfigResult {
  /** Present only when there is no error (warnings are allowed; they are also in config.warnings). */
  config?: ProxyConfig;
  /** Errors and warnings, in file order. */
  issues: ConfigIssue[];
}

/**
 * The largest routes.yaml accepted. Real files are a few kilobytes; a file this big is a mistake
 * (a wrong file mounted, a generator gone wrong), and parsing it would stall every reload.
 */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** Issues reported at most, in file order; the rest are counted in one last issue. */
export const MAX_REPORTED_ISSUES = 100;

export interface ParseOptions {
  /** Epoch ms used for "API key expired" warnings; default Date.now(). */
  now?: number;
}

/**
 * Validates routes.yaml text. `file` is used as written in issue locations (routes.yaml:12:5) and,
 * made absolute, as ProxyConfig.file and the base for relative file paths in the config.
 */
export function parseConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv,
  options: ParseOptions = {},
): ConfigResult {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > MAX_CONFIG_BYTES) return { issues: [tooLarge(file, String(bytes))] };
  const source = readYamlSource(text, file, env);
  // Lists here can be as long as the file allows: they are appended in loops, never spread into a call.
  const issues = [...source.issues];
  if (source.value === undefined) return { issues: capIssues(sortByPosition(issues), file) };

  // A value whose ${VAR} could not be expanded is reported once, not again for its unexpanded text.
  const unexpanded = new Set(source.issues.filter((i) => i.severity === "error").map((i) => i.path));
  const addFresh = (list: readonly ConfigIssue[]) => {
    for (const issue of list) if (!unexpanded.has(issue.path)) issues.push(issue);
  };

  const resolved = resolveConfig(source.value, {
    file: resolvePath(file),
    env,
    locator: source.locator,
    now: options.now ?? Date.now(),
  });
  addFresh(resolved.issues);
  const sorted = capIssues(sortByPosition(issues), file);
  if (!resolved.config || sorted.some((i) => i.severity === "error")) return { issues: sorted };
  return {
    config: { ...resolved.config, warnings: sorted.filter((i) => i.severity === "warning") },
    issues: sorted,
  };
}

/** `size`: the byte count, or "over N" when the reading stopped at the cap. */
function tooLarge(file: string, size: string): ConfigIssue {
  return {
    location: file,
    path: "",
    message: `the file is ${size} bytes; routes.yaml may be at most ${MAX_CONFIG_BYTES} bytes (1 MiB)`,
    severity: "error",
  };
}

/**
 * The first MAX_REPORTED_ISSUES issues, then one that counts the rest — an error when any of the
 * rest is one, so capping never turns a broken config into a valid one.
 */
function capIssues(issues: ConfigIssue[], file: string): ConfigIssue[] {
  if (issues.length <= MAX_REPORTED_ISSUES) return issues;
  const rest = issues.slice(MAX_REPORTED_ISSUES);
  const errors = rest.filter((i) => i.severity === "error").length;
  const warnings = rest.length - errors;
  const counts = [errors > 0 ? `${errors} more errors` : "", warnings > 0 ? `${warnings} more warnings` : ""]
    .filter(Boolean)
    .join(" and ");
  return [
    ...issues.slice(0, MAX_REPORTED_ISSUES),
    {
      location: file,
      path: "",
      message: `… and ${counts} (only the first ${MAX_REPORTED_ISSUES} are listed)`,
      severity: errors > 0 ? "error" : "warning",
    },
  ];
}

/** Reads and validates routes.yaml; a missing or unreadable file is an issue, not an exception. */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv,
  options: ParseOptions = {},
): Promise<ConfigResult> {
  let text: string;
  try {
    // Checked before opening: opening a FIFO blocks, and a device such as /dev/zero never ends.
    const stats = await stat(file);
    const refused = stats.isDirectory()
      ? "is a directory, not a routes.yaml file"
      : !stats.isFile()
        ? "is not a regular file"
        : undefined;
    if (refused) return { issues: [{ location: file, path: "", message: refused, severity: "error" }] };
    if (stats.size > MAX_CONFIG_BYTES) return { issues: [tooLarge(file, String(stats.size))] };
    // At most one byte past the cap, in case the file grew since stat().
    const chunks: Buffer[] = [];
    for await (const chunk of createReadStream(file, { start: 0, end: MAX_CONFIG_BYTES })) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    if (bytes.length > MAX_CONFIG_BYTES) return { issues: [tooLarge(file, `over ${MAX_CONFIG_BYTES}`)] };
    text = bytes.toString("utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT"
        ? "file not found (give --config <path> or set ROUTES_FILE)"
        : `cannot read the file: ${code ?? (err as Error).message}`;
    return { issues: [{ location: file, path: "", message, severity: "error" }] };
  }
  return parseConfig(text, file, env, options);
}

function position(location: string): [number, number] {
  const match = /:(\d+):(\d+)$/.exec(location);
  return match ? [Number(match[1]), Number(match[2])] : [0, 0];
}

/** Stable sort by line and column, so `check` reads top to bottom. */
function sortByPosition(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index, pos: position(issue.location) }))
    .sort((a, b) => a.pos[0] - b.pos[0] || a.pos[1] - b.pos[1] || a.index - b.index)
    .map((x) => x.issue);
}
