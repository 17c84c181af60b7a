import type Database from "better-sqlite3";
import { maxConsumers, type ConsumerRecord } from "../types.js";
import { consumerColumns, consumerRecord, type ConsumerRowSql } from "./consumer-rows.js";

/** One change to the consumers table, as it crosses to the writer thread. */
export type ConsumerChange =
  | { kind: "create"; record: ConsumerRecord }
  | { kind: "ack"; name: string; seq: number; at: string }
  | { kind: "delete"; name: string };

/** What a change answers: the consumer after it (before it, for a delete), or none; `full` when a create found no room. */
export type ConsumerOutcome = { record: ConsumerRecord | undefined; created: boolean; full: boolean };

/**
 * Applies the consumer changes of one writer turn in one transaction, so
 * they cost one commit together; each change answers on its own.
 */
export function createConsumerWriter(db: Database.Database): (changes: ConsumerChange[]) => ConsumerOutcome[] {
  const count = db.prepare("SELECT count(*) AS n FROM consumers");
  const get = db.prepare(`SELECT ${consumerColumns} FROM consumers WHERE name = ?`);
  const insert = db.prepare(
    "INSERT INTO consumers (name, topic, topic_prefix, source, since, acked_seq, created_at, acked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (name) DO NOTHING",
  );
  // AckAll: the cursor only moves forward, so a late or repeated ack cannot take it back.
  const ack = db.prepare(`UPDATE consumers SET acked_seq = max(acked_seq, ?), acked_at = ? WHERE name = ? RETURNING ${consumerColumns}`);
  const remove = db.prepare(`DELETE FROM consumers WHERE name = ? RETURNING ${consumerColumns}`);

  const apply = (change: ConsumerChange): ConsumerOutcome => {
    switch (change.kind) {
      case "create": {
        const existing = get.get(change.record.name) as ConsumerRowSql | undefined;
        if (existing !== undefined) return { record: consumerRecord(existing), created: false, full: false };
        if ((count.get() as { n: number }).n >= maxConsumers) return { record: undefined, created: false, full: true };
        const { name, filter, ackedSeq, createdAt } = change.record;
        insert.run(name, filter.topic ?? "", filter.topicPrefix ?? "", filter.source ?? "", filter.since ?? "", ackedSeq, createdAt);
        return { record: consumerRecord(get.get(name) as ConsumerRowSql), created: true, full: false };
      }
      case "ack": {
        const row = ack.get(change.seq, change.at, change.name) as ConsumerRowSql | undefined;
        return { record: row && consumerRecord(row), created: false, full: false };
      }
      case "delete": {
        const row = remove.get(change.name) as ConsumerRowSql | undefined;
        return { record: row && consumerRecord(row), created: false, full: false };
      }
    }
  };
  const applyAll = db.transaction((changes: ConsumerChange[]) => changes.map(apply));
  return (changes) => applyAll.immediate(changes);
}
