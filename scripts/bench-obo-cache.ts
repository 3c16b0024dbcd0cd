// Micro-benchmark of the on-behalf-of cache (src/auth/obo-tokens.ts), bounded in count and time:
//   node --expose-gc scripts/bench-obo-cache.ts [users=10000] [lookups=1000000]
// 1. memory per cached user: heap growth after filling the cache with `users` users, each with a
//    downstream token and an inbound token of Entra's usual sizes (the bytes a real cache holds);
// 2. time to serve a cached user: forCaller(caller).peek() for random cached users, as the request path does;
// 3. the bound: one more user than the limit evicts the least recently used one.
import { randomBytes, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import type { AcquiredToken } from "../src/auth/credentials.ts";
import { type OboCaller, OboTokenCache } from "../src/auth/obo-tokens.ts";

const users = Number(process.argv[2] ?? 10_000);
const lookups = Number(process.argv[3] ?? 1_000_000);
const maybeGc = (globalThis as { gc?: () => void }).gc;
if (!maybeGc) throw new Error("run with node --expose-gc");
const gc: () => void = maybeGc;

/** A JWT of Entra's shape and size (RS256: a 342-character signature). */
function entraLikeToken(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const header = { typ: "JWT", alg: "RS256", x5t: "kid-0123456789", kid: "kid-0123456789" };
  return `${part(header)}.${part(claims)}.${randomBytes(256).toString("base64url")}`;
}

function userClaims(oid: string, aud: string, now: number) {
  const iat = Math.floor(now / 1000);
  return {
    aud,
    iss: "https://sts.windows.net/11111111-2222-3333-4444-555555555555/",
    iat,
    nbf: iat,
    exp: iat + 3600,
    acr: "1",
    aio: randomBytes(60).toString("base64url"),
    amr: ["pwd", "mfa"],
    appid: randomUUID(),
    appidacr: "1",
    family_name: "Doe",
    given_name: "Jane",
    ipaddr: "203.0.113.7",
    name: "Jane Doe",
    oid,
    puid: "10032001A2B3C4D5",
    rh: randomBytes(40).toString("base64url"),
    scp: "user_impersonation",
    sub: randomBytes(32).toString("base64url"),
    tid: "11111111-2222-3333-4444-555555555555",
    unique_name: `user-${oid.slice(0, 8)}@contoso.example`,
    upn: `user-${oid.slice(0, 8)}@contoso.example`,
    uti: randomBytes(16).toString("base64url"),
    ver: "1.0",
  };
}

async function main(): Promise<void> {
  const now = Date.now();
  let exchanges = 0;
  const cache = new OboTokenCache({
    identity: "web-api",
    kind: "clientSecret",
    scope: "https://api.powerplatform.com/.default",
    maxUsers: users,
    exchange: async (assertion): Promise<AcquiredToken> => {
      exchanges++;
      const oid = assertion.slice(0, 36);
      return {
        accessToken: entraLikeToken(userClaims(oid, "https://api.powerplatform.com", now)),
        expiresOn: now + 3_600_000,
      };
    },
  });
  // Each user's inbound token is made, handed to the cache and dropped, as a request would: the heap
  // growth is everything the cache keeps — entries, downstream tokens, and each caller's latest
  // inbound token (kept for the next refresh).
  const ids = Array.from({ length: users }, () => randomUUID());
  let inboundChars = 0;
  gc();
  await sleep(50);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (const oid of ids) {
    const assertion = `${oid}.${entraLikeToken(userClaims(oid, "api://web-api", now))}`;
    inboundChars += assertion.length;
    await cache.forCaller({ user: oid, assertion, expiresAt: now + 3_600_000 }).get();
  }
  gc();
  await sleep(50);
  gc();
  const after = process.memoryUsage().heapUsed;
  const perUser = (after - before) / users;
  const callers: OboCaller[] = ids.map((oid) => ({
    user: oid,
    assertion: `${oid}.token`,
    expiresAt: now + 3_600_000,
  }));

  // Time to serve a cached user, as attachToken does it (a random user each time); the median of
  // five passes, next to a plain Map.get over the same users as a yardstick of this machine's speed.
  const order = Array.from({ length: lookups }, () => callers[Math.floor(Math.random() * users)]!);
  const plain = new Map(callers.map((c) => [c.user, c]));
  let served = 0;
  const pass = (serve: (caller: OboCaller) => unknown): number => {
    const started = process.hrtime.bigint();
    for (const caller of order) if (serve(caller)) served++;
    return Number(process.hrtime.bigint() - started) / lookups;
  };
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const cachedNs: number[] = [];
  const mapNs: number[] = [];
  for (let i = 0; i < 5; i++) {
    cachedNs.push(pass((c) => cache.forCaller(c).peek()));
    mapNs.push(pass((c) => plain.get(c.user)));
  }
  const ns = median(cachedNs);

  // The bound: one more user evicts the least recently used.
  const extra = randomUUID();
  await cache.forCaller({ user: extra, assertion: `${extra}.x`, expiresAt: now + 3_600_000 }).get();
  const bounded = cache.size === users;

  cache.close();
  console.log(
    JSON.stringify(
      {
        node: process.version,
        users,
        exchanges,
        heapGrowthMiB: Math.round(((after - before) / 2 ** 20) * 10) / 10,
        bytesPerCachedUser: Math.round(perUser),
        inboundTokenCharsPerUser: Math.round(inboundChars / users),
        lookups,
        nsPerCachedLookup: Math.round(ns),
        nsPerCachedLookupPasses: cachedNs.map(Math.round),
        nsPerPlainMapGet: Math.round(median(mapNs)),
        nsPerPlainMapGetPasses: mapNs.map(Math.round),
        allServedFromCache: served === lookups * 10,
        boundedAtLimit: bounded,
      },
      null,
      2,
    ),
  );
}

await main();
