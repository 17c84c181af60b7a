import type { Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import type { DecodedBatch } from "./decoded-batch.js";
import { canonicalPayload } from "./json-events.js";

/**
 * Events that protobuf-es decoded (Connect JSON, and any codec without a
 * fast path) as a decoded batch: the same shape and the same payload rules
 * as the REST and binary decoders, with each payload in canonical form.
 */
export function decodeMessageEvents(events: readonly Event[]): DecodedBatch {
  return {
    events: events.map((e) => ({
      topic: e.topic,
      eventId: e.eventId,
      timestamp: e.timestamp,
      source: e.source,
      payload: e.payload === undefined ? undefined : canonicalPayload(e.payload),
    })),
    violations: [],
  };
}
