import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import type { Command } from "commander";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import type { Readable } from "node:stream";
import { PublishStreamRequestSchema, PublishStreamResponseSchema, type Event, type PublishStreamRequest, type PublishStreamResponse } from "../../gen/aggregator/v1/aggregator_pb.js";
import { countArgument } from "./arguments.js";
import { summaryOf } from "./commands.js";
import { BatchPositions } from "./batch-positions.js";
import { addConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { describePosition, readInput, type InputItem, type Position } from "./event-input.js";
import { ExplainedFailure, exitCode, InputError } from "./failure.js";
import { note, writeLine } from "./output.js";
import { startProgress } from "./progress.js";
import { explainRefusal } from "./publish-refusal.js";
import { plural, protoJsonLine } from "./render.js";

interface PublishOptions extends ConnectionOptions {
  batch: number;
  batchBytes: number;
  json?: boolean;
}

/** Bad events listed at most, so a file of a million bad lines gets a readable answer. */
const maxListedProblems = 20;

/** Reads the input in large chunks: the lines are split here anyway. */
const readChunkBytes = 1024 * 1024;

/** Registers `tally publish`. */
export function addPublishCommand(program: Command): void {
  const command = program
    .command("publish")
    .summary(summaryOf("publish"))
    .argument("<file>", "NDJSON or JSON file of events, or - for stdin")
    .description(
      "Publish events {topic, event_id, timestamp, source, payload} on one PublishStream, in batches. " +
        "NDJSON (one event per line) is read and sent a line at a time, so a file of any size is fine; " +
        'a JSON array, or a {"events": [...]} document, is read whole into memory first. ' +
        "Events are checked by the server's rules before they are sent: a file with a bad event sends nothing (exit 2, naming the line); " +
        "from stdin, the batches before the bad line are sent. Re-sending is safe: stored events come back as duplicates.",
    )
    .option("--batch <n>", "events per stream message, at most the server's --max-batch", countArgument(1_000_000), 500)
    .option("--batch-bytes <n>", "about this many bytes of events per stream message, below the server's --max-message-bytes", countArgument(1024 ** 3), 1024 * 1024)
    .option("--json", "print the totals as proto JSON");
  addConnectionOptions(command).action((file: string, o: PublishOptions) => publish(file, o));
}

async function publish(file: string, o: PublishOptions): Promise<void> {
  const fromStdin = file === "-";
  // A file can be read twice: once to check every event, so a bad one stops the publish before anything is sent.
  const total = fromStdin || !(await isRegularFile(file)) ? undefined : await checkFile(file);
  if (total === 0) note(`no events in ${file}`);

  const client = connect(o);
  const positions = new BatchPositions();
  const progress = startProgress("events", total);
  const startedAt = performance.now();
  let sent = 0;
  let badInput: InputError | undefined;

  async function* messages(): AsyncGenerator<PublishStreamRequest> {
    let events: Event[] = [];
    let where: Position[] = [];
    let bytes = 0;
    const flush = () => {
      positions.add(where);
      sent += events.length;
      progress.update(sent);
      const message = create(PublishStreamRequestSchema, { events });
      events = [];
      where = [];
      bytes = 0;
      return message;
    };
    // A bad event or an unreadable input ends the stream cleanly, so what came before is answered for (from stdin nothing could be checked ahead).
    try {
      for await (const item of readInput(open(file))) {
        if (!item.ok) {
          badInput = new InputError(`${problemLines(item).join("\n  ")}\n  publishing stopped there; ${plural(sent + events.length, "event")} before it were sent`);
          break;
        }
        if (events.length > 0 && (events.length >= o.batch || bytes + item.bytes > o.batchBytes)) yield flush();
        events.push(item.event);
        where.push(item.position);
        bytes += item.bytes;
      }
    } catch (err) {
      badInput = err instanceof InputError ? err : new InputError(`${file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (events.length > 0) yield flush();
  }

  let totals: PublishStreamResponse;
  try {
    totals = await client.publishStream(messages());
  } catch (err) {
    if (err instanceof ConnectError) throw new ExplainedFailure(explainRefusal(err, positions).join("\n"), exitCode.failed);
    throw err;
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - startedAt) / 1000;
  if (!process.stderr.isTTY) note(`sent ${plural(sent, "event")} in ${plural(positions.count, "batch")} in ${seconds.toFixed(2)} s (${Math.round(sent / Math.max(seconds, 1e-3))} events/s)`);
  writeLine(o.json === true ? protoJsonLine(PublishStreamResponseSchema, totals) : summaryLine(totals));
  if (badInput !== undefined) throw badInput;
}

/** The totals as one line for a person. */
export function summaryLine(t: PublishStreamResponse): string {
  return `received ${t.received}, accepted ${t.accepted}, duplicates ${t.duplicates}, conflicts ${t.conflicts}, batches ${t.batches}`;
}

/** Reads the whole file once and answers its number of events, or throws InputError listing the bad ones. */
async function checkFile(file: string): Promise<number> {
  const size = (await stat(file)).size;
  const stream = open(file);
  const progress = startProgress("bytes checked", size);
  let events = 0;
  let bad = 0;
  const listed: string[] = [];
  try {
    for await (const item of readInput(counting(stream, (n) => progress.update(n)))) {
      if (item.ok) events++;
      else {
        bad++;
        if (listed.length < maxListedProblems) listed.push(...problemLines(item));
      }
    }
  } finally {
    progress.stop();
  }
  if (bad === 0) return events;
  const more = bad > maxListedProblems ? [`and ${bad - maxListedProblems} more`] : [];
  throw new InputError(`${file}: ${plural(bad, "invalid event")}, nothing sent:\n  ${[...listed, ...more].join("\n  ")}`);
}

function problemLines(item: Extract<InputItem, { ok: false }>): string[] {
  return item.problems.map((p) => `${describePosition(item.position)}: ${p}`);
}

function open(file: string): Readable {
  return file === "-" ? process.stdin : createReadStream(file, { highWaterMark: readChunkBytes });
}

/** Passes chunks on, telling `read` how many bytes went by, for the check's progress. */
async function* counting(chunks: AsyncIterable<Buffer>, read: (bytes: number) => void): AsyncGenerator<Buffer> {
  let bytes = 0;
  for await (const chunk of chunks) {
    bytes += chunk.length;
    read(bytes);
    yield chunk;
  }
}

/** True for a file that can be read twice; false for a pipe or a device, read once as it comes. */
async function isRegularFile(file: string): Promise<boolean> {
  let stats;
  try {
    stats = await stat(file);
  } catch (err) {
    throw new InputError(`${file}: cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (stats.isDirectory()) throw new InputError(`${file}: is a directory`);
  return stats.isFile();
}
