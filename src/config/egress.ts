// The `egress:` block (design.md "Corporate egress proxy"): the corporate proxy outgoing HTTPS goes
// through, and the hosts that bypass it. Each key defaults to its environment variable, as curl and
// Node's NODE_USE_ENV_PROXY read them. The proxy URL may carry a password, so no message here
// ever repeats it.
import * as z from "zod";
import { type EgressEnvironment, splitNoProxy } from "./environment.ts";
import type { EgressConfig } from "./types.ts";

/** A list in routes.yaml, or one comma-separated string as NO_PROXY spells it. */
const noProxyList = z.union([
  z.array(z.string().trim().min(1, "must not be empty")),
  z.string().transform(splitNoProxy),
]);

export const egressSchema = z.strictObject({
  proxy: z.string().min(1, "must not be empty").optional(),
  noProxy: noProxyList.optional(),
});

export type EgressInput = z.output<typeof egressSchema>;

/**
 * The proxy URL as agents take it: `host:port` alone means http:// (as curl reads it). Returns a
 * problem that never contains the value itself, since it may hold a password.
 */
export function parseProxyUrl(value: string): { url: string } | { problem: string } {
  const text = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value) ? value : `http://${value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { problem: "must be a URL such as http://proxy.corp.example:3128 (user:password@ allowed)" };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { problem: `must be an http:// or https:// proxy URL, not ${url.protocol}//` };
  }
  if (url.hostname === "") return { problem: "must name the proxy's host" };
  if (url.pathname !== "/" || url.search || url.hash) {
    return {
      problem: "must be only scheme, credentials, host and port, like http://proxy.corp.example:3128",
    };
  }
  return { url: url.href.replace(/\/$/, "") };
}

/**
 * routes.yaml's values, else the environment's, key by key. No proxy at all: no `egress` (traffic
 * goes direct). A problem with a value from the environment names its variable.
 */
export function resolveEgress(
  input: EgressInput,
  env: EgressEnvironment,
): { egress?: EgressConfig; problem?: { key: "proxy"; message: string } } {
  const fromFile = input.proxy !== undefined;
  const raw = input.proxy ?? env.proxy?.value;
  if (raw === undefined) return {};
  const parsed = parseProxyUrl(raw);
  if ("problem" in parsed) {
    const origin = fromFile ? "" : ` (from ${env.proxy?.variable})`;
    return { problem: { key: "proxy", message: `${parsed.problem}${origin}` } };
  }
  return { egress: { proxy: parsed.url, noProxy: input.noProxy ?? env.noProxy ?? [] } };
}

/** The proxy URL without credentials: what logs, `check`, `/status` and error details may show. */
export function displayProxy(proxy: string): string {
  const url = new URL(proxy);
  url.username = "";
  url.password = "";
  return url.href.replace(/\/$/, "");
}

/** One line for `check` and the audit log: where HTTPS goes out, never the password. */
export function describeEgress(egress: EgressConfig | undefined): string {
  if (!egress) return "egress: direct (no egress.proxy, HTTPS_PROXY or https_proxy)";
  const url = new URL(egress.proxy);
  const auth = url.username || url.password ? " with Basic credentials" : "";
  const bypass = egress.noProxy.length > 0 ? `; not for noProxy: ${egress.noProxy.join(", ")}` : "";
  return `egress: HTTPS via proxy ${displayProxy(egress.proxy)}${auth}${bypass}; managed-identity endpoints always direct`;
}
