// The three configurations a section loads — (a) direct, (b) bare http-proxy-3, (c) entra-auth-proxy —
// and the ways sections share them: a sanity check, a warm-up, and taking turns one at a time.
import { PATHS, PROXY_PREFIX } from "../bench-protocol.ts";
import type { Child } from "./children.ts";
import { load, request } from "./measure.ts";
import { type Options, PAYLOAD, type Payload } from "./options.ts";

export interface Config {
  name: "a" | "b" | "c";
  label: string;
  /** The server process whose CPU time a run measures. */
  pid: number;
  base: string;
  prefix: string;
  headers: Record<string, string>;
}

export function configurations(upstream: Child, bare: Child, proxy: Child): Config[] {
  return [
    {
      name: "a",
      label: "(a) direct to upstream",
      pid: upstream.pid,
      base: upstream.ready.url,
      prefix: "",
      headers: {},
    },
    {
      name: "b",
      label: "(b) bare http-proxy-3 + static bearer",
      pid: bare.pid,
      base: bare.ready.url,
      prefix: "",
      headers: {},
    },
    {
      name: "c",
      label: "(c) entra-auth-proxy (API key, emulator token, metrics + logs)",
      pid: proxy.pid,
      base: proxy.ready.url,
      prefix: PROXY_PREFIX,
      headers: { "x-api-key": proxy.ready.apiKey! },
    },
  ];
}

/** The URL of `payload` on configuration `c`. */
export function urlOf(c: Config, payload: Payload): string {
  return `${c.base}${c.prefix}${PAYLOAD[payload].path}`;
}

/** Seconds of full load each server gets on each payload before a section's first round. */
export const SECTION_WARMUP_S = 3;

/**
 * Full load on every payload on all `servers` at once before a section's first round, so that JIT
 * tiering and the first heap-sizing collections are not measured.
 */
export async function warmUp(opt: Options, servers: readonly Config[]): Promise<void> {
  for (const payload of opt.payloads) {
    await Promise.all(
      servers.map((c) =>
        load(urlOf(c, payload), c.headers, SECTION_WARMUP_S, opt.settings.connections, false),
      ),
    );
  }
}

/** The chosen configurations in the round's order, (b) and (c) swapping places every round. */
function inRoundOrder(opt: Options, configs: Config[], round: number): Config[] {
  const order = round % 2 === 1 ? ["a", "b", "c"] : ["a", "c", "b"];
  return configs
    .filter((x) => opt.configs.has(x.name))
    .sort((x, y) => order.indexOf(x.name) - order.indexOf(y.name));
}

/**
 * Runs every configuration for every payload, `rounds` times, in alternating order, with the proxy not
 * being measured stopped (SIGSTOP), because on the shared CPU its leftover garbage collection would
 * land in the other's measured window.
 */
export async function oneAtATime<T>(
  opt: Options,
  configs: Config[],
  rounds: number,
  run: (c: Config, payload: Payload, round: number) => Promise<T>,
): Promise<T[]> {
  const servers = configs.filter((x) => x.name !== "a");
  const pids = servers.map((x) => x.pid);
  const results: T[] = [];
  const alone = (c: Config) => runOnly(pids, c.pid);
  try {
    for (const c of servers) {
      alone(c);
      await warmUp(opt, [c]);
    }
    for (let round = 1; round <= rounds; round++) {
      for (const payload of opt.payloads) {
        for (const c of inRoundOrder(opt, configs, round)) {
          alone(c);
          results.push(await run(c, payload, round));
        }
      }
    }
  } finally {
    runOnly(pids, undefined);
  }
  return results;
}

/** Continues process `only` and stops (SIGSTOP) the others of `pids`; `undefined` continues them all. */
export function runOnly(pids: readonly number[], only: number | undefined): void {
  for (const pid of pids) process.kill(pid, only === undefined || pid === only ? "SIGCONT" : "SIGSTOP");
}

/** Each configuration answers 200 with the exact bodies, and (b)/(c) attach a bearer as long as a token. */
export async function sanityCheck(configs: Config[], bearerLength: number): Promise<void> {
  for (const c of configs) {
    for (const [path, size] of [
      [PATHS.json1k, 1024],
      [PATHS.json64k, 65536],
    ] as const) {
      const r = await request(`${c.base}${c.prefix}${path}`, { headers: c.headers });
      if (r.status !== 200 || r.body.length !== size) {
        throw new Error(`${c.label} ${path}: status ${r.status}, ${r.body.length} bytes`);
      }
    }
    const auth = await request(`${c.base}${c.prefix}${PATHS.echoAuth}`, { headers: c.headers });
    const { bearer, length } = JSON.parse(auth.body.toString()) as { bearer: boolean; length: number };
    if (bearer !== (c.name !== "a")) throw new Error(`${c.label}: upstream saw bearer=${bearer}`);
    if (c.name !== "a" && length !== bearerLength) {
      throw new Error(`${c.label}: bearer of ${length} characters, expected ${bearerLength}`);
    }
  }
  const noKey = await request(`${configs[2]!.base}${PROXY_PREFIX}${PATHS.json1k}`);
  if (noKey.status !== 401) throw new Error(`(c) without an API key answered ${noKey.status}, expected 401`);
}
