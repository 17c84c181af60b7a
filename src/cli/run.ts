import { Command, CommanderError } from "commander";
import { addConsumersCommand } from "./consumers.js";
import { addEventsCommand } from "./events.js";
import { describeFailure, exitCode } from "./failure.js";
import { addPublishCommand } from "./publish.js";
import { addStatsCommand } from "./stats.js";
import { addTailCommand } from "./tail.js";

/** The client commands under one program, each registered by its own module. */
export function buildProgram(): Command {
  const program = new Command("tally")
    .description("tally's client commands; run tally with no command (or with server flags) to start the server")
    .exitOverride()
    // Commander's own "error: ..." becomes "tally: ...", like every other failure of the CLI.
    .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, "tally: ")) })
    .showHelpAfterError("(add --help for the options)")
    // Each command owns the flags after its name (consumers and consumers delete both take --target).
    .enablePositionalOptions();
  addTailCommand(program);
  addPublishCommand(program);
  addEventsCommand(program);
  addStatsCommand(program);
  addConsumersCommand(program);
  return program;
}

/**
 * Runs a client command (argv starts with its name) and answers the exit
 * code: 0 done, 1 the server refused or could not be reached, 2 the command
 * line or the input is wrong. Every failure is one line (or a few) on
 * stderr starting with "tally:", never a stack trace.
 */
export async function runCli(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return exitCode.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.code === "commander.helpDisplayed" || err.code === "commander.help" || err.exitCode === 0 ? exitCode.ok : exitCode.badUsage;
    }
    const failure = describeFailure(err);
    process.stderr.write(`tally: ${failure.text}\n`);
    return failure.code;
  }
}
