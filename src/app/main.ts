#!/usr/bin/env -S node --max-semi-space-size=4 --no-allocation-site-pretenuring
import { cliCommandsHelp, whatToRun } from "../cli/commands.js";

/**
 * One executable, two halves: `tally` alone or with flags is the server
 * (serve.ts); `tally <command>` is a client (src/cli/). Each half is loaded
 * only when chosen, so a client command starts without SQLite and the
 * server's modules, and the server without the client's.
 */
async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  switch (whatToRun(argv)) {
    case "client":
      return (await import("../cli/run.js")).runCli(argv);
    case "server":
      return (await import("./serve.js")).serve(argv, cliCommandsHelp());
    case "unknown":
      process.stderr.write(`tally: unknown command "${argv[0]}"\nRun with --help for the commands and the server's options.\n`);
      return 2;
  }
}

main().then(
  // Exit explicitly: a client that keeps a socket half-open must not keep the process alive.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tally: unexpected failure: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
