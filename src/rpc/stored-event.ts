import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { StoredEventSchema, type StoredEvent } from "../../gen/aggregator/v1/aggregator_pb.js";
import { textToTimestamp } from "../codec/timestamps.js";
import type { StoredEventRow } from "../store/types.js";

/** A stored row as the RPCs answer it (Events, Subscribe). */
export function storedEvent(row: StoredEventRow): StoredEvent {
  return create(StoredEventSchema, {
    seq: BigInt(row.seq),
    topic: row.topic,
    eventId: row.eventId,
    timestamp: textToTimestamp(row.ts),
    source: row.source,
    payload: JSON.parse(row.payload) as JsonObject,
    receivedAt: timestampFromMs(Date.parse(row.receivedAt)),
  });
}
