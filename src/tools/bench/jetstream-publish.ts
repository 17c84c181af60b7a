import { jetstream, type JetStreamClient, type PubAck } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
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
      const clients = connections.map((nc) => jetstream(nc));
      let next = 0;
      const startedAt = performance.now();
      await Promise.all(
        clients.map(async (js: JetStreamClient) => {
          while (next < batches) {
            const i = next++;
            const from = i * job.batch;
            const to = Math.min(from + job.batch, order.length);
            record.written += to - from;
            const windowStarted = performance.now();
            const acks: Promise<PubAck>[] = [];
            for (let s = from; s < to; s++) {
              const e = order[s]!;
              acks.push(js.publish(subjects[e % topics.length]!, cache.proto(e), { msgID: ids[e - base]! }));
            }
            const settled = await Promise.allSettled(acks);
            const latencyUs = (performance.now() - windowStarted) * 1000;
            let accepted = 0;
            let duplicates = 0;
            const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
            if (failed !== undefined) {
              record.call("Unavailable", latencyUs, failed.reason instanceof Error ? failed.reason.message : String(failed.reason));
              record.failedBatches++;
              continue;
            }
            for (const r of settled as PromiseFulfilledResult<PubAck>[]) {
              if (r.value.duplicate) duplicates++;
              else accepted++;
            }
            record.call("OK", latencyUs);
            record.ack(from, to);
            record.count({ accepted, duplicates, conflicts: 0 });
          }
        }),
      );
      return record.result((performance.now() - startedAt) / 1000);
    } finally {
      await Promise.all(connections.map((nc) => nc.close()));
    }
  };
}
