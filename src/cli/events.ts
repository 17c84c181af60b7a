import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Command } from "commander";
import type { StoredEvent } from "../../gen/aggregator/v1/aggregator_pb.js";
import { countArgument, seqArgument, timestampArgument } from "./arguments.js";
import { summaryOf } from "./commands.js";
import { addConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { note, writeLine } from "./output.js";
import { eventJsonLine, timestampText, word } from "./render.js";
import { tableLines, type Column } from "./table.js";

interface EventsOptions extends ConnectionOptions {
  topic?: string;
  source?: string;
  since?: Timestamp;
  until?: Timestamp;
  after?: bigint;
  limit?: number;
  all?: boolean;
  json?: boolean;
}

/** The server's largest page: --all reads with it, since it pages on anyway. */
const maxPage = 1000;

/** Registers `tally events`. */
export function addEventsCommand(program: Command): void {
  const command = program
    .command("events")
    .summary(summaryOf("events"))
    .description("List stored events in commit order: one page, or every page with --all (Events)")
    .option("--topic <name>", "only this topic")
    .option("--source <name>", "only events from this source")
    .option("--since <time>", "only events whose timestamp is at or after this RFC 3339 instant", timestampArgument)
    .option("--until <time>", "only events whose timestamp is before this RFC 3339 instant", timestampArgument)
    .option("--after <seq>", "only events stored after this seq (a previous page's next cursor)", seqArgument)
    .option("--limit <n>", `events per page (server default 100, at most ${maxPage}; --all reads ${maxPage} at a time)`, countArgument(maxPage))
    .option("--all", "read on page after page until the last matching event")
    .option("--json", "print each event as one line of proto JSON (NDJSON)");
  addConnectionOptions(command).action((o: EventsOptions) => listEvents(o));
}

async function listEvents(o: EventsOptions): Promise<void> {
  const client = connect(o);
  let after = o.after ?? 0n;
  let first = true;
  for (;;) {
    const page = await client.events({
      topic: o.topic ?? "",
      source: o.source ?? "",
      since: o.since,
      until: o.until,
      afterSeq: after,
      limit: o.limit ?? (o.all === true ? maxPage : 0),
    });
    if (o.json === true) for (const event of page.events) writeLine(eventJsonLine(event));
    else if (page.events.length > 0) {
      // Each page is laid out on its own (--all never holds more than one), with the headings once.
      for (const line of eventTableLines(page.events, process.stdout.isTTY ? process.stdout.columns : undefined).slice(first ? 0 : 1)) writeLine(line);
      first = false;
    }
    after = page.nextCursor;
    if (!page.hasMore) return;
    if (o.all !== true) {
      note(`more events may follow: add --after ${page.nextCursor} (or --all)`);
      return;
    }
  }
}

const eventColumns: Column[] = [
  { heading: "SEQ", align: "right" },
  { heading: "TOPIC" },
  { heading: "EVENT_ID" },
  { heading: "SOURCE" },
  { heading: "TIMESTAMP" },
  { heading: "PAYLOAD" },
];

/** Events as a table; on a terminal `width` wide, each line is cut to fit (payloads are long), with "…" where it was cut. */
export function eventTableLines(events: StoredEvent[], width?: number): string[] {
  const rows = events.map((e) => [e.seq.toString(), word(e.topic), word(e.eventId), word(e.source), timestampText(e.timestamp), JSON.stringify(e.payload ?? {})]);
  const lines = tableLines(eventColumns, rows);
  if (width === undefined || width < 20) return lines;
  return lines.map((line) => (line.length > width ? `${line.slice(0, width - 1)}…` : line));
}
