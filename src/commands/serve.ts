// entra-auth-proxy serve [--config routes.yaml]
import { createHash } from "node:crypto";
import { type FSWatcher, watch } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { loadConfig } from "../config/load.ts";
import { formatConfigIssue } from "../errors.ts";
import { createLogger, type Logger } from "../observability/logger.ts";
import { PreflightError, type RunningProxy, startProxy } from "../server/start.ts";
import { type CliIO, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, loadConfigFor, parseCommandArgs } from "./cli.ts";

const HELP = `Usage: entra-auth-proxy serve [--config routes.yaml]

Runs the proxy. The config path comes from --config, else $ROUTES_FILE, else ./routes.yaml.

Signals:
  SIGTERM, SIGINT  readiness turns 503, new connections stop, in-flight requests finish
                   (up to listen.drainTimeoutMs), exit 0; a second signal exits at once
  SIGHUP           reload routes.yaml (also done when the file changes); a bad config is
                   rejected and logged, and the old one keeps serving
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

  const reloader = new ConfigReloader(file, io.env, proxy, logger);
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

/** Reloads routes.yaml on SIGHUP and when the file changes (ConfigMaps are updated in place). */
class ConfigReloader {
  private lastDigest: string | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private readonly file: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly proxy: RunningProxy;
  private readonly logger: Logger;

  constructor(file: string, env: NodeJS.ProcessEnv, proxy: RunningProxy, logger: Logger) {
    this.file = file;
    this.env = env;
    this.proxy = proxy;
    this.logger = logger;
    void this.digest().then((d) => {
      this.lastDigest ??= d;
    });
  }

  /** Watches the directory: Kubernetes swaps a ConfigMap's files by renaming a symlink. */
  watch(): void {
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, () => {
        if (this.timer) clearTimeout(this.timer);
        this.timer = setTimeout(() => void this.reloadIfChanged(), 200);
        this.timer.unref();
      });
    } catch (err) {
      this.logger.warn({
        msg: "cannot watch the config file; reload with SIGHUP",
        error: (err as Error).message,
      });
    }
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearTimeout(this.timer);
  }

  reload(trigger: string): Promise<void> {
    this.running = this.running.then(() => this.reloadNow(trigger));
    return this.running;
  }

  private async reloadIfChanged(): Promise<void> {
    const digest = await this.digest();
    if (digest !== undefined && digest !== this.lastDigest)
      await this.reload(`file changed (${basename(this.file)})`);
  }

  private async digest(): Promise<string | undefined> {
    try {
      return createHash("sha256")
        .update(await readFile(this.file))
        .digest("hex");
    } catch {
      return undefined;
    }
  }

  private async reloadNow(trigger: string): Promise<void> {
    this.lastDigest = await this.digest();
    const { config, issues } = await loadConfig(this.file, this.env);
    const errors = issues.filter((i) => i.severity === "error").map(formatConfigIssue);
    if (!config) {
      this.proxy.metrics.configReloads.inc({ result: "failure" });
      this.logger.error({
        msg: "config reload rejected; the previous config keeps serving",
        trigger,
        errors,
      });
      return;
    }
    try {
      await this.proxy.reload(config);
      this.proxy.metrics.configReloads.inc({ result: "success" });
    } catch (err) {
      this.proxy.metrics.configReloads.inc({ result: "failure" });
      this.logger.error({
        msg: "config reload rejected; the previous config keeps serving",
        trigger,
        errors: [(err as Error).message],
      });
    }
  }
}
