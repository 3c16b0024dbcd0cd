// routes.yaml as a YAML document that remembers where every value came from, so each problem found
// later (by zod or by the cross-checks) can be reported as file:line:column.
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type ParsedNode,
  parseDocument,
} from "yaml";
import type { ConfigIssue } from "../errors.ts";
import { interpolateEnv, isSecretKey } from "./environment.ts";

export type PathSegment = string | number;

/** routes[2].identity, identities.platform-app.clientSecret, identities["odd name"].clientId */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_][A-Za-z0-9_-]*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

/** Finds the node behind a path in the document and turns its offset into file:line:column. */
export class SourceLocator {
  readonly file: string;
  private readonly doc: Document.Parsed | undefined;
  private readonly lines: LineCounter;

  constructor(file: string, doc: Document.Parsed | undefined, lines: LineCounter) {
    this.file = file;
    this.doc = doc;
    this.lines = lines;
  }

  /** "file:line:col" of the offset, or just the file when it is unknown. */
  at(offset: number | undefined): string {
    if (offset === undefined) return this.file;
    const { line, col } = this.lines.linePos(offset);
    return `${this.file}:${line}:${col}`;
  }

  /**
   * Location of the value at `path`. A missing key is reported at the map that lacks it; an empty
   * value (`key:` and nothing) at its key. With `key: true`, the key itself (unknown keys, names).
   */
  locate(path: readonly PathSegment[], options: { key?: boolean } = {}): string {
    return this.at(this.offsetOf(path, options));
  }

  private offsetOf(path: readonly PathSegment[], options: { key?: boolean }): number | undefined {
    if (!this.doc) return undefined;
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node);
    for (const [index, segment] of path.entries()) {
      const current = isAlias(node) ? node.resolve(this.doc) : node;
      let next: unknown;
      let keyOffset: number | undefined;
      if (isMap(current)) {
        const pair = current.items.find((p) => keyText(p.key) === String(segment));
        if (!pair) return offset;
        keyOffset = rangeStart(pair.key);
        const empty =
          pair.value == null ||
          (isScalar(pair.value) && pair.value.source === "" && pair.value.value === null);
        next = empty ? undefined : pair.value;
        if (index === path.length - 1 && (options.key || next === undefined)) return keyOffset ?? offset;
        if (next === undefined) return keyOffset ?? offset;
      } else if (isSeq(current) && typeof segment === "number") {
        next = current.items[segment];
        if (next === undefined) return offset;
      } else {
        return offset;
      }
      node = next;
      offset = rangeStart(node) ?? offset;
    }
    return offset;
  }
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as Node | undefined)?.range;
  return range ? range[0] : undefined;
}

// `{ authorityHost: ${AUTHORITY} }` is not valid YAML as written: "{" and "}" are flow indicators.
// Before parsing, the indicator characters inside each ${…} are swapped for private-use characters
// of the same length (so every offset, line and column stays exact) and swapped back in the values.
const SHIELDED = "{}[],:# \t\"'";
const SHIELD_BASE = 0xe000;
const SHIELD_RANGE = `\\u${SHIELD_BASE.toString(16)}-\\u${(SHIELD_BASE + SHIELDED.length - 1).toString(16)}`;
const SHIELD_CHARS = new RegExp(`[${SHIELD_RANGE}]`, "g");
const HAS_SHIELD_CHARS = new RegExp(`[${SHIELD_RANGE}]`);

/** Returns the text to parse and the function that restores a parsed string. */
function shieldReferences(text: string): { text: string; restore: (parsed: string) => string } {
  // A file that already holds these private-use characters is parsed as written.
  if (HAS_SHIELD_CHARS.test(text)) return { text, restore: (parsed) => parsed };
  const shielded = text.replace(/\$\{[^}\n]*\}/g, (reference) =>
    reference.replace(/./g, (c, i: number) =>
      i === 0 || !SHIELDED.includes(c) ? c : String.fromCharCode(SHIELD_BASE + SHIELDED.indexOf(c)),
    ),
  );
  return {
    text: shielded,
    restore: (parsed) => parsed.replace(SHIELD_CHARS, (c) => SHIELDED[c.charCodeAt(0) - SHIELD_BASE]!),
  };
}

/** The parser's first line says what is wrong; the rest repeats the source around it. */
function firstLine(message: string): string {
  return message.split("\n")[0] ?? "";
}

export interface YamlSource {
  /** The plain JS value after ${VAR} substitution; undefined when the YAML itself is broken. */
  value: unknown;
  locator: SourceLocator;
  issues: ConfigIssue[];
}

/**
 * Parses YAML with positions and substitutes ${VAR} / ${VAR:-default} in every string value (keys are
 * left alone). Syntax errors stop here; a missing variable is reported and its value left unexpanded
 * so the remaining checks still run.
 */
export function readYamlSource(text: string, file: string, env: NodeJS.ProcessEnv): YamlSource {
  const lines = new LineCounter();
  const shield = shieldReferences(text);
  const unshield = shield.restore;
  const doc = parseDocument(shield.text, {
    lineCounter: lines,
    prettyErrors: false,
    uniqueKeys: true,
  });
  const locator = new SourceLocator(file, doc, lines);
  const issues: ConfigIssue[] = [];
  for (const warning of doc.warnings) {
    issues.push({
      location: locator.at(warning.pos[0]),
      path: "",
      message: unshield(firstLine(warning.message)),
      severity: "warning",
    });
  }
  if (doc.errors.length > 0) {
    for (const error of doc.errors) {
      issues.push({
        location: locator.at(error.pos[0]),
        path: "",
        message: `YAML: ${unshield(firstLine(error.message))}`,
        severity: "error",
      });
    }
    return { value: undefined, locator, issues };
  }
  if (doc.contents === null) {
    issues.push({ location: file, path: "", message: "the file is empty", severity: "error" });
    return { value: undefined, locator, issues };
  }

  const visited = new Set<unknown>();
  const substitute = (node: ParsedNode | null, path: PathSegment[]): void => {
    if (node === null || visited.has(node)) return;
    visited.add(node);
    if (isScalar(node)) {
      // An unquoted SHA-256 made only of digits (or digits and one "e") would otherwise be a number.
      if (node.type === "PLAIN" && typeof node.source === "string" && /^[0-9a-f]{64}$/.test(node.source)) {
        node.value = node.source;
      }
      if (typeof node.value !== "string") return;
      const key = path.at(-1);
      const result = interpolateEnv(unshield(node.value), env, {
        secret: typeof key === "string" && isSecretKey(key),
      });
      if (result.ok) node.value = result.value;
      else {
        issues.push({
          location: locator.at(rangeStart(node)),
          path: formatPath(path),
          message: result.message,
          severity: "error",
        });
      }
    } else if (isMap(node)) {
      for (const pair of node.items) {
        if (isScalar(pair.key) && typeof pair.key.value === "string")
          pair.key.value = unshield(pair.key.value);
        substitute(pair.value, [...path, keyText(pair.key)]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, index) => {
        substitute(item, [...path, index]);
      });
    }
  };
  substitute(doc.contents, []);

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    issues.push({
      location: file,
      path: "",
      message: `YAML: ${firstLine((err as Error).message)}`,
      severity: "error",
    });
    return { value: undefined, locator, issues };
  }
  return { value, locator, issues };
}
