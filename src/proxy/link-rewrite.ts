// rewriteLinks: true — @odata.nextLink / nextLink in JSON responses point back through the proxy.
// Only JSON bodies up to a size cap are held and rewritten; anything larger, compressed or not JSON
// streams through untouched (and is counted), so a huge listing never sits in memory.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from "node:http";
import { relay } from "./relay.ts";
import { rewriteWithMappings, type UrlMapping } from "./rewrite.ts";

export const LINK_REWRITE_MAX_BYTES = 4 * 1024 * 1024;
/** Compared in lower case: Microsoft's APIs spell it both @odata.nextLink and @odata.nextlink. */
const LINK_KEYS = new Set(["@odata.nextlink", "nextlink", "@odata.deltalink"]);

export type LinkRewriteResult =
  | "rewritten"
  | "unchanged"
  | "too_large"
  | "not_json"
  | "encoded"
  | "invalid_json";

/** Rewrites link values anywhere in a parsed JSON document; returns whether anything changed. */
export function rewriteLinksIn(value: unknown, mappings: readonly UrlMapping[]): boolean {
  if (Array.isArray(value)) {
    let changed = false;
    for (const item of value) changed = rewriteLinksIn(item, mappings) || changed;
    return changed;
  }
  if (value === null || typeof value !== "object") return false;
  let changed = false;
  const record = value as Record<string, unknown>;
  for (const [key, v] of Object.entries(record)) {
    if (typeof v === "string" && LINK_KEYS.has(key.toLowerCase())) {
      const rewritten = rewriteWithMappings(v, mappings);
      if (rewritten !== v) {
        record[key] = rewritten;
        changed = true;
      }
    } else if (typeof v === "object" && v !== null) {
      changed = rewriteLinksIn(v, mappings) || changed;
    }
  }
  return changed;
}

/**
 * Sends `upstream` to `res` with `headers`, rewriting links when the body qualifies.
 * `done` reports what happened (for metrics).
 */
export function sendWithLinkRewrite(
  upstream: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  mappings: readonly UrlMapping[],
  done: (result: LinkRewriteResult) => void,
  maxBytes = LINK_REWRITE_MAX_BYTES,
): void {
  const type = String(headers["content-type"] ?? "");
  const passThrough = (result: LinkRewriteResult) => {
    res.writeHead(status, upstream.statusMessage, headers);
    relay(upstream, res);
    done(result);
  };
  const encoding = headers["content-encoding"];
  const declared = Number(headers["content-length"] ?? Number.NaN);
  const skip: LinkRewriteResult | undefined = !/\bjson\b/i.test(type)
    ? "not_json"
    : encoding && encoding !== "identity"
      ? "encoded"
      : declared > maxBytes
        ? "too_large"
        : undefined;
  if (skip) {
    passThrough(skip);
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  const onData = (chunk: Buffer) => {
    size += chunk.length;
    chunks.push(chunk);
    if (size > maxBytes) {
      // Larger than the cap after all (chunked): send what we hold, then stream the rest as is.
      upstream.off("data", onData);
      upstream.off("end", onEnd);
      upstream.pause();
      res.writeHead(status, upstream.statusMessage, headers);
      for (const c of chunks) res.write(c);
      chunks.length = 0;
      relay(upstream, res);
      done("too_large");
    }
  };
  const onEnd = () => {
    const body = Buffer.concat(chunks);
    let result: LinkRewriteResult = "unchanged";
    let out = body;
    try {
      const doc = JSON.parse(body.toString("utf8")) as unknown;
      if (rewriteLinksIn(doc, mappings)) {
        out = Buffer.from(JSON.stringify(doc), "utf8");
        result = "rewritten";
      }
    } catch {
      result = "invalid_json";
    }
    const sent: OutgoingHttpHeaders = { ...headers, "content-length": String(out.length) };
    delete sent["transfer-encoding"];
    res.writeHead(status, upstream.statusMessage, sent);
    res.end(out);
    done(result);
  };
  upstream.on("data", onData);
  upstream.on("end", onEnd);
}
