import type { Command } from "commander";
import { StatsResponseSchema, type StatsResponse } from "../../gen/aggregator/v1/aggregator_pb.js";
import { countArgument } from "./arguments.js";
import { summaryOf } from "./commands.js";
import { addConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { writeLine } from "./output.js";
import { protoJsonLine, timestampText } from "./render.js";
import { tableLines } from "./table.js";

interface StatsOptions extends ConnectionOptions {
  top?: number;
  json?: boolean;
}

/** Registers `tally stats`. */
export function addStatsCommand(program: Command): void {
  const command = program
    .command("stats")
    .summary(summaryOf("stats"))
    .description("Show what the server received, stored and dropped, and the topics with the most events (Stats)")
    .option("--top <n>", "how many of the largest topics to list (server default 100)", countArgument(1000))
    .option("--json", "print the StatsResponse as proto JSON");
  addConnectionOptions(command).action(async (o: StatsOptions) => {
    const stats = await connect(o).stats({ topTopics: o.top ?? 0 });
    for (const line of o.json === true ? [protoJsonLine(StatsResponseSchema, stats)] : statsLines(stats)) writeLine(line);
  });
}

/** The counters as name/value lines, then the top topics as a table: what a person checks first. */
export function statsLines(s: StatsResponse): string[] {
  const counters: [string, string][] = [
    ["received", s.received.toString()],
    ["unique_processed", s.uniqueProcessed.toString()],
    ["duplicate_dropped", s.duplicateDropped.toString()],
    ["conflicts", s.conflicts.toString()],
    ["rejected_invalid", s.rejectedInvalid.toString()],
    ["rejected_overload", s.rejectedOverload.toString()],
    ["queue", `${s.queueEvents} events, ${s.queueBytes} bytes`],
    ["memory_held", `${s.memoryHeldBytes} bytes`],
    ["topic_count", s.topicCount.toString()],
    ["uptime", `${duration(s.uptimeSeconds)} (started ${timestampText(s.startedAt)})`],
  ];
  // Headings would only repeat the names; the first line of the table is dropped.
  const lines = tableLines([{ heading: "" }, { heading: "" }], counters).slice(1);
  if (s.topics.length === 0) return lines;
  const topics = tableLines(
    [{ heading: "TOPIC" }, { heading: "EVENTS", align: "right" }],
    s.topics.map((t) => [t.name, t.count.toString()]),
  );
  return [...lines, "", ...topics];
}

/** Seconds as "3d 4h 05m 06s", leading zero units left out. */
export function duration(seconds: number): string {
  let rest = Math.floor(seconds);
  const parts: string[] = [];
  for (const [unit, size] of [["d", 86_400], ["h", 3_600], ["m", 60]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0 || parts.length > 0) parts.push(parts.length > 0 && unit !== "d" ? `${String(n).padStart(2, "0")}${unit}` : `${n}${unit}`);
  }
  parts.push(parts.length > 0 ? `${String(rest).padStart(2, "0")}s` : `${rest}s`);
  return parts.join(" ");
}
