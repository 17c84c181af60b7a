import { textToRfc3339 } from "../codec/timestamps.js";
import type { StoredEventRow } from "../store/types.js";

/** A stored event as the REST routes answer it (GET /events, GET /events/stream): the older services' field names. */
export function restEvent(row: StoredEventRow) {
  return {
    seq: row.seq,
    topic: row.topic,
    event_id: row.eventId,
    timestamp: textToRfc3339(row.ts),
    source: row.source,
    payload: JSON.parse(row.payload) as unknown,
    received_at: row.receivedAt,
  };
}
