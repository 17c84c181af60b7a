/**
 * The words that make `tally` a client instead of a server. Kept free of
 * imports: main.ts reads it before deciding which half to load, and the
 * server must not pay for the client's modules.
 */

/** Each client command with the line `tally --help` shows for it. */
export const cliCommands = [
  { name: "tail", summary: "follow events as they are stored, from a start point (Subscribe); a named consumer acks as it prints" },
  { name: "publish", summary: "publish events from an NDJSON or JSON file, or stdin (PublishStream)" },
  { name: "events", summary: "list stored events, one page or all of them (Events)" },
  { name: "stats", summary: "show the counters and the largest topics (Stats)" },
  { name: "consumers", summary: "list durable consumers, or delete one (Consumers, DeleteConsumer)" },
  { name: "help", summary: "show the help of a command: tally help tail" },
] as const;

/**
 * What the arguments ask for: a client command, the server (no arguments,
 * or flags, as before there were commands), or a word that is neither,
 * which the server would only call "too many arguments".
 */
export function whatToRun(argv: readonly string[]): "client" | "server" | "unknown" {
  const first = argv[0];
  if (first === undefined || first.startsWith("-")) return "server";
  return cliCommands.some((c) => c.name === first) ? "client" : "unknown";
}

/** The commands section appended to the server's --help, so one help lists both halves. */
export function cliCommandsHelp(): string {
  const width = Math.max(...cliCommands.map((c) => c.name.length));
  const lines = cliCommands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    "",
    "Commands (tally <command> --help for their options; without one, tally is the server):",
    ...lines,
    "",
    "Client commands connect to --target (env TALLY_TARGET, default http://127.0.0.1:8080) with --token (env TALLY_TOKEN).",
  ].join("\n");
}

/** The one-line summary of a command, so `tally --help` and `tally help` say the same. */
export function summaryOf(name: (typeof cliCommands)[number]["name"]): string {
  return cliCommands.find((c) => c.name === name)!.summary;
}
