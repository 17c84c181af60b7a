import { connect, createInbox, headers, type Msg, type NatsConnection } from "@nats-io/transport-node";
import type { EventCache } from "../load/event-cache.js";
import { eventFields, topicNames } from "../load/events.js";
import type { LoadResult, RunRecord } from "../load/run-record.js";
import type { Workload, WorkloadSpec } from "../load/workload.js";

/**
 * JetStream's side of the ingest comparison, run in the load generator:
 * the same workload (re-sends included) as tally's PublishStream, each
 * message the same protobuf Event bytes tally is sent, on subject
 * `<prefix>.<topic>` with Nats-Msg-Id `<topic>/<event_id>` so JetStream
 * drops re-sends as tally does. `concurrency` connections each publish a
 * window of `batch` messages with async acks and wait for all its acks
 * before the next, as a PublishStream message waits for its commit.
 *
 * Each message goes out as js.publish sends it (a core publish with a reply
 * subject and the Nats-Msg-Id header; the stream's PubAck comes back on the
 * reply subject), but without js.publish's per-message request, timer and
 * promise: with them the load generator spent 5 times the CPU per message
 * and held JetStream to 8-9k messages/s, against 38-46k without (100k
 * messages of 260 bytes, 4 connections, windows of 500), so it measured the
 * client. tally's load generator writes pre-encoded gRPC frames for the
 * same reason.
 */

/** Publish a workload into a JetStream stream. */
export interface JetStreamJob {
  kind: "jetstream";
  url: string;
  subjectPrefix: string;
  workload: WorkloadSpec;
  batch: number;
  concurrency: number;
  topics: number;
  /** As for LoadJob: the ingest runs share their events' encodings with tally's. */
  cache: "shared" | "fresh";
}

/** A window whose acks have not all come by then has lost some: the stream answers in milliseconds. */
const windowTimeoutMs = 30_000;

/** What the acks of one window said. */
interface WindowAcks {
  accepted: number;
  duplicates: number;
  /** The first refusal or missing ack, if any. */
  failed: string | undefined;
}

/** One connection's publisher: its reply subject, and the acks of the window in flight. */
class WindowPublisher {
  private readonly reply = `${createInbox()}.ack`;
  private pending = 0;
  private acks: WindowAcks = { accepted: 0, duplicates: 0, failed: undefined };
  private wake: (() => void) | undefined;

  constructor(private readonly nc: NatsConnection) {
    nc.subscribe(this.reply, { callback: (err, m) => this.onAck(err, m) });
  }

  /** Waits until the server has the reply subscription, so no ack can come before it. */
  ready(): Promise<void> {
    return this.nc.flush();
  }

  /** Publishes every message of a window and resolves with their acks. */
  async window(send: (publish: (subject: string, payload: Uint8Array, msgId: string) => void) => void): Promise<WindowAcks> {
    this.acks = { accepted: 0, duplicates: 0, failed: undefined };
    const done = new Promise<void>((resolve) => (this.wake = resolve));
    send((subject, payload, msgId) => {
      const h = headers();
      h.set("Nats-Msg-Id", msgId);
      this.pending++;
      this.nc.publish(subject, payload, { reply: this.reply, headers: h });
    });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => (timer = setTimeout(resolve, windowTimeoutMs)));
    await Promise.race([done, timedOut]);
    clearTimeout(timer);
    if (this.pending > 0) {
      this.acks.failed ??= `${this.pending} acks missing after ${windowTimeoutMs / 1000} s`;
      // Acks still on their way would count into the next window.
      throw new Error(this.acks.failed);
    }
    return this.acks;
  }

  private onAck(err: Error | null, m: Msg): void {
    if (err !== null) this.acks.failed ??= err.message;
    else if (m.data.length === 0) this.acks.failed ??= `no ack: status ${m.headers?.code ?? "?"} ${m.headers?.description ?? ""}`.trim();
    else {
      const ack = m.json<{ seq?: number; duplicate?: boolean; error?: { description?: string } }>();
      if (ack.error !== undefined) this.acks.failed ??= ack.error.description ?? "refused";
      else if (ack.duplicate === true) this.acks.duplicates++;
      else this.acks.accepted++;
    }
    if (--this.pending === 0) this.wake?.();
  }
}

/** Prepares everything per event (subject, message id) up front, so the timed part only publishes. */
export function prepareJetStream(job: JetStreamJob, workload: Workload, cache: EventCache): (record: RunRecord) => Promise<LoadResult> {
  const topics = topicNames(job.topics);
  const subjects = topics.map((t) => `${job.subjectPrefix}.${t}`);
  const base = job.workload.indexBase;
  const ids = Array.from({ length: workload.unique }, (_, k) => {
    const f = eventFields(job.workload.seed, base + k, topics);
    return `${f.topic}/${f.eventId}`;
  });
  // Encode now, not while the clock runs.
  for (let k = 0; k < workload.unique; k++) cache.proto(base + k);
  const order = workload.order;
  const batches = Math.ceil(order.length / job.batch);

  return async (record) => {
    const connections: NatsConnection[] = await Promise.all(Array.from({ length: job.concurrency }, () => connect({ servers: job.url, name: "tally-bench-publisher" })));
    try {
      const publishers = connections.map((nc) => new WindowPublisher(nc));
      await Promise.all(publishers.map((p) => p.ready()));
      let next = 0;
      const startedAt = performance.now();
      await Promise.all(
        publishers.map(async (publisher) => {
          while (next < batches) {
            const i = next++;
            const from = i * job.batch;
            const to = Math.min(from + job.batch, order.length);
            record.written += to - from;
            const windowStarted = performance.now();
            let acks: WindowAcks;
            try {
              acks = await publisher.window((publish) => {
                for (let s = from; s < to; s++) {
                  const e = order[s]!;
                  publish(subjects[e % topics.length]!, cache.proto(e), ids[e - base]!);
                }
              });
            } catch (err) {
              record.call("Unavailable", 0, err instanceof Error ? err.message : String(err));
              record.failedBatches += batches - i;
              next = batches;
              return;
            }
            const latencyUs = (performance.now() - windowStarted) * 1000;
            if (acks.failed !== undefined) {
              record.call("Unavailable", latencyUs, acks.failed);
              record.failedBatches++;
              continue;
            }
            record.call("OK", latencyUs);
            record.ack(from, to);
            record.count({ accepted: acks.accepted, duplicates: acks.duplicates, conflicts: 0 });
          }
        }),
      );
      return record.result((performance.now() - startedAt) / 1000);
    } finally {
      await Promise.all(connections.map((nc) => nc.close()));
    }
  };
}
