import Database from "better-sqlite3";
import type { AckCounts } from "../load/run-record.js";
import type { ServerCounts } from "../load/stats-client.js";

/**
 * The check that makes a figure count: after a run, the database must hold
 * exactly the distinct events sent, the counters must say so, and the
 * answers must have said so too. A fast run that stores the wrong thing is
 * not a result; any mismatch fails the bench.
 */

/** What a closed database holds. */
export interface DatabaseCounts {
  rows: number;
  counters: ServerCounts;
}

/** Opens the (closed) database read-only and counts. */
export function inspectDatabase(path: string): DatabaseCounts {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = (db.prepare("SELECT count(*) AS n FROM events").get() as { n: number }).n;
    const c = db.prepare("SELECT received, unique_processed, duplicate_dropped, conflicts FROM counters WHERE id = 1").get() as {
      received: number;
      unique_processed: number;
      duplicate_dropped: number;
      conflicts: number;
    };
    return {
      rows,
      counters: { received: c.received, uniqueProcessed: c.unique_processed, duplicateDropped: c.duplicate_dropped, conflicts: c.conflicts },
    };
  } finally {
    db.close();
  }
}

/** What a run sent, what it was told, and what the server and database say. */
export interface Evidence {
  sends: number;
  distinct: number;
  /** Summed answers; raw runs have none. */
  answers?: AckCounts;
  /** Stats after the run (the database started empty); raw runs have none. */
  stats?: ServerCounts;
  database: DatabaseCounts;
  failedBatches: number;
}

/** Every way the evidence disagrees with what was sent; empty when the run counted exactly. */
export function findMiscounts(e: Evidence): string[] {
  const problems: string[] = [];
  const duplicates = e.sends - e.distinct;
  const expect = (what: string, got: number, want: number) => {
    if (got !== want) problems.push(`${what}: expected ${want}, got ${got}`);
  };
  if (e.failedBatches > 0) problems.push(`${e.failedBatches} batches failed (their outcome is unknown)`);
  expect("rows stored", e.database.rows, e.distinct);
  expect("db counter received", e.database.counters.received, e.sends);
  expect("db counter unique_processed", e.database.counters.uniqueProcessed, e.distinct);
  expect("db counter duplicate_dropped", e.database.counters.duplicateDropped, duplicates);
  expect("db counter conflicts", e.database.counters.conflicts, 0);
  if (e.stats !== undefined) {
    expect("Stats received", e.stats.received, e.sends);
    expect("Stats unique_processed", e.stats.uniqueProcessed, e.distinct);
    expect("Stats duplicate_dropped", e.stats.duplicateDropped, duplicates);
    expect("Stats conflicts", e.stats.conflicts, 0);
  }
  if (e.answers !== undefined) {
    expect("answers accepted", e.answers.accepted, e.distinct);
    expect("answers duplicates", e.answers.duplicates, duplicates);
    expect("answers conflicts", e.answers.conflicts, 0);
  }
  return problems;
}
