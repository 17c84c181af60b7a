#!/usr/bin/env -S node --max-semi-space-size=4 --no-allocation-site-pretenuring
import { cliCommandsHelp, whatToRun } from "../cli/commands.js";
import { ConfigError, HelpShown, loadConfig } from "./config.js";
import { createLogger } from "./log.js";
import { startServer } from "./server.js";
import { StoreError } from "../store/errors.js";

/** Exit codes, so supervisors and scripts can tell failures apart. */
const exitCode = { ok: 0, failed: 1, badConfig: 2, unusableDatabase: 3 } as const;

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  // A first word naming a command makes this run a client (src/cli/); nothing, or flags, is the server as always.
  const run = whatToRun(argv);
  if (run === "client") return (await import("../cli/run.js")).runCli(argv);
  if (run === "unknown") {
    process.stderr.write(`tally: unknown command "${argv[0]}"\nRun with --help for the commands and the server's options.\n`);
    return exitCode.badConfig;
  }
  let config;
  try {
    config = loadConfig(argv, process.env, cliCommandsHelp());
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

main().then(
  // Exit explicitly: a client that keeps a socket half-open must not keep the process alive.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tally: unexpected failure: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(exitCode.failed);
  },
);
