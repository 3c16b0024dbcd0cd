// The connection pools outgoing HTTP leaves by: direct, or through the corporate egress proxy
// (design.md "Corporate egress proxy"). The tunnelling is Node's own: an https.Agent built with
// `proxyEnv` sends CONNECT (with Proxy-Authorization from the URL's credentials) and keeps the
// tunnelled TLS sockets in its keep-alive pool like any other, so tunnels are reused across requests.
// Which destinations bypass the proxy is decided here (no-proxy.ts), so the proxied agent is given
// no NO_PROXY of its own. Only https:// destinations are proxied: every Microsoft endpoint is https,
// and http:// is allowed only for loopback upstreams and the managed-identity endpoints.
import http from "node:http";
import https from "node:https";
import { displayProxy } from "../config/egress.ts";
import type { EgressConfig } from "../config/types.ts";
import { compileNoProxy, type NoProxyMatcher } from "./no-proxy.ts";

/** Errors met while connecting to the proxy itself (the destination is resolved by the proxy). */
const PROXY_CONNECT_CODES = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
]);

const PROXY_STATUS_HINTS: Record<number, string> = {
  407: "proxy authentication required: check the credentials in egress.proxy / HTTPS_PROXY",
  403: "the proxy does not allow this destination: ask for it to be allowed (see docs/egress-proxy.md)",
};

export class EgressAgents {
  /** The proxy as logs and error details may name it (no credentials); undefined when direct. */
  readonly proxyName: string | undefined;
  private readonly http: http.Agent;
  private readonly direct: https.Agent;
  private readonly proxied: https.Agent | undefined;
  private readonly bypass: NoProxyMatcher;
  /** Per destination host:port, the agent chosen for it (hosts are bounded by the config). */
  private readonly chosen = new Map<string, https.Agent>();
  private readonly owned: http.Agent[] = [];

  /**
   * Without `options`, direct traffic uses Node's global agents (keep-alive); with them, agents of
   * its own. The proxied agent always keeps its tunnels alive.
   */
  constructor(egress: EgressConfig | undefined, options?: https.AgentOptions) {
    this.http = options ? this.own(new http.Agent(options)) : http.globalAgent;
    this.direct = options ? this.own(new https.Agent(options)) : https.globalAgent;
    this.bypass = compileNoProxy(egress?.noProxy ?? []);
    if (egress) {
      this.proxyName = displayProxy(egress.proxy);
      this.proxied = this.own(
        new https.Agent({ ...options, keepAlive: true, proxyEnv: { HTTPS_PROXY: egress.proxy } }),
      );
    } else {
      this.proxyName = undefined;
      this.proxied = undefined;
    }
  }

  private own<A extends http.Agent>(agent: A): A {
    this.owned.push(agent);
    return agent;
  }

  /** The agent for a request to `url`. */
  agentFor(url: URL): http.Agent {
    if (url.protocol !== "https:") return this.http;
    if (this.proxied === undefined) return this.direct;
    let agent = this.chosen.get(url.host);
    if (agent === undefined) {
      agent = this.usesProxy(url) ? this.proxied : this.direct;
      if (this.chosen.size >= 1024) this.chosen.clear();
      this.chosen.set(url.host, agent);
    }
    return agent;
  }

  /** Whether a request to `url` goes through the egress proxy. */
  usesProxy(url: URL): boolean {
    if (this.proxied === undefined || url.protocol !== "https:") return false;
    return !this.bypass(url.hostname, url.port === "" ? 443 : Number(url.port));
  }

  /**
   * When a request to `url` failed at the egress proxy (it refused the tunnel, or could not be
   * reached), a detail that names the proxy — never its credentials; otherwise undefined.
   */
  proxyFailure(url: URL, error: NodeJS.ErrnoException & { statusCode?: number }): string | undefined {
    if (!this.usesProxy(url)) return undefined;
    const target = `${url.hostname}:${url.port || 443}`;
    if (error.code === "ERR_PROXY_TUNNEL") {
      const status = error.statusCode;
      if (status === undefined) {
        return `egress proxy ${this.proxyName} closed the connection before the tunnel to ${target} was open`;
      }
      const hint = PROXY_STATUS_HINTS[status];
      return `egress proxy ${this.proxyName} refused the tunnel to ${target} (HTTP ${status})${hint ? `: ${hint}` : ""}`;
    }
    if (error.code !== undefined && PROXY_CONNECT_CODES.has(error.code)) {
      return `egress proxy ${this.proxyName} could not be reached (${error.code})`;
    }
    return undefined;
  }

  /** Closes the pools this object created (Node's global agents are left alone). */
  destroy(): void {
    for (const agent of this.owned) agent.destroy();
    this.chosen.clear();
  }
}
