import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  AggregatorService,
  EventsResponseSchema,
  PublishResponseSchema,
  PublishResultSchema,
  PublishStreamResponseSchema,
  StatsResponseSchema,
  StoredEventSchema,
  type Event,
  type EventsRequest,
} from "../gen/aggregator/v1/aggregator_pb.js";
import type { Violation } from "./errors.js";
import { textToTimestamp, timestampToText } from "./event-text.js";
import type { BatchOutcome, Publisher } from "./ingest/publisher.js";
import type { IngestQueue } from "./ingest/queue.js";
import type { IncomingEvent } from "./validate.js";
import type { EventQuery, EventStore, StoredEventRow } from "./store/types.js";

/** Page size of Events when the caller names none. */
export const defaultPageSize = 100;
/** Largest page: keeps one query's memory and latency small; larger requests are capped. */
export const maxPageSize = 1000;

/** What the handlers need; built once by the server. */
export interface ServiceDeps {
  publisher: Publisher;
  queue: IngestQueue;
  store: EventStore;
  startedAt: Date;
}

/** Page size asked for, defaulted and capped. */
export function pageSize(asked: number): number {
  return asked <= 0 ? defaultPageSize : Math.min(asked, maxPageSize);
}

/** Live statistics: committed counters plus this process's queue and refusals. */
export async function collectStats(deps: ServiceDeps) {
  const stored = await deps.store.stats();
  return {
    ...stored,
    uptimeSeconds: (Date.now() - deps.startedAt.getTime()) / 1000,
    startedAt: deps.startedAt,
    queue: deps.queue.depth,
    rejectedInvalid: deps.publisher.rejectedInvalid,
    rejectedOverload: deps.queue.rejectedEvents,
  };
}

function publishResponse(outcome: BatchOutcome) {
  const results = new Array(outcome.statuses.length);
  for (let i = 0; i < results.length; i++) {
    results[i] = create(PublishResultSchema, { status: outcome.statuses[i]!, seq: BigInt(outcome.seqs[i]!) });
  }
  return create(PublishResponseSchema, {
    accepted: outcome.accepted,
    duplicates: outcome.duplicates,
    conflicts: outcome.conflicts,
    results,
  });
}

function storedEvent(row: StoredEventRow) {
  return create(StoredEventSchema, {
    seq: BigInt(row.seq),
    topic: row.topic,
    eventId: row.eventId,
    timestamp: textToTimestamp(row.ts),
    source: row.source,
    payload: JSON.parse(row.payload) as JsonObject,
    receivedAt: timestampFromMs(Date.parse(row.receivedAt)),
  });
}

/**
 * Reads a stream's messages until it ends or the handler is aborted (client
 * gone, or the server draining for shutdown), so a stream whose client went
 * quiet cannot hold a shutdown open.
 */
async function* untilAborted<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await nextOrAbort(iterator, signal);
      if (next.done) return;
      yield next.value;
    }
  } finally {
    // Not awaited: an async generator's return() queues behind a pending next(),
    // which may never settle when the client went quiet.
    void iterator.return?.()?.catch(() => undefined);
  }
}

/**
 * The iterator's next result, or a rejection when the signal aborts first.
 * Each call adds and removes its own abort listener: racing every next()
 * against one long-lived promise instead kept a reaction, and with it every
 * message of the stream, alive until the stream ended (memory grew with
 * stream length).
 */
function nextOrAbort<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  const reason = () => (signal.reason instanceof Error ? signal.reason : new Error("aborted"));
  if (signal.aborted) return Promise.reject(reason());
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(reason());
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(err);
      },
    );
  });
}

/** Turns the events field of a publish message into events, with any violations found while decoding. */
export type EventDecoder<T> = (events: T) => { events: (IncomingEvent | undefined)[]; violations: Violation[] };

/** Events that protobuf-es already decoded. */
const alreadyDecoded: EventDecoder<Event[]> = (events) => ({ events, violations: [] });

/**
 * Publish and PublishStream over any decoding of their events: the standard
 * one (every protocol and codec), or raw bytes decoded by wire-event.ts on
 * the binary hot path (see binary-publish.ts).
 */
export function publishHandlers<T>(deps: ServiceDeps, decode: EventDecoder<T>) {
  return {
    async publish(req: { events: T }) {
      const { events, violations } = decode(req.events);
      return publishResponse(await deps.publisher.publish(events, violations));
    },

    async publishStream(messages: AsyncIterable<{ events: T }>, ctx: HandlerContext) {
      const totals = { received: 0n, accepted: 0n, duplicates: 0n, conflicts: 0n, batches: 0n };
      const pending = new Set<Promise<unknown>>();
      let failure: unknown;
      try {
        for await (const message of untilAborted(messages, ctx.signal)) {
          totals.batches++;
          const { events, violations } = decode(message.events);
          // Waiting here for room is the backpressure: while we wait we do not
          // read, so HTTP/2 flow control holds the client back.
          const { committed } = await deps.publisher.publishWhenRoom(events, violations, ctx.signal);
          const tracked = committed.then(
            (outcome) => {
              totals.received += BigInt(outcome.statuses.length);
              totals.accepted += BigInt(outcome.accepted);
              totals.duplicates += BigInt(outcome.duplicates);
              totals.conflicts += BigInt(outcome.conflicts);
            },
            (err: unknown) => {
              failure ??= err;
            },
          );
          pending.add(tracked);
          void tracked.then(() => pending.delete(tracked));
          if (failure !== undefined) break;
        }
      } finally {
        // Batches already queued commit whatever happens to the stream; answer only after them.
        await Promise.all(pending);
      }
      if (failure !== undefined) throw failure;
      return create(PublishStreamResponseSchema, totals);
    },
  };
}

/** The AggregatorService handlers: thin, they decode, hand to the publish path or the store, and map the result. */
export function aggregatorRoutes(deps: ServiceDeps) {
  return (router: ConnectRouter) =>
    router.service(AggregatorService, {
      ...publishHandlers(deps, alreadyDecoded),

      async events(req: EventsRequest) {
        const query: EventQuery = {
          afterSeq: Number(req.afterSeq),
          limit: pageSize(req.limit),
          ...(req.topic !== "" && { topic: req.topic }),
          ...(req.source !== "" && { source: req.source }),
          ...(req.since !== undefined && { since: timestampToText(req.since) }),
          ...(req.until !== undefined && { until: timestampToText(req.until) }),
        };
        const page = await deps.store.page(query);
        const last = page.events.at(-1);
        return create(EventsResponseSchema, {
          events: page.events.map(storedEvent),
          nextCursor: last === undefined ? req.afterSeq : BigInt(last.seq),
          hasMore: page.hasMore,
        });
      },

      async stats() {
        const stats = await collectStats(deps);
        return create(StatsResponseSchema, {
          received: BigInt(stats.received),
          uniqueProcessed: BigInt(stats.uniqueProcessed),
          duplicateDropped: BigInt(stats.duplicateDropped),
          conflicts: BigInt(stats.conflicts),
          topics: stats.topics.map((t) => ({ name: t.name, count: BigInt(t.count) })),
          uptimeSeconds: stats.uptimeSeconds,
          startedAt: timestampFromDate(stats.startedAt),
          queueEvents: stats.queue.events,
          queueBytes: BigInt(stats.queue.bytes),
          rejectedInvalid: BigInt(stats.rejectedInvalid),
          rejectedOverload: BigInt(stats.rejectedOverload),
        });
      },
    });
}
