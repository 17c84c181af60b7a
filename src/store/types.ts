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

/** Filters of an events page; all optional but the cursor and the page size. */
export interface EventQuery {
  topic?: string;
  source?: string;
  afterSeq: number;
  limit: number;
  /** Store-form timestamps: events at or after `since`, before `until`. */
  since?: string;
  until?: string;
}

export interface EventPage {
  events: StoredEventRow[];
  hasMore: boolean;
}

/** Counters committed together with the rows they count. */
export interface StoreStats {
  received: number;
  uniqueProcessed: number;
  duplicateDropped: number;
  conflicts: number;
  topics: { name: string; count: number }[];
}

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
  stats(): Promise<StoreStats>;
  /** Commits everything already handed to append(), then closes. */
  close(): Promise<void>;
}
