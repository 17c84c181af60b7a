import { create, type JsonObject } from "@bufbuild/protobuf";
import { EventSchema, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { decodeJsonBody } from "../codec/json-events.js";
import { checkJsonText } from "../codec/json-text-check.js";
import { validateBatch } from "../codec/validate.js";
import { ValidationError, type Violation } from "../codec/violations.js";

/** An event ready to send, with roughly what it weighs on the wire, for cutting batches by size. */
export interface CheckedEvent {
  event: Event;
  bytes: number;
}

/** What was wrong with one input item: the server's own words for each bad field. */
export type Problems = Violation[];

/**
 * The server's limits that do not depend on its flags. The payload limit
 * does (--max-payload-bytes), so it is left to the server, which names the
 * event; everything else is refused here, before anything is sent.
 */
const localLimits = { maxBatch: Number.MAX_SAFE_INTEGER, maxPayloadBytes: Number.MAX_SAFE_INTEGER };

/**
 * Checks a JSON text the way the server checks a REST body (codec/): bytes
 * that are not UTF-8 and numbers a double would round are refused before
 * parsing, since JSON.parse would change them silently. Throws
 * ValidationError; SyntaxError when it is not JSON.
 */
export function parseJsonText(bytes: Uint8Array): unknown {
  checkJsonText(bytes, "rest");
  return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"));
}

/**
 * The events of one parsed JSON value in any shape REST takes (an event, an
 * array of events, {"events": [...]}), checked by the server's own decoder
 * and validator, so what passes here is refused by the server only for its
 * configurable limits. Throws ValidationError naming each bad field.
 */
export function checkEvents(value: unknown): CheckedEvent[] {
  const decoded = decodeJsonBody(value, localLimits.maxBatch);
  const { records } = validateBatch(decoded, localLimits);
  const items = itemsOf(value);
  return records.map((record, i) => {
    const item = items[i] as Record<string, unknown>;
    const event = create(EventSchema, {
      topic: record.topic,
      eventId: record.eventId,
      timestamp: decoded.events[i]!.timestamp,
      source: record.source,
      payload: item.payload as JsonObject,
    });
    return { event, bytes: record.topic.length + record.eventId.length + record.ts.length + record.source.length + record.payload.length };
  });
}

/** The items of a REST-shaped value, in the order decodeJsonBody numbers them. */
function itemsOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  const object = value as Record<string, unknown>;
  return Array.isArray(object.events) ? object.events : [object];
}

/** The violations of a check that failed, or undefined for an error that is not a refusal (a bug: let it through). */
export function problemsOf(err: unknown): Problems | undefined {
  return err instanceof ValidationError ? err.violations : undefined;
}
