import type Database from "better-sqlite3";
import type { EventPage, EventQuery, StoreStats, StoredEventRow } from "../types.js";

/** Queries on a read-only connection: pages of events and the committed counters. */
export interface StoreReader {
  page(query: EventQuery): EventPage;
  stats(): StoreStats;
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

/** Builds the prepared statements once; each filter combination is one statement with optional parameters. */
export function createStoreReader(db: Database.Database): StoreReader {
  // NULL parameters switch a filter off, so one prepared statement serves every combination
  // and no SQL text is ever built from input.
  const pageByTopic = db.prepare(
    `SELECT ${columns} FROM events
     WHERE topic = @topic AND seq > @afterSeq
       AND (@source IS NULL OR source = @source)
       AND (@since IS NULL OR ts >= @since) AND (@until IS NULL OR ts < @until)
     ORDER BY seq LIMIT @limit`,
  );
  const pageAll = db.prepare(
    `SELECT ${columns} FROM events
     WHERE seq > @afterSeq
       AND (@source IS NULL OR source = @source)
       AND (@since IS NULL OR ts >= @since) AND (@until IS NULL OR ts < @until)
     ORDER BY seq LIMIT @limit`,
  );
  const counters = db.prepare("SELECT received, unique_processed, duplicate_dropped, conflicts FROM counters WHERE id = 1");
  const topics = db.prepare("SELECT topic AS name, count FROM topic_counts ORDER BY topic");

  // One read transaction so counters and topic counts come from the same snapshot.
  const readStats = db.transaction((): StoreStats => {
    const c = counters.get() as { received: number; unique_processed: number; duplicate_dropped: number; conflicts: number };
    return {
      received: c.received,
      uniqueProcessed: c.unique_processed,
      duplicateDropped: c.duplicate_dropped,
      conflicts: c.conflicts,
      topics: topics.all() as { name: string; count: number }[],
    };
  });

  return {
    page(query) {
      const params = {
        topic: query.topic ?? null,
        source: query.source ?? null,
        afterSeq: query.afterSeq,
        since: query.since ?? null,
        until: query.until ?? null,
        // One extra row tells whether another page follows.
        limit: query.limit + 1,
      };
      const rows = (query.topic === undefined ? pageAll : pageByTopic).all(params) as EventRowSql[];
      const hasMore = rows.length > query.limit;
      const events: StoredEventRow[] = rows.slice(0, query.limit).map((r) => ({
        seq: r.seq,
        topic: r.topic,
        eventId: r.event_id,
        ts: r.ts,
        source: r.source,
        payload: r.payload,
        receivedAt: r.received_at,
      }));
      return { events, hasMore };
    },
    stats: () => readStats(),
  };
}
