import type { PublishPipeline } from "../ingest/pipeline.js";
import type { IngestQueue } from "../ingest/queue.js";
import type { EventPage, EventQuery, EventStore, StoreStats } from "../store/types.js";

/** Page size of Events when the caller names none. */
const defaultPageSize = 100;
/** Largest page: keeps one query's memory and latency small; larger requests are capped. */
const maxPageSize = 1000;

/** Live statistics: committed counters plus this process's queue and refusals. */
export interface LiveStats extends StoreStats {
  uptimeSeconds: number;
  startedAt: Date;
  queue: { events: number; bytes: number };
  rejectedInvalid: number;
  rejectedOverload: number;
}

/**
 * The read side every front door translates to: pages of stored events and
 * live statistics, the same for the RPCs and the REST routes.
 */
export class Reads {
  constructor(
    private readonly store: EventStore,
    private readonly queue: IngestQueue,
    private readonly pipeline: PublishPipeline,
    readonly startedAt: Date,
  ) {}

  /** A page of stored events; `limit` as asked (0 for the default), capped at maxPageSize. */
  page(query: EventQuery): Promise<EventPage> {
    return this.store.page({ ...query, limit: query.limit <= 0 ? defaultPageSize : Math.min(query.limit, maxPageSize) });
  }

  async stats(): Promise<LiveStats> {
    const stored = await this.store.stats();
    return {
      ...stored,
      uptimeSeconds: this.uptimeSeconds(),
      startedAt: this.startedAt,
      queue: this.queue.depth,
      rejectedInvalid: this.pipeline.rejectedInvalid,
      rejectedOverload: this.queue.rejectedEvents,
    };
  }

  /** Events accepted and not yet committed, for health answers. */
  get queuedEvents(): number {
    return this.queue.depth.events;
  }

  uptimeSeconds(): number {
    return (Date.now() - this.startedAt.getTime()) / 1000;
  }
}
