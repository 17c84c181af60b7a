import type { Command } from "commander";
import { ConsumerInfoSchema, type ConsumerInfo } from "../../gen/aggregator/v1/aggregator_pb.js";
import { summaryOf } from "./commands.js";
import { addConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { writeLine } from "./output.js";
import { protoJsonLine, timestampText, word } from "./render.js";
import { tableLines } from "./table.js";

interface ConsumersOptions extends ConnectionOptions {
  json?: boolean;
}

/** Registers `tally consumers` and `tally consumers delete NAME`. */
export function addConsumersCommand(program: Command): void {
  const consumers = program
    .command("consumers")
    .summary(summaryOf("consumers"))
    .description("List durable consumers with their acked seq and lag (Consumers); `consumers delete NAME` forgets one")
    .option("--json", "print each consumer as one line of proto JSON (NDJSON)")
    // Both have --target: without this (and the program's) the parent would take delete's flags, and delete would connect to the default.
    .enablePositionalOptions();
  addConnectionOptions(consumers).action((o: ConsumersOptions) => listConsumers(o));

  const remove = consumers
    .command("delete")
    .argument("<name>", "the consumer to delete")
    .description("Forget a durable consumer and its cursor; its live tail, if any, ends (DeleteConsumer)");
  addConnectionOptions(remove).action(async (name: string, o: ConnectionOptions) => {
    const answer = await connect(o).deleteConsumer({ name });
    writeLine(`deleted consumer ${word(name)} (it had acked up to seq ${answer.ackedSeq})`);
  });
}

async function listConsumers(o: ConsumersOptions): Promise<void> {
  const client = connect(o);
  const all: ConsumerInfo[] = [];
  let after = "";
  let head = 0n;
  for (;;) {
    const page = await client.consumers({ after, limit: 1000 });
    head = page.headSeq;
    if (o.json === true) for (const c of page.consumers) writeLine(protoJsonLine(ConsumerInfoSchema, c));
    else all.push(...page.consumers);
    if (!page.hasMore) break;
    after = page.nextAfter;
  }
  if (o.json === true) return;
  if (all.length === 0) {
    writeLine(`no consumers (head seq ${head})`);
    return;
  }
  for (const line of consumerTableLines(all)) writeLine(line);
}

/** Consumers as a table: name, what it follows, where it stands, whether it is being read right now. */
export function consumerTableLines(consumers: ConsumerInfo[]): string[] {
  return tableLines(
    [
      { heading: "NAME" },
      { heading: "FILTER" },
      { heading: "ACKED", align: "right" },
      { heading: "LAG", align: "right" },
      { heading: "LIVE", align: "right" },
      { heading: "ACKED_AT" },
    ],
    consumers.map((c) => [word(c.name), filterText(c), c.ackedSeq.toString(), `${c.lag}${c.lagCapped ? "+" : ""}`, String(c.subscribers), timestampText(c.ackedAt)]),
  );
}

/** A consumer's filters in the flags that would create it ("--topic orders --source web"), or "(all events)". */
export function filterText(c: ConsumerInfo): string {
  const parts: string[] = [];
  if (c.topic !== "") parts.push(`--topic ${word(c.topic)}`);
  if (c.topicPrefix !== "") parts.push(`--topic-prefix ${word(c.topicPrefix)}`);
  if (c.source !== "") parts.push(`--source ${word(c.source)}`);
  if (c.since !== undefined) parts.push(`--since ${timestampText(c.since)}`);
  return parts.length === 0 ? "(all events)" : parts.join(" ");
}
