/**
 * How hard a commit is pushed to disk before the ack: `full` survives power
 * loss, `normal` a crash of tally (README "What an ack guarantees").
 */
export type Durability = "full" | "normal";

/** An event validated and in store form (codec/timestamps.ts, codec/canonical-json.ts): what the writer inserts. */
export interface EventRecord {
  topic: string;
  eventId: string;
  /** Fixed-width RFC 3339 with nanoseconds. */
  ts: string;
  source: string;
  /** Canonical JSON text of the payload object. */
  payload: string;
}

/** Outcome of one appended event; the numbers match PublishResult.Status in the proto. */
export const AppendStatus = { accepted: 1, duplicate: 2, conflict: 3 } as const;
export type AppendStatus = (typeof AppendStatus)[keyof typeof AppendStatus];

/** Per-event outcomes of one appended batch, in batch order. Typed arrays so they cross threads without cloning objects. */
export interface AppendResult {
  statuses: Uint8Array;
  /** seq of the stored event: the new row for accepted, the earlier one otherwise. */
  seqs: Float64Array;
}

/** A stored event as read back. */
export interface StoredEventRow {
  seq: number;
  topic: string;
  eventId: string;
  ts: string;
  source: string;
  payload: string;
  receivedAt: string;
}

/**
 * Which events a read or a subscription covers; every filter is optional and
 * an event must match all that are set. Store-form timestamps: at or after
 * `since`, before `until`.
 */
export interface EventFilter {
  topic?: string;
  /** Topics that start with this. */
  topicPrefix?: string;
  source?: string;
  since?: string;
  until?: string;
}

/** Filters of an events page; all optional but the cursor and the page bounds. */
export interface EventQuery extends EventFilter {
  afterSeq: number;
  limit: number;
  /** Stored bytes the page may hold (eventBytes of its rows); the first row is returned whatever its size, so a page always moves on. */
  maxBytes: number;
}

export interface EventPage {
  events: StoredEventRow[];
  /** The after_seq that reads on: the last event's seq, or further when a bounded scan found nothing more. */
  nextCursor: number;
  /** More events may match after nextCursor. */
  hasMore: boolean;
}

/**
 * Stored rows a page with a filter no index serves (source, time range)
 * examines at most, so that no query's work grows with the table: a few
 * milliseconds on the main thread. Such a page may come back short, even
 * empty, with hasMore: the client reads on from nextCursor.
 */
export const maxRowsExamined = 10_000;

/** Bytes a stored row counts for in a page's byte limit: its text fields plus room for the numbers and timestamps. */
export function eventBytes(row: StoredEventRow): number {
  return row.topic.length + row.eventId.length + row.source.length + row.payload.length + 96;
}

/** The number of events stored under one topic. */
export interface TopicCount {
  name: string;
  count: number;
}

/** Counters committed together with the rows they count. */
export interface StoreStats {
  received: number;
  uniqueProcessed: number;
  duplicateDropped: number;
  conflicts: number;
  /** Distinct topics stored. */
  topicCount: number;
  /** The topics with the most events, most first (as many as asked). */
  topTopics: TopicCount[];
}

/** A page of topics by name. */
export interface TopicPage {
  topics: TopicCount[];
  hasMore: boolean;
}

/** A durable consumer: its filter, fixed when it was created, and its cursor. */
export interface ConsumerRecord {
  name: string;
  filter: Pick<EventFilter, "topic" | "topicPrefix" | "source" | "since">;
  /** Every matching event up to this seq is acknowledged. */
  ackedSeq: number;
  /** ISO 8601. */
  createdAt: string;
  ackedAt?: string;
}

/** A page of consumers by name. */
export interface ConsumerPage {
  consumers: ConsumerRecord[];
  hasMore: boolean;
}

/**
 * Consumers a database may hold: each costs a row and a line in Consumers,
 * and a name is chosen by clients, so an unbounded number would be memory
 * and answer size without end.
 */
export const maxConsumers = 10_000;

/**
 * Called after every commit that stored events, before any of its publishers
 * is answered: `head` is the newest seq now committed, and `rows()` builds the
 * stored rows (seq order), for a listener that wants them.
 */
export type CommitListener = (head: number, rows: () => StoredEventRow[]) => void;

/**
 * What the service needs from storage. Nothing outside src/store/ knows which
 * implementation runs (a PostgreSQL one for several instances is planned);
 * tests/store/contract.ts holds the behaviour every implementation must have.
 * Failures are StoreError (errors.ts).
 */
export interface EventStore {
  /**
   * Stores a batch atomically and resolves after it has committed, with one
   * outcome per event in batch order. Counters move in the same transaction.
   */
  append(records: EventRecord[]): Promise<AppendResult>;
  page(query: EventQuery): Promise<EventPage>;
  /** Counters, and the `topTopics` topics with the most events. */
  stats(topTopics: number): Promise<StoreStats>;
  /** Topics whose name sorts after `after`, by name, at most `limit`. */
  topics(after: string, limit: number): Promise<TopicPage>;
  /** The newest committed seq (0 for an empty store). */
  head(): Promise<number>;
  /** Registers the one listener told of every commit from now on (subscribe/commit-feed.ts). */
  onCommit(listener: CommitListener): void;
  /**
   * Matching events committed after `afterSeq`, at most `cap` rows examined:
   * `capped` when there may be more than `count`.
   */
  countAfter(filter: EventFilter, afterSeq: number, cap: number): Promise<{ count: number; capped: boolean }>;
  consumer(name: string): Promise<ConsumerRecord | undefined>;
  /** Consumers whose name sorts after `after`, by name, at most `limit`. */
  consumers(after: string, limit: number): Promise<ConsumerPage>;
  /**
   * Creates the consumer unless one of that name exists, durably; answers the
   * stored one either way. Refuses (StoreError `full`) past maxConsumers.
   */
  createConsumer(record: ConsumerRecord): Promise<{ record: ConsumerRecord; created: boolean }>;
  /** Moves the consumer's acked seq up to `seq` (never down), durably; undefined if there is no such consumer. */
  ack(name: string, seq: number): Promise<ConsumerRecord | undefined>;
  /** Forgets the consumer, durably; answers what it was, or undefined if there was none. */
  deleteConsumer(name: string): Promise<ConsumerRecord | undefined>;
  /** Commits everything already handed to append(), then closes. */
  close(): Promise<void>;
}
