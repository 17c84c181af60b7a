import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  AggregatorService,
  EventsResponseSchema,
  PublishResponseSchema,
  PublishResultSchema,
  PublishStreamResponseSchema,
  StatsResponseSchema,
  TopicsResponseSchema,
  type Event,
  type EventsRequest,
  type StatsRequest,
  type TopicsRequest,
} from "../../gen/aggregator/v1/aggregator_pb.js";
import type { DecodedBatch } from "../codec/decoded-batch.js";
import { decodeMessageEvents } from "../codec/message-events.js";
import { timestampToText } from "../codec/timestamps.js";
import { callerOf } from "../auth/interceptor.js";
import type { BatchOutcome } from "../ingest/outcome.js";
import type { PublishPipeline } from "../ingest/pipeline.js";
import type { Reads } from "../read/reads.js";
import type { Subscriptions } from "../subscribe/subscriptions.js";
import { storedEvent } from "./stored-event.js";
import { subscribeHandlers } from "./subscribe-service.js";
import { leaseIn } from "../limits/request-lease.js";
import { untilAborted } from "./stream-messages.js";

/** What the RPC handlers translate to; built once by the server. */
export interface RpcCore {
  pipeline: PublishPipeline;
  reads: Reads;
  subscriptions: Subscriptions;
}

/** Turns the events field of a publish message, as this route's codec left it, into a decoded batch. */
export type EventsDecoder<T> = (events: T) => DecodedBatch;

/** The PublishResponse of a committed batch. */
export function publishResponse(outcome: BatchOutcome) {
  const results = new Array(outcome.statuses.length);
  for (let i = 0; i < results.length; i++) {
    results[i] = create(PublishResultSchema, { status: outcome.statuses[i]!, seq: BigInt(outcome.seqs[i]!) });
  }
  return create(PublishResponseSchema, { accepted: outcome.accepted, duplicates: outcome.duplicates, conflicts: outcome.conflicts, results });
}

/**
 * Publish and PublishStream over one decoding of their events: protobuf-es's
 * (every protocol and codec), or each event's raw bytes decoded by
 * codec/wire-events.ts on the binary fast path (raw-events-service.ts). They
 * only translate: decode, hand to the pipeline with the admitted caller, and
 * map the outcome.
 */
export function publishHandlers<T>(pipeline: PublishPipeline, decode: EventsDecoder<T>) {
  return {
    async publish(req: { events: T }, ctx: HandlerContext) {
      return publishResponse(await pipeline.publish(decode(req.events), callerOf(ctx.values)));
    },

    async publishStream(messages: AsyncIterable<{ events: T }>, ctx: HandlerContext) {
      const stream = pipeline.openStream(callerOf(ctx.values), ctx.signal);
      // Each message's share of the memory budget (rpc/budgeted-body.ts) is given back once it has committed.
      const lease = leaseIn(ctx.values);
      try {
        for await (const message of untilAborted(messages, ctx.signal)) await stream.feed(decode(message.events), () => lease.releaseMessage());
      } finally {
        // Messages already queued commit whatever happens to the stream; answer only after them.
        await stream.settle();
      }
      return create(PublishStreamResponseSchema, stream.result());
    },
  };
}

/** The AggregatorService handlers of the standard routes (every codec; binary publish takes the fast path). */
export function aggregatorRoutes({ pipeline, reads, subscriptions }: RpcCore) {
  return (router: ConnectRouter) =>
    router.service(AggregatorService, {
      ...publishHandlers<Event[]>(pipeline, decodeMessageEvents),
      ...subscribeHandlers(subscriptions),

      async events(req: EventsRequest, ctx: HandlerContext) {
        const page = await reads.page(
          {
          afterSeq: Number(req.afterSeq),
          limit: req.limit,
          ...(req.topic !== "" && { topic: req.topic }),
          ...(req.source !== "" && { source: req.source }),
          ...(req.since !== undefined && { since: timestampToText(req.since) }),
          ...(req.until !== undefined && { until: timestampToText(req.until) }),
          },
          leaseIn(ctx.values),
        );
        return create(EventsResponseSchema, { events: page.events.map(storedEvent), nextCursor: BigInt(page.nextCursor), hasMore: page.hasMore });
      },

      async stats(req: StatsRequest, ctx: HandlerContext) {
        const stats = await reads.stats(req.topTopics, leaseIn(ctx.values));
        return create(StatsResponseSchema, {
          received: BigInt(stats.received),
          uniqueProcessed: BigInt(stats.uniqueProcessed),
          duplicateDropped: BigInt(stats.duplicateDropped),
          conflicts: BigInt(stats.conflicts),
          topics: stats.topTopics.map((t) => ({ name: t.name, count: BigInt(t.count) })),
          topicCount: BigInt(stats.topicCount),
          memoryHeldBytes: BigInt(stats.memoryHeldBytes),
          uptimeSeconds: stats.uptimeSeconds,
          startedAt: timestampFromDate(stats.startedAt),
          queueEvents: stats.queue.events,
          queueBytes: BigInt(stats.queue.bytes),
          rejectedInvalid: BigInt(stats.rejectedInvalid),
          rejectedOverload: BigInt(stats.rejectedOverload),
        });
      },

      async topics(req: TopicsRequest, ctx: HandlerContext) {
        const page = await reads.topics(req.after, req.limit, leaseIn(ctx.values));
        return create(TopicsResponseSchema, {
          topics: page.topics.map((t) => ({ name: t.name, count: BigInt(t.count) })),
          nextAfter: page.topics.at(-1)?.name ?? req.after,
          hasMore: page.hasMore,
        });
      },
    });
}
