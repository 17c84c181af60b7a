import type { PublishPipeline } from "../ingest/pipeline.js";
import type { IngestQueue } from "../ingest/queue.js";
import type { MemoryBudget } from "../limits/memory-budget.js";
import type { RequestLease } from "../limits/request-lease.js";
import { eventBytes, type EventPage, type EventQuery, type StoreStats, type EventStore, type TopicPage } from "../store/types.js";

/** Page size of Events when the caller names none. */
const defaultPageSize = 100;
/** Largest page in rows: keeps one query's latency small; larger requests are capped. */
const maxPageSize = 1000;
/** Topics Stats lists when the caller names no number: every topic of a small deployment. */
const defaultTopTopics = 100;
/** Most topics Stats lists: the answer stays well under a default gRPC client's 4 MiB. */
const maxTopTopics = 1000;
/** Page size of Topics when the caller names none. */
const defaultTopicPage = 1000;
/** Largest Topics page: 2,000 topics of the longest names allowed (255 characters) stay well under 4 MiB. */
const maxTopicPage = 2_000;
/**
 * Heap an answer holds per stored byte while it is written: the encoded
 * answer, JSON or protobuf, is at most about twice the stored text.
 */
const answerBytesPerStoredByte = 2;

/** Live statistics: committed counters plus this process's queue and refusals. */
export interface LiveStats extends StoreStats {
  uptimeSeconds: number;
  startedAt: Date;
  queue: { events: number; bytes: number };
  rejectedInvalid: number;
  rejectedOverload: number;
  memoryHeldBytes: number;
}

/** A page query as front doors ask it: the byte limit is the server's. */
export type PageQuery = Omit<EventQuery, "maxBytes">;

/**
 * The read side every front door translates to: pages of stored events and
 * topics, and live statistics, the same for the RPCs and the REST routes.
 * Each answer is bounded in rows and bytes, and holds its size of the memory
 * budget (the request's lease) until it has been written, so clients that
 * never read their answers cannot make the server hold more than the budget.
 */
export class Reads {
  constructor(
    private readonly store: EventStore,
    private readonly queue: IngestQueue,
    private readonly pipeline: PublishPipeline,
    private readonly budget: MemoryBudget,
    private readonly limits: { maxPageBytes: number },
    readonly startedAt: Date,
  ) {}

  /** A page of stored events; `limit` as asked (0 for the default), capped at maxPageSize rows and the server's page bytes. */
  async page(query: PageQuery, lease: RequestLease): Promise<EventPage> {
    const limit = query.limit <= 0 ? defaultPageSize : Math.min(query.limit, maxPageSize);
    // The largest page's share is taken before the read, so a refused request costs no read at all;
    // once the page is in, the request keeps only its real size.
    const upfront = lease.hold(this.limits.maxPageBytes * answerBytesPerStoredByte);
    let page: EventPage;
    try {
      page = await this.store.page({ ...query, limit, maxBytes: this.limits.maxPageBytes });
    } finally {
      upfront.release();
    }
    let bytes = 0;
    for (const row of page.events) bytes += eventBytes(row);
    lease.hold(bytes * answerBytesPerStoredByte);
    return page;
  }

  /** Counters with the `topTopics` largest topics (0 for the default, capped). */
  async stats(topTopics: number, lease: RequestLease): Promise<LiveStats> {
    const stored = await this.store.stats(topTopics <= 0 ? defaultTopTopics : Math.min(topTopics, maxTopTopics));
    lease.hold(namesBytes(stored.topTopics) * answerBytesPerStoredByte);
    return {
      ...stored,
      uptimeSeconds: this.uptimeSeconds(),
      startedAt: this.startedAt,
      queue: this.queue.depth,
      rejectedInvalid: this.pipeline.rejectedInvalid,
      rejectedOverload: this.queue.rejectedEvents,
      memoryHeldBytes: this.budget.usedBytes,
    };
  }

  /** Topics after `after` by name; `limit` as asked (0 for the default), capped. */
  async topics(after: string, limit: number, lease: RequestLease): Promise<TopicPage> {
    const page = await this.store.topics(after, limit <= 0 ? defaultTopicPage : Math.min(limit, maxTopicPage));
    lease.hold(namesBytes(page.topics) * answerBytesPerStoredByte);
    return page;
  }

  /** Events accepted and not yet committed, for health answers. */
  get queuedEvents(): number {
    return this.queue.depth.events;
  }

  uptimeSeconds(): number {
    return (Date.now() - this.startedAt.getTime()) / 1000;
  }
}

function namesBytes(topics: { name: string }[]): number {
  let bytes = 0;
  // A name, its count and the framing around them.
  for (const t of topics) bytes += t.name.length + 32;
  return bytes;
}
