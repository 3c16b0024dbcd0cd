// NO_PROXY matching. There is no standard; this follows curl (the reference most operators check
// against) and accepts what Node's NODE_USE_ENV_PROXY adds, so a list written for either works:
//   *                       every host (the proxy is off)
//   example.com, .example.com   that host and every subdomain (curl strips the leading dot)
//   *.example.com           subdomains only (Node)
//   example.com:8443        that host and subdomains, on that port only (Node)
//   10.1.2.3, ::1, [::1]    that address
//   10.0.0.0/8, fd00::/8    addresses in the block (curl 7.86+)
//   10.0.0.1-10.0.0.99      IPv4 addresses in the range (Node)
// Names are compared case-insensitively and without a trailing dot; there is no DNS lookup, so a
// name never matches an address block (as in curl and Node).
import { BlockList, isIP } from "node:net";

/** Whether a destination bypasses the proxy. `hostname` as URL gives it (IPv6 in brackets or not). */
export type NoProxyMatcher = (hostname: string, port: number) => boolean;

interface NameEntry {
  /** Lower-case name without leading "." or "*.". */
  name: string;
  /** Only subdomains, not the name itself ("*.example.com"). */
  subdomainsOnly: boolean;
  port: number | undefined;
}

export function compileNoProxy(entries: readonly string[]): NoProxyMatcher {
  const names: NameEntry[] = [];
  const addresses = new BlockList();
  let everything = false;
  for (const raw of entries) {
    const entry = raw.trim().toLowerCase();
    if (entry === "") continue;
    if (entry === "*") {
      everything = true;
      continue;
    }
    if (addAddressEntry(addresses, entry)) continue;
    names.push(nameEntry(entry));
  }
  if (everything) return () => true;
  return (hostname, port) => {
    const host = bare(hostname);
    const family = isIP(host);
    if (family !== 0) {
      if (addresses.check(host, family === 4 ? "ipv4" : "ipv6")) return true;
    }
    for (const entry of names) {
      if (entry.port !== undefined && entry.port !== port) continue;
      if (host === entry.name) {
        if (!entry.subdomainsOnly) return true;
      } else if (host.endsWith(`.${entry.name}`)) return true;
    }
    return false;
  };
}

/** "[::1]" → "::1", "Example.COM." → "example.com". */
function bare(hostname: string): string {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return host.endsWith(".") ? host.slice(0, -1) : host;
}

/** Adds an address, CIDR block or IPv4 range to `list`; false when the entry is not one. */
function addAddressEntry(list: BlockList, entry: string): boolean {
  const address = bare(entry);
  const family = isIP(address);
  if (family !== 0) {
    list.addAddress(address, family === 4 ? "ipv4" : "ipv6");
    return true;
  }
  const slash = entry.indexOf("/");
  if (slash !== -1) {
    const base = bare(entry.slice(0, slash));
    const bits = entry.slice(slash + 1);
    const baseFamily = isIP(base);
    const max = baseFamily === 4 ? 32 : 128;
    if (baseFamily !== 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= max) {
      list.addSubnet(base, Number(bits), baseFamily === 4 ? "ipv4" : "ipv6");
      return true;
    }
    return false;
  }
  const dash = entry.indexOf("-");
  if (dash !== -1) {
    const start = entry.slice(0, dash).trim();
    const end = entry.slice(dash + 1).trim();
    if (isIP(start) === 4 && isIP(end) === 4) {
      try {
        list.addRange(start, end, "ipv4");
        return true;
      } catch {
        return false; // start after end: not a range, treated as a name that matches nothing
      }
    }
  }
  return false;
}

function nameEntry(entry: string): NameEntry {
  let name = entry;
  let port: number | undefined;
  const colon = name.lastIndexOf(":");
  if (colon !== -1 && /^\d+$/.test(name.slice(colon + 1))) {
    port = Number(name.slice(colon + 1));
    name = name.slice(0, colon);
  }
  let subdomainsOnly = false;
  if (name.startsWith("*.")) {
    subdomainsOnly = true;
    name = name.slice(2);
  } else if (name.startsWith(".")) name = name.slice(1);
  return { name: bare(name), subdomainsOnly, port };
}
