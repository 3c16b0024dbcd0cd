// Loads routes.yaml once: YAML with positions → ${VAR} substitution → zod shape → cross-checks →
// one typed ProxyConfig. Every problem is collected and returned together (never thrown), each with
// file:line:column and a path such as routes[2].identity.
import { readFile, stat } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { ConfigIssue } from "../errors.ts";
import { resolveConfig } from "./resolve.ts";
import { routesFileSchema } from "./schema.ts";
import { readYamlSource } from "./source.ts";
import type { ProxyConfig } from "./types.ts";
import { zodIssuesToConfigIssues } from "./zod-issues.ts";

export interface ConfigResult {
  /** Present only when there is no error (warnings are allowed; they are also in config.warnings). */
  config?: ProxyConfig;
  /** Errors and warnings, in file order. */
  issues: ConfigIssue[];
}

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
  const source = readYamlSource(text, file, env);
  const issues = [...source.issues];
  if (source.value === undefined) return { issues: sortByPosition(issues) };

  // A value whose ${VAR} could not be expanded is reported once, not again for its unexpanded text.
  const unexpanded = new Set(source.issues.filter((i) => i.severity === "error").map((i) => i.path));
  const fresh = (list: ConfigIssue[]) => list.filter((i) => !unexpanded.has(i.path));

  const shape = routesFileSchema.safeParse(source.value);
  if (!shape.success) {
    issues.push(...fresh(zodIssuesToConfigIssues(shape.error.issues, source.value, source.locator)));
  }

  const resolved = resolveConfig(source.value, shape.success, {
    file: resolvePath(file),
    env,
    locator: source.locator,
    now: options.now ?? Date.now(),
  });
  issues.push(...fresh(resolved.issues));
  const sorted = sortByPosition(issues);
  if (!resolved.config || sorted.some((i) => i.severity === "error")) return { issues: sorted };
  return {
    config: { ...resolved.config, warnings: sorted.filter((i) => i.severity === "warning") },
    issues: sorted,
  };
}

/** Reads and validates routes.yaml; a missing or unreadable file is an issue, not an exception. */
export async function loadConfig(
  file: string,
  env: NodeJS.ProcessEnv,
  options: ParseOptions = {},
): Promise<ConfigResult> {
  let text: string;
  try {
    if ((await stat(file)).isDirectory()) {
      return {
        issues: [
          { location: file, path: "", message: "is a directory, not a routes.yaml file", severity: "error" },
        ],
      };
    }
    text = await readFile(file, "utf8");
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
