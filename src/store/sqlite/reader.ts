import type Database from "better-sqlite3";
import {
  eventBytes,
  maxRowsExamined,
  type ConsumerPage,
  type ConsumerRecord,
  type EventFilter,
  type EventPage,
  type EventQuery,
  type StoreStats,
  type StoredEventRow,
  type TopicPage,
} from "../types.js";
import { consumerColumns, consumerRecord, type ConsumerRowSql } from "./consumer-rows.js";

/** Queries on a read-only connection: pages of events, topics and consumers, and the committed counters. */
export interface StoreReader {
  page(query: EventQuery): EventPage;
  stats(topTopics: number): StoreStats;
  topics(after: string, limit: number): TopicPage;
  head(): number;
  countAfter(filter: EventFilter, afterSeq: number, cap: number): { count: number; capped: boolean };
  consumer(name: string): ConsumerRecord | undefined;
  consumers(after: string, limit: number): ConsumerPage;
}

interface EventRowSql {
  seq: number;
  topic: string;
  event_id: string;
  ts: string;
  source: string;
  payload: string;
  received_at: string;
}

const columns = "seq, topic, event_id, ts, source, payload, received_at";

/**
 * The unindexed filters, each switched off by a NULL parameter, so no SQL
 * text is ever built from input. A topic prefix compares the topic's first
 * characters, as String.startsWith does (subscribe/filter.ts matches live
 * events by the same rule).
 */
const unindexedFilters =
  "(@topicPrefix IS NULL OR substr(topic, 1, length(@topicPrefix)) = @topicPrefix) AND (@source IS NULL OR source = @source) AND (@since IS NULL OR ts >= @since) AND (@until IS NULL OR ts < @until)";

/** Whether a filter needs the bounded seq window (anything but a topic). */
function windowed(filter: EventFilter): boolean {
  return filter.topicPrefix !== undefined || filter.source !== undefined || filter.since !== undefined || filter.until !== undefined;
}

/** The named parameters of the filters, NULL for those unset. */
function filterParams(filter: EventFilter) {
  return {
    topic: filter.topic ?? null,
    topicPrefix: filter.topicPrefix ?? null,
    source: filter.source ?? null,
    since: filter.since ?? null,
    until: filter.until ?? null,
  };
}

/**
 * Builds the prepared statements once. Every page query walks an index in
 * seq order and is read row by row, so it stops at the page's row or byte
 * limit without materializing more. Filters no index serves (source, time
 * range) are bounded by a seq window instead: seq is the rowid, assigned
 * max + 1 by the one writer and never deleted, so `seq <= after + N`
 * examines at most N rows, through the topic index or the table itself.
 */
export function createStoreReader(db: Database.Database): StoreReader {
  const byTopic = db.prepare(`SELECT ${columns} FROM events WHERE topic = @topic AND seq > @afterSeq ORDER BY seq`);
  const all = db.prepare(`SELECT ${columns} FROM events WHERE seq > @afterSeq ORDER BY seq`);
  const byTopicInWindow = db.prepare(
    `SELECT ${columns} FROM events WHERE topic = @topic AND seq > @afterSeq AND seq <= @windowEnd AND ${unindexedFilters} ORDER BY seq`,
  );
  const allInWindow = db.prepare(`SELECT ${columns} FROM events WHERE seq > @afterSeq AND seq <= @windowEnd AND ${unindexedFilters} ORDER BY seq`);
  const lastSeq = db.prepare("SELECT coalesce(max(seq), 0) AS seq FROM events");
  const counters = db.prepare("SELECT received, unique_processed, duplicate_dropped, conflicts, topics FROM counters WHERE id = 1");
  const largestTopics = db.prepare("SELECT topic AS name, count FROM topic_counts ORDER BY count DESC, topic LIMIT ?");
  const topicsAfter = db.prepare("SELECT topic AS name, count FROM topic_counts WHERE topic > ? ORDER BY topic LIMIT ?");
  const countByTopic = db.prepare("SELECT count(*) AS n FROM (SELECT 1 FROM events WHERE topic = @topic AND seq > @afterSeq LIMIT @cap)");
  const countInWindow = db.prepare(
    `SELECT count(*) AS n FROM events WHERE seq > @afterSeq AND seq <= @afterSeq + @cap AND (@topic IS NULL OR topic = @topic) AND ${unindexedFilters}`,
  );
  const consumerByName = db.prepare(`SELECT ${consumerColumns} FROM consumers WHERE name = ?`);
  const consumersAfter = db.prepare(`SELECT ${consumerColumns} FROM consumers WHERE name > ? ORDER BY name LIMIT ?`);

  // One read transaction, so the window's end and the rows come from the same snapshot.
  const readPage = db.transaction((query: EventQuery): EventPage => {
    if (!windowed(query)) {
      const statement = query.topic === undefined ? all : byTopic;
      return collect(statement.iterate({ topic: query.topic ?? null, afterSeq: query.afterSeq }) as IterableIterator<EventRowSql>, query, undefined);
    }
    const head = (lastSeq.get() as { seq: number }).seq;
    const windowEnd = Math.min(query.afterSeq + maxRowsExamined, head);
    const statement = query.topic === undefined ? allInWindow : byTopicInWindow;
    const rows = statement.iterate({ ...filterParams(query), afterSeq: query.afterSeq, windowEnd }) as IterableIterator<EventRowSql>;
    return collect(rows, query, { end: windowEnd, head });
  });

  // One read transaction so counters and topic counts come from the same snapshot.
  const readStats = db.transaction((topTopics: number): StoreStats => {
    const c = counters.get() as { received: number; unique_processed: number; duplicate_dropped: number; conflicts: number; topics: number };
    return {
      received: c.received,
      uniqueProcessed: c.unique_processed,
      duplicateDropped: c.duplicate_dropped,
      conflicts: c.conflicts,
      topicCount: c.topics,
      topTopics: largestTopics.all(topTopics) as { name: string; count: number }[],
    };
  });

  return {
    page: (query) => readPage(query),
    stats: (topTopics) => readStats(topTopics),
    topics(after, limit) {
      // One extra row tells whether another page follows.
      const topics = topicsAfter.all(after, limit + 1) as { name: string; count: number }[];
      return { topics: topics.slice(0, limit), hasMore: topics.length > limit };
    },
    head: () => (lastSeq.get() as { seq: number }).seq,
    countAfter(filter, afterSeq, cap) {
      // A topic alone is counted through its index, stopping at cap; anything else examines at most cap rows by seq.
      if (filter.topic !== undefined && !windowed(filter)) {
        const n = (countByTopic.get({ topic: filter.topic, afterSeq, cap: cap + 1 }) as { n: number }).n;
        return { count: Math.min(n, cap), capped: n > cap };
      }
      const n = (countInWindow.get({ ...filterParams(filter), afterSeq, cap }) as { n: number }).n;
      return { count: n, capped: (lastSeq.get() as { seq: number }).seq > afterSeq + cap };
    },
    consumer(name) {
      const row = consumerByName.get(name) as ConsumerRowSql | undefined;
      return row && consumerRecord(row);
    },
    consumers(after, limit) {
      const rows = consumersAfter.all(after, limit + 1) as ConsumerRowSql[];
      return { consumers: rows.slice(0, limit).map(consumerRecord), hasMore: rows.length > limit };
    },
  };
}

/**
 * Takes rows until the page is full in rows or bytes. The first row is
 * always taken, so a page moves on even past an event larger than the byte
 * limit. With a window, running out of rows means the window is done: the
 * cursor moves to its end, and more may follow if the window ended before
 * the newest event.
 */
function collect(rows: IterableIterator<EventRowSql>, query: EventQuery, window: { end: number; head: number } | undefined): EventPage {
  const events: StoredEventRow[] = [];
  let bytes = 0;
  for (const r of rows) {
    const row: StoredEventRow = { seq: r.seq, topic: r.topic, eventId: r.event_id, ts: r.ts, source: r.source, payload: r.payload, receivedAt: r.received_at };
    const size = eventBytes(row);
    if (events.length === query.limit || (events.length > 0 && bytes + size > query.maxBytes)) {
      // Leaving the loop ends the statement's iteration: nothing more is read.
      return { events, nextCursor: events.at(-1)!.seq, hasMore: true };
    }
    events.push(row);
    bytes += size;
  }
  if (window === undefined) return { events, nextCursor: events.at(-1)?.seq ?? query.afterSeq, hasMore: false };
  const nextCursor = Math.max(window.end, query.afterSeq);
  return { events, nextCursor, hasMore: nextCursor < window.head };
}
