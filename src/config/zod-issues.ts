// Turns zod issues into ConfigIssues: a routes.yaml path (routes[2].identity), the file:line:column
// of the offending YAML node, and a message written for the operator. Values are never echoed,
// since many of them are secrets. Issues are told apart by their code, never by their message.
import type * as z from "zod";
import type { ConfigIssue } from "../errors.ts";
import { knownKeysAt, MISSING_KEY_HINTS } from "./schema.ts";
import { formatPath, type PathSegment, type SourceLocator } from "./source.ts";

type ZodIssue = z.core.$ZodIssue;

/**
 * The message of every issue the schemas give none of their own — pass it to safeParse as
 * `{ error: operatorMessage }`, so the text never depends on zod's default (English) wording.
 */
export const operatorMessage: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type":
      return typeMessage(issue.expected, issue.input);
    case "invalid_value":
      return `must be one of ${issue.values.map(String).join(", ")}`;
    case "too_small":
      return `must be at least ${String(issue.minimum)}`;
    case "too_big":
      return `must be at most ${String(issue.maximum)}`;
    case "invalid_union":
      return "does not match any of the accepted forms";
    default:
      return undefined;
  }
};

export function zodIssuesToConfigIssues(
  issues: readonly ZodIssue[],
  raw: unknown,
  locator: SourceLocator,
  base: readonly PathSegment[] = [],
): ConfigIssue[] {
  const out: ConfigIssue[] = [];
  const error = (path: readonly PathSegment[], message: string, options: { key?: boolean } = {}) => {
    out.push({ location: locator.locate(path, options), path: formatPath(path), message, severity: "error" });
  };

  for (const issue of issues) {
    const path = [...base, ...issue.path.map(toSegment)];
    switch (issue.code) {
      case "unrecognized_keys": {
        const present = valueAt(raw, path);
        const known = (knownKeysAt(path) ?? []).filter(
          (k) => !(isRecord(present) && Object.hasOwn(present, k)),
        );
        for (const key of issue.keys) {
          const suggestion = closest(key, known);
          const hint = suggestion
            ? `; did you mean "${suggestion}"?`
            : known.length > 0
              ? ` (expected one of: ${known.join(", ")})`
              : "";
          error([...path, key], `unknown key "${key}"${hint}`, { key: true });
        }
        break;
      }
      case "invalid_type": {
        const last = path.at(-1);
        if (valueAt(raw, path) === undefined) {
          error(path, (typeof last === "string" && MISSING_KEY_HINTS[last]) || `${String(last)} is required`);
        } else error(path, issue.message);
        break;
      }
      case "invalid_union": {
        // Follow the one alternative that got past its type check (e.g. cloud: { authorityHost } with a typo).
        const viable = issue.errors.filter(
          (branch) =>
            !branch.some(
              (i) => i.path.length === 0 && (i.code === "invalid_type" || i.code === "invalid_value"),
            ),
        );
        if (viable.length === 1) {
          for (const nested of zodIssuesToConfigIssues(viable[0]!, raw, locator, path)) out.push(nested);
        } else error(path, issue.message);
        break;
      }
      default:
        error(path, issue.message);
    }
  }
  return dedupe(out);
}

function toSegment(key: PropertyKey): PathSegment {
  return typeof key === "number" ? key : String(key);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The raw value at a path, or undefined when some part of it is missing. */
export function valueAt(raw: unknown, path: readonly PathSegment[]): unknown {
  let current = raw;
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === "number") current = current[segment];
    else if (isRecord(current) && Object.hasOwn(current, String(segment))) current = current[String(segment)];
    else return undefined;
  }
  return current;
}

const EXPECTED: Record<string, string> = {
  string: "a string",
  number: "a number",
  boolean: "true or false",
  object: "a map (key: value)",
  record: "a map (name: settings)",
  array: "a list",
  date: "a date",
};

function describe(value: unknown): string {
  if (value === null) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return "a string";
  if (typeof value === "number") return "a number";
  if (typeof value === "boolean") return "a boolean";
  return typeof value;
}

function typeMessage(expected: string, value: unknown): string {
  const text = `expected ${EXPECTED[expected] ?? expected}, got ${describe(value)}`;
  if (expected === "string" && (typeof value === "number" || typeof value === "boolean")) {
    return `${text} — quote the value in YAML`;
  }
  return text;
}

/** The known key within edit distance 2 (or differing only in case), if exactly one is closest. */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        previous[j]! + 1,
        row[j - 1]! + 1,
        previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = row;
  }
  return previous[b.length]!;
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.location}\u0000${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
