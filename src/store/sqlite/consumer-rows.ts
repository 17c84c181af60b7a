import type { ConsumerRecord } from "../types.js";

/** A consumers row as SQLite answers it. */
export interface ConsumerRowSql {
  name: string;
  topic: string;
  topic_prefix: string;
  source: string;
  since: string;
  acked_seq: number;
  created_at: string;
  acked_at: string | null;
}

export const consumerColumns = "name, topic, topic_prefix, source, since, acked_seq, created_at, acked_at";

/** The record of a row: '' columns are unset filters. */
export function consumerRecord(row: ConsumerRowSql): ConsumerRecord {
  return {
    name: row.name,
    filter: {
      ...(row.topic !== "" && { topic: row.topic }),
      ...(row.topic_prefix !== "" && { topicPrefix: row.topic_prefix }),
      ...(row.source !== "" && { source: row.source }),
      ...(row.since !== "" && { since: row.since }),
    },
    ackedSeq: row.acked_seq,
    createdAt: row.created_at,
    ...(row.acked_at !== null && { ackedAt: row.acked_at }),
  };
}
