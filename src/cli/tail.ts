import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Option, type Command } from "commander";
import { SubscribeRequest_Start, type SubscribeRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { AckBatcher } from "./ack-batcher.js";
import { countArgument, seqArgument, timestampArgument } from "./arguments.js";
import { summaryOf } from "./commands.js";
import { addConnectionOptions, connect, type ConnectionOptions } from "./connection.js";
import { describeFailure } from "./failure.js";
import { follow } from "./follow.js";
import { note, onStdoutClosed, writeLine } from "./output.js";
import { eventJsonLine, eventLine } from "./render.js";

/** tail's options as commander hands them over. */
export interface TailOptions extends ConnectionOptions {
  topic?: string;
  topicPrefix?: string;
  source?: string;
  since?: Timestamp;
  after?: bigint;
  new?: boolean;
  consumer?: string;
  heartbeatMs?: number;
  json?: boolean;
  verbose?: boolean;
}

/**
 * How often an idle connection is PINGed: a server that vanished without a
 * word (a cable, a crashed host) is noticed within about a minute, and the
 * tail reconnects; the server's heartbeats say nothing while it is gone.
 */
const pingIntervalMs = 30_000;

/** Reconnect attempts before a tail without --verbose says the server is gone: one or two are a restart, not news. */
const quietAttempts = 3;

/** Registers `tally tail`. */
export function addTailCommand(program: Command): void {
  const command = program
    .command("tail")
    .summary(summaryOf("tail"))
    .description(
      "Print stored events, then new ones as they commit, one per line (Subscribe). Replays from the beginning unless " +
        "--after or --new says otherwise; with --consumer, resumes after what that consumer acked and acks what it prints. " +
        "Reconnects by itself when the server restarts, after the last event printed. Ctrl-C acks what was printed and exits 0.",
    )
    .addOption(new Option("--topic <name>", "only this topic").conflicts("topicPrefix"))
    .option("--topic-prefix <prefix>", 'only topics starting with this, e.g. "orders."')
    .option("--source <name>", "only events from this source")
    .option("--since <time>", "only events whose timestamp is at or after this RFC 3339 instant", timestampArgument)
    .addOption(new Option("--after <seq>", "start after this seq (0: from the beginning, even for a consumer)").argParser(seqArgument).conflicts("new"))
    .option("--new", "only events that commit from now on")
    .option("--consumer <name>", "a durable consumer: created on first use, resumed and acked afterwards")
    .option("--heartbeat-ms <n>", "ask for a heartbeat after this much quiet (server default 15000)", countArgument(3_600_000))
    .option("--json", "print each event as one line of proto JSON (NDJSON)")
    .option("--verbose", "report heartbeats and reconnects on stderr");
  addConnectionOptions(command).action((options: TailOptions) => tail(options));
}

/** The Subscribe request the options ask for. */
export function subscribeRequestOf(o: TailOptions): MessageInitShape<typeof SubscribeRequestSchema> {
  let start = SubscribeRequest_Start.UNSPECIFIED;
  if (o.new === true) start = SubscribeRequest_Start.NEW;
  // --after 0 means the beginning, also for a consumer whose own cursor would otherwise be used.
  else if (o.after === 0n) start = SubscribeRequest_Start.BEGINNING;
  return {
    topic: o.topic ?? "",
    topicPrefix: o.topicPrefix ?? "",
    source: o.source ?? "",
    since: o.since,
    afterSeq: o.after ?? 0n,
    start,
    consumer: o.consumer ?? "",
    heartbeatMs: o.heartbeatMs ?? 0,
  };
}

async function tail(o: TailOptions): Promise<void> {
  const client = connect(o, { pingIntervalMs });
  const stop = new AbortController();
  let failure: unknown;
  const fail = (err: unknown) => {
    failure ??= err;
    stop.abort();
  };
  const consumer = o.consumer;
  const acks =
    consumer === undefined
      ? undefined
      : new AckBatcher(async (seq) => {
          await client.ack({ consumer, seq });
        }, fail);
  const print = o.json === true ? eventJsonLine : eventLine;
  let outageReported = false;
  const answered = () => {
    if (outageReported) note("reconnected");
    outageReported = false;
  };

  // The first Ctrl-C (or SIGTERM, or the reader closing the pipe) ends the stream and acks; a second one kills at once, as usual.
  const stopNow = () => stop.abort();
  process.once("SIGINT", stopNow);
  process.once("SIGTERM", stopNow);
  onStdoutClosed(stopNow);
  try {
    await follow(
      client,
      subscribeRequestOf(o),
      {
        event(event) {
          answered();
          writeLine(print(event));
          acks?.printed(event.seq);
        },
        heartbeat(h) {
          answered();
          if (o.verbose === true) note(`heartbeat: head_seq ${h.headSeq}, cursor ${h.cursor}${h.caughtUp ? ", caught up" : ""}`);
          // Every matching event up to the cursor was printed: acking it spares the next run re-reading what the filters skip.
          acks?.printed(h.cursor, 0);
        },
        reconnecting(reason, attempt, delayMs, afterSeq) {
          const why = reason === undefined ? "the server ended the stream" : describeFailure(reason).text;
          if (o.verbose === true) note(`${why}; reconnecting in ${delayMs} ms after seq ${afterSeq}`);
          else if (attempt === quietAttempts) {
            note(`${why}; still reconnecting, will resume after seq ${afterSeq}`);
            outageReported = true;
          }
        },
      },
      stop.signal,
    );
  } catch (err) {
    failure ??= err;
  } finally {
    process.removeListener("SIGINT", stopNow);
    process.removeListener("SIGTERM", stopNow);
  }
  if (acks !== undefined) {
    try {
      await acks.close();
    } catch (err) {
      note(`could not ack what was printed (acked up to seq ${acks.ackedSeq}): ${describeFailure(err).text}`);
      failure ??= err;
    }
  }
  if (failure !== undefined) throw failure;
}
