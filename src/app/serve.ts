import { ConfigError, HelpShown, loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { startServer } from "./server.js";
import { StoreError } from "../store/errors.js";

/** Exit codes, so supervisors and scripts can tell failures apart. */
const exitCode = { ok: 0, failed: 1, badConfig: 2, unusableDatabase: 3 } as const;

/**
 * The server: reads its flags (`helpFooter` ends --help), serves until
 * SIGTERM or SIGINT, then finishes accepted work within the shutdown
 * deadline. Answers the process's exit code.
 */
export async function serve(argv: string[], helpFooter = ""): Promise<number> {
  let config;
  try {
    config = loadConfig(argv, process.env, helpFooter);
  } catch (err) {
    if (err instanceof HelpShown) return exitCode.ok;
    if (err instanceof ConfigError) {
      process.stderr.write(`tally: ${err.message}\nRun with --help for the options.\n`);
      return exitCode.badConfig;
    }
    throw err;
  }
  const log = createLogger(config.logLevel);

  let server;
  try {
    server = await startServer(config, log);
  } catch (err) {
    if (err instanceof StoreError && err.kind === "unusable") {
      log.fatal({ db: config.dbPath }, err.message);
      return exitCode.unusableDatabase;
    }
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE" || code === "EACCES" || code === "EADDRNOTAVAIL") {
      log.fatal({ port: config.port, host: config.host }, `cannot listen on ${config.host}:${config.port}: ${code}`);
      return exitCode.failed;
    }
    throw err;
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGTERM", () => resolve("SIGTERM"));
    process.once("SIGINT", () => resolve("SIGINT"));
  });
  log.info({ signal }, "shutting down: finishing accepted work");
  const deadline = setTimeout(() => {
    log.error({ timeoutMs: config.shutdownTimeoutMs }, "shutdown deadline passed; exiting with work unfinished");
    process.exit(exitCode.failed);
  }, config.shutdownTimeoutMs);
  deadline.unref();
  await server.close();
  return exitCode.ok;
}
