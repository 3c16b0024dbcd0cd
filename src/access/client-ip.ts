// The caller's address: the socket peer, or — when the peer is a trusted proxy — the right-most
// X-Forwarded-For hop that is not itself trusted.
import { BlockList, isIP } from "node:net";

export function normaliseIp(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return mapped ? mapped[1]! : address;
}

/** Builds a BlockList from CIDRs or single addresses ("10.0.0.0/8", "::1", "192.0.2.7"). */
export function buildBlockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split("/") as [string, string | undefined];
    const family = isIP(address) === 6 ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return list;
}

export function contains(list: BlockList, address: string): boolean {
  const ip = normaliseIp(address);
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 6 ? "ipv6" : "ipv4");
}

export class ClientIpResolver {
  private readonly trusted: BlockList | undefined;

  constructor(trustProxy: readonly string[]) {
    this.trusted = trustProxy.length > 0 ? buildBlockList(trustProxy) : undefined;
  }

  isTrusted(peer: string | undefined): boolean {
    return peer !== undefined && this.trusted !== undefined && contains(this.trusted, peer);
  }

  /** The caller's address for a socket address as Node reports it (see `clientOf`). */
  resolve(peer: string | undefined, forwardedFor: string | string[] | undefined): string {
    const socketPeer = normaliseIp(peer ?? "");
    return this.clientOf(socketPeer, this.isTrusted(socketPeer), forwardedFor);
  }

  /**
   * The caller's address for a socket peer already normalised and checked with `isTrusted`: the peer
   * itself, or for a trusted one the right-most X-Forwarded-For hop that is not trusted.
   */
  clientOf(socketPeer: string, trusted: boolean, forwardedFor: string | string[] | undefined): string {
    if (!trusted || forwardedFor === undefined) return socketPeer;
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor)
      .split(",")
      .map((h) => normaliseIp(h.trim()))
      .filter((h) => h !== "");
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!;
      if (isIP(hop) === 0) return socketPeer; // garbage in the chain: believe only the socket
      if (!this.isTrusted(hop)) return hop;
    }
    return hops[0] ?? socketPeer;
  }
}
