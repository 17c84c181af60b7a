import type { EventRecord } from "../store/types.js";
import { CanonicalPayload } from "./canonical-json.js";
import type { DecodedBatch } from "./decoded-batch.js";
import { invalidTextDescription, isValidText } from "./text-rules.js";
import { isTimestampInRange, timestampToText } from "./timestamps.js";
import { ValidationError, type Violation } from "./violations.js";

/** Limits validation enforces; taken from Config. */
export interface ValidationLimits {
  maxBatch: number;
  maxPayloadBytes: number;
}

/** topic, event_id and source are identifiers, not documents. */
const maxIdentifierLength = 255;

/** C0 and C1 control characters (NUL among them) and DEL, which nobody can type or print in an identifier (payloads keep them: text-rules.ts). */
const controlCharacter = /[\u0000-\u001f\u007f-\u009f]/;

function checkIdentifier(value: string, field: string, index: number, out: Violation[]): void {
  if (value.length === 0) {
    out.push({ index, field, description: "is required (1-255 characters)" });
  } else if (value.length > maxIdentifierLength) {
    out.push({ index, field, description: `is ${value.length} characters long, at most ${maxIdentifierLength} allowed` });
  } else if (!isValidText(value)) {
    out.push({ index, field, description: invalidTextDescription });
  } else if (controlCharacter.test(value)) {
    out.push({ index, field, description: "contains a control character" });
  } else if (value.trim().length === 0) {
    out.push({ index, field, description: "must not be only whitespace" });
  }
}

/** Refuses a batch over the limit; decoders call it before decoding each event, so an oversized batch costs little. */
export function checkBatchSize(count: number, maxBatch: number): void {
  if (count > maxBatch) {
    throw new ValidationError([{ index: -1, field: "events", description: `has ${count} events, at most ${maxBatch} allowed per request` }]);
  }
}

/**
 * Checks every event of a decoded batch and converts them to their store
 * form. Any violation refuses the whole batch: a ValidationError naming each
 * bad index and field (the decoder's first, then each event's in field
 * order), and nothing stored.
 */
export function validateBatch(batch: DecodedBatch, limits: ValidationLimits): { records: EventRecord[]; bytes: number } {
  const { events } = batch;
  if (events.length === 0) {
    throw new ValidationError([{ index: -1, field: "events", description: "must contain at least one event" }]);
  }
  checkBatchSize(events.length, limits.maxBatch);
  const violations: Violation[] = [...batch.violations];
  const records: EventRecord[] = new Array(events.length);
  let bytes = 0;
  let undecoded = false;
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    if (event === undefined) {
      undecoded = true;
      continue;
    }
    const before = violations.length;
    checkIdentifier(event.topic, "topic", index, violations);
    checkIdentifier(event.eventId, "event_id", index, violations);
    checkIdentifier(event.source, "source", index, violations);
    const ts = event.timestamp;
    if (ts === undefined) {
      violations.push({ index, field: "timestamp", description: "is required (RFC 3339 in JSON, e.g. 2025-10-24T10:00:00Z)" });
    } else if (!isTimestampInRange(ts)) {
      violations.push({ index, field: "timestamp", description: "is outside 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z" });
    }
    const payload = event.payload;
    if (payload === undefined) {
      violations.push({ index, field: "payload", description: "is required (a JSON object, {} allowed)" });
    } else if (!(payload instanceof CanonicalPayload)) {
      violations.push({ index, field: "payload", description: payload.description });
    } else {
      const payloadBytes = Buffer.byteLength(payload.json);
      if (payloadBytes > limits.maxPayloadBytes) {
        violations.push({ index, field: "payload", description: `is ${payloadBytes} bytes as JSON, at most ${limits.maxPayloadBytes} allowed` });
      }
    }
    if (violations.length > before) continue;
    const record: EventRecord = { topic: event.topic, eventId: event.eventId, ts: timestampToText(ts!), source: event.source, payload: (payload as CanonicalPayload).json };
    records[index] = record;
    bytes += recordBytes(record);
  }
  // A decoder reports why it left an event undefined; should one ever not, the batch is refused all the same.
  if (undecoded && violations.length === 0) violations.push({ index: -1, field: "events", description: "hold an event that could not be decoded" });
  if (violations.length > 0) throw new ValidationError(violations.sort((a, b) => a.index - b.index));
  return { records, bytes };
}

/** Approximate memory an event holds while queued: its text, two bytes a character. */
function recordBytes(r: EventRecord): number {
  return 2 * (r.topic.length + r.eventId.length + r.ts.length + r.source.length + r.payload.length);
}
