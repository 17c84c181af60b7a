import type Database from "better-sqlite3";
import { AppendStatus, type AppendResult } from "../types.js";

/**
 * A batch as it crosses to the writer thread: the five text fields of each
 * event laid end to end (topic, event_id, ts, source, payload). One flat array
 * of strings clones far cheaper than an array of objects.
 */
export type FlatBatch = string[];

/** Fields per event in a FlatBatch. */
const fieldsPerEvent = 5;

/**
 * Commits several batches in one transaction and answers the per-event
 * outcome of all of them, batch after batch in one pair of arrays: one
 * message carries it back to the main thread however many batches there were.
 */
export type GroupAppender = (batches: FlatBatch[]) => AppendResult & { receivedAt: string };

/**
 * Builds the group-commit transaction: insert every event, learn from the
 * insert itself whether it was new, compare the payload of the stored row
 * otherwise, and move the counters in the same transaction, so the counters
 * always equal what the rows say.
 */
export function createGroupAppender(db: Database.Database): GroupAppender {
  const insert = db.prepare(
    "INSERT INTO events (topic, event_id, ts, source, payload, received_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (topic, event_id) DO NOTHING",
  );
  const existing = db.prepare("SELECT seq, payload FROM events WHERE topic = ? AND event_id = ?");
  const bumpCounters = db.prepare(
    "UPDATE counters SET received = received + ?, unique_processed = unique_processed + ?, duplicate_dropped = duplicate_dropped + ?, conflicts = conflicts + ?, topics = topics + ? WHERE id = 1",
  );
  // Update first, insert when there was nothing to update: the insert tells that the topic is new.
  const bumpTopic = db.prepare("UPDATE topic_counts SET count = count + ? WHERE topic = ?");
  const addTopic = db.prepare("INSERT INTO topic_counts (topic, count) VALUES (?, ?)");

  const appendGroup = db.transaction((batches: FlatBatch[]): AppendResult & { receivedAt: string } => {
    const receivedAt = new Date().toISOString();
    const storedPerTopic = new Map<string, number>();
    let received = 0;
    for (const fields of batches) received += fields.length / fieldsPerEvent;
    const statuses = new Uint8Array(received);
    const seqs = new Float64Array(received);
    let accepted = 0;
    let duplicates = 0;
    let conflicts = 0;
    let i = 0;
    for (const fields of batches) {
      for (let f = 0; f < fields.length; i++, f += fieldsPerEvent) {
        const topic = fields[f]!;
        const eventId = fields[f + 1]!;
        const payload = fields[f + 4]!;
        const outcome = insert.run(topic, eventId, fields[f + 2], fields[f + 3], payload, receivedAt);
        if (outcome.changes === 1) {
          statuses[i] = AppendStatus.accepted;
          seqs[i] = Number(outcome.lastInsertRowid);
          accepted++;
          storedPerTopic.set(topic, (storedPerTopic.get(topic) ?? 0) + 1);
        } else {
          const row = existing.get(topic, eventId) as { seq: number; payload: string };
          seqs[i] = row.seq;
          if (row.payload === payload) {
            statuses[i] = AppendStatus.duplicate;
            duplicates++;
          } else {
            statuses[i] = AppendStatus.conflict;
            conflicts++;
          }
        }
      }
    }
    let newTopics = 0;
    for (const [topic, count] of storedPerTopic) {
      if (bumpTopic.run(count, topic).changes === 0) {
        addTopic.run(topic, count);
        newTopics++;
      }
    }
    bumpCounters.run(received, accepted, duplicates, conflicts, newTopics);
    return { statuses, seqs, receivedAt };
  });

  return (batches) => appendGroup.immediate(batches);
}
