// entra-auth-proxy serve [--config routes.yaml]
import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { type ConfigResult, loadConfig } from "../config/load.ts";
import type { ProxyConfig } from "../config/types.ts";
import { formatConfigIssue } from "../errors.ts";
import { createLogger, type Logger } from "../observability/logger.ts";
import { PreflightError, type RunningProxy, startProxy } from "../server/start.ts";
import { type CliIO, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, loadConfigFor, parseCommandArgs } from "./cli.ts";

const HELP = `Usage: entra-auth-proxy serve [--config routes.yaml]

Runs the proxy. The config path comes from --config, else $ROUTES_FILE, else ./routes.yaml.

Signals:
  SIGTERM, SIGINT  readiness turns 503, new connections stop, in-flight requests finish
                   (up to listen.drainTimeoutMs), exit 0; a second signal exits at once
  SIGHUP           reload routes.yaml and the TLS certificate and key (also done when these
                   files change); a bad config or pair is rejected and logged, and the old one
                   keeps serving; ignored while draining
`;

export async function run(argv: string[], io: CliIO): Promise<number> {
  const { values } = parseCommandArgs(argv, { config: { type: "string", short: "c" } });
  if (values.help) {
    io.stdout.write(HELP);
    return EXIT_OK;
  }
  const { file, config } = await loadConfigFor(values.config, io);
  if (!config) return EXIT_USAGE;

  const logger = createLogger({ level: io.env.LOG_LEVEL ?? "info" });
  let proxy: RunningProxy;
  try {
    proxy = await startProxy(config, { logger, env: io.env });
  } catch (err) {
    if (err instanceof PreflightError) {
      for (const problem of err.problems) io.stderr.write(`${file}: ${problem}\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`entra-auth-proxy serve: cannot start: ${(err as Error).message}\n`);
    return EXIT_RUNTIME;
  }

  const reloader = new ConfigReloader(file, config, io.env, proxy, logger);
  const onHup = () => void reloader.reload("SIGHUP");
  process.on("SIGHUP", onHup);
  reloader.watch();

  const signal = await (io.stopSignal ?? new Promise<string>(() => {}));
  const again = () => {
    logger.warn({ msg: "second stop signal: exiting without waiting for in-flight requests" });
    logger.flush();
    process.exit(EXIT_RUNTIME);
  };
  process.once("SIGTERM", again);
  process.once("SIGINT", again);
  logger.info({ msg: "shutting down", signal, drainTimeoutMs: config.listen.drainTimeoutMs });
  reloader.stop();
  process.off("SIGHUP", onHup);
  // A reload while draining is pointless, and without a listener SIGHUP would kill the process.
  const ignoreHup = () => logger.info({ msg: "SIGHUP ignored while draining" });
  process.on("SIGHUP", ignoreHup);
  await proxy.close();
  process.off("SIGHUP", ignoreHup);
  logger.info({ msg: "stopped" });
  logger.flush();
  return EXIT_OK;
}

/** Loads and validates a routes.yaml (loadConfig; tests pass another). */
export type ConfigLoader = (file: string, env: NodeJS.ProcessEnv) => Promise<ConfigResult>;

/**
 * Reloads routes.yaml on SIGHUP and when it or the TLS listener's certificate and key change
 * (ConfigMaps and cert-manager Secrets are updated in place).
 */
export class ConfigReloader {
  private lastDigest: string | undefined;
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private running: Promise<void> = Promise.resolve();
  private readonly file: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly proxy: RunningProxy;
  private readonly logger: Logger;
  private readonly load: ConfigLoader;
  /** The files whose change triggers a reload: routes.yaml, then the TLS pair of the config in force. */
  private files: string[];

  constructor(
    file: string,
    config: ProxyConfig,
    env: NodeJS.ProcessEnv,
    proxy: RunningProxy,
    logger: Logger,
    load: ConfigLoader = loadConfig,
  ) {
    this.file = file;
    this.env = env;
    this.proxy = proxy;
    this.logger = logger;
    this.load = load;
    this.files = watchedFiles(file, config);
    void this.digest().then((d) => {
      this.lastDigest ??= d;
    });
  }

  /** Watches the files' directories: Kubernetes swaps mounted files by renaming a symlink. */
  watch(): void {
    if (this.stopped) return; // a reload that finishes during the drain adds no watcher
    for (const dir of new Set(this.files.map((f) => dirname(f)))) {
      if (this.watchers.has(dir)) continue;
      try {
        this.watchers.set(
          dir,
          watch(dir, { persistent: false }, () => {
            if (this.timer) clearTimeout(this.timer);
            this.timer = setTimeout(() => void this.reloadIfChanged(), 200);
            this.timer.unref();
          }),
        );
      } catch (err) {
        this.logger.warn({
          msg: "cannot watch the config file; reload with SIGHUP",
          dir,
          error: (err as Error).message,
        });
      }
    }
  }

  stop(): void {
    this.stopped = true;
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    if (this.timer) clearTimeout(this.timer);
  }

  /** Never rejects: whatever goes wrong is logged and the config in force keeps serving. */
  reload(trigger: string): Promise<void> {
    this.running = this.running.then(() => this.reloadNow(trigger));
    return this.running;
  }

  private async reloadIfChanged(): Promise<void> {
    const digest = await this.digest();
    if (digest !== undefined && digest !== this.lastDigest)
      await this.reload(`a watched file changed (${this.files.map((f) => basename(f)).join(", ")})`);
  }

  /** One digest over every watched file, undefined while any of them is unreadable. */
  private async digest(): Promise<string | undefined> {
    try {
      const hash = createHash("sha256");
      for (const f of this.files) hash.update(await readFile(f)).update("\u0000");
      return hash.digest("hex");
    } catch {
      return undefined;
    }
  }

  private async reloadNow(trigger: string): Promise<void> {
    try {
      this.lastDigest = await this.digest();
      const { config, issues } = await this.load(this.file, this.env);
      if (!config) {
        this.reject(trigger, issues.filter((i) => i.severity === "error").map(formatConfigIssue));
        return;
      }
      await this.proxy.reload(config);
      this.proxy.metrics.configReloads.inc({ result: "success" });
      this.files = watchedFiles(this.file, config);
      this.watch();
    } catch (err) {
      // Anything thrown while loading, validating or applying (even a parser's RangeError) is a rejection.
      this.reject(trigger, [err instanceof Error ? err.message : String(err)]);
    }
  }

  private reject(trigger: string, errors: string[]): void {
    this.proxy.metrics.configReloads.inc({ result: "failure" });
    this.proxy.metrics.configRejected();
    this.logger.error({ msg: "config reload rejected; the previous config keeps serving", trigger, errors });
  }
}

function watchedFiles(file: string, config: ProxyConfig): string[] {
  const tls = config.listen.tls;
  return tls ? [file, tls.certFile, tls.keyFile] : [file];
}
