import Database from "better-sqlite3";
import type { StatsResponse } from "../../gen/aggregator/v1/aggregator_pb.js";

/** One row of the events table. */
export interface FileRow {
  seq: number;
  topic: string;
  event_id: string;
  ts: string;
  source: string;
  payload: string;
}

export interface FileCounters {
  received: number;
  unique_processed: number;
  duplicate_dropped: number;
  conflicts: number;
}

/** What the database file holds, read directly as an operator would with sqlite3. */
export interface StoreFile {
  rows: FileRow[];
  counters: FileCounters;
  topicCounts: Map<string, number>;
  /** PRAGMA quick_check: "ok" for an intact file. */
  integrity: string;
}

/**
 * Reads the whole file on a read-only connection. Only call it while no
 * server runs on the file (after a kill, or after a clean exit), so the
 * snapshot is what the next server will start from.
 */
export function readStoreFile(dbPath: string): StoreFile {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.transaction(() => ({
      rows: db.prepare("SELECT seq, topic, event_id, ts, source, payload FROM events ORDER BY seq").all() as FileRow[],
      counters: db.prepare("SELECT received, unique_processed, duplicate_dropped, conflicts FROM counters WHERE id = 1").get() as FileCounters,
      topicCounts: new Map((db.prepare("SELECT topic, count FROM topic_counts").all() as { topic: string; count: number }[]).map((r) => [r.topic, r.count])),
      integrity: (db.pragma("quick_check") as { quick_check: string }[]).map((r) => r.quick_check).join("; "),
    }))();
  } finally {
    db.close();
  }
}

/** Rows stored more than once under one (topic, event_id): must be 0. */
export function duplicateRows(file: StoreFile): number {
  return file.rows.length - new Set(file.rows.map((r) => `${r.topic}\u0000${r.event_id}`)).size;
}

/**
 * What must hold in the file at every commit, whatever happened before: the
 * counters match the rows, no event is stored twice, seq is unique, and the
 * file is intact. Returns each violation as a sentence.
 */
export function fileInvariantViolations(file: StoreFile): string[] {
  const out: string[] = [];
  const { rows, counters: c } = file;
  if (file.integrity !== "ok") out.push(`PRAGMA quick_check reports: ${file.integrity}`);
  if (c.unique_processed !== rows.length) out.push(`counters.unique_processed is ${c.unique_processed} but the events table has ${rows.length} rows`);
  if (c.received !== c.unique_processed + c.duplicate_dropped + c.conflicts) {
    out.push(`counters.received ${c.received} != unique_processed ${c.unique_processed} + duplicate_dropped ${c.duplicate_dropped} + conflicts ${c.conflicts}`);
  }
  const duplicates = duplicateRows(file);
  if (duplicates !== 0) out.push(`${duplicates} (topic, event_id) pairs are stored more than once`);
  for (let i = 1; i < rows.length; i++) {
    if (rows[i]!.seq <= rows[i - 1]!.seq) {
      out.push(`seq is not unique and increasing: ${rows[i - 1]!.seq} then ${rows[i]!.seq}`);
      break;
    }
  }
  const perTopic = new Map<string, number>();
  for (const row of rows) perTopic.set(row.topic, (perTopic.get(row.topic) ?? 0) + 1);
  for (const topic of new Set([...perTopic.keys(), ...file.topicCounts.keys()])) {
    if ((perTopic.get(topic) ?? 0) !== (file.topicCounts.get(topic) ?? 0)) {
      out.push(`topic_counts says ${file.topicCounts.get(topic) ?? 0} events for ${topic}, the events table has ${perTopic.get(topic) ?? 0}`);
    }
  }
  return out;
}

/** Where Stats (as a server answers it) disagrees with the file's counters and topic counts. */
export function statsMismatches(stats: StatsResponse, file: StoreFile): string[] {
  const out: string[] = [];
  const answered: FileCounters = {
    received: Number(stats.received),
    unique_processed: Number(stats.uniqueProcessed),
    duplicate_dropped: Number(stats.duplicateDropped),
    conflicts: Number(stats.conflicts),
  };
  for (const name of Object.keys(answered) as (keyof FileCounters)[]) {
    if (answered[name] !== file.counters[name]) out.push(`Stats answered ${name} ${answered[name]}, the file holds ${file.counters[name]}`);
  }
  const topics = new Map(stats.topics.map((t) => [t.name, Number(t.count)]));
  for (const topic of new Set([...topics.keys(), ...file.topicCounts.keys()])) {
    if (topics.get(topic) !== file.topicCounts.get(topic)) out.push(`Stats answered ${topics.get(topic)} events for ${topic}, the file holds ${file.topicCounts.get(topic)}`);
  }
  return out;
}
