import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { Event } from "../gen/aggregator/v1/aggregator_pb.js";
import { ValidationError, type Violation } from "./errors.js";
import { CanonicalPayload, PayloadShapeError, canonicalJson, maxTimestampSeconds, minTimestampSeconds, timestampToText } from "./event-text.js";
import type { EventRecord } from "./store/types.js";

/** Limits validation enforces; taken from Config. */
export interface ValidationLimits {
  maxBatch: number;
  maxPayloadBytes: number;
}

/**
 * An event as a decoder hands it to validation: an Event, whose payload may
 * already be canonical JSON text (the binary decoder writes it so).
 */
export type IncomingEvent = Pick<Event, "topic" | "eventId" | "timestamp" | "source"> & { payload?: Event["payload"] | CanonicalPayload };

/** topic, event_id and source are identifiers, not documents. */
const maxIdentifierLength = 255;

/**
 * Payloads nest at most this deep. Real events nest a handful of levels; a
 * limit keeps a hostile 10,000-level payload from exhausting the stack. And a
 * stored payload must stay readable by every client: in protobuf binary each
 * JSON level is two nested messages (Struct or ListValue, then Value), and
 * decoders stop at 100 nested messages (protobuf-es, C++, Java, upb in
 * Python), so from about 49 levels on gRPC and Connect binary clients could
 * neither send such a payload nor read an Events page holding one. 32 keeps a
 * wide margin below that.
 */
export const maxPayloadDepth = 32;

/** C0 and C1 control characters, DEL, and lone surrogates that no JSON consumer can print. */
const unprintable = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

function checkIdentifier(value: string, field: string, index: number, out: Violation[]): void {
  if (value.length === 0) {
    out.push({ index, field, description: "is required (1-255 characters)" });
  } else if (value.length > maxIdentifierLength) {
    out.push({ index, field, description: `is ${value.length} characters long, at most ${maxIdentifierLength} allowed` });
  } else if (unprintable.test(value)) {
    out.push({ index, field, description: "contains a control character or an unpaired surrogate" });
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
 * Checks every event of a batch and converts them to their store form. Any
 * violation refuses the whole batch: a ValidationError naming each bad index
 * and field, and nothing stored. `known` holds violations a decoder already
 * found; their events are undefined in `events` and are skipped here.
 */
export function validateBatch(
  events: readonly (IncomingEvent | undefined)[],
  limits: ValidationLimits,
  known: Violation[] = [],
): { records: EventRecord[]; bytes: number } {
  if (events.length === 0) {
    throw new ValidationError([{ index: -1, field: "events", description: "must contain at least one event" }]);
  }
  checkBatchSize(events.length, limits.maxBatch);
  const violations: Violation[] = [...known];
  const records: EventRecord[] = new Array(events.length);
  let bytes = 0;
  for (let index = 0; index < events.length; index++) {
    const event = events[index];
    if (event === undefined) continue;
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
    let payload = "";
    if (event.payload === undefined) {
      violations.push({ index, field: "payload", description: "is required (a JSON object, {} allowed)" });
    } else {
      try {
        payload = event.payload instanceof CanonicalPayload ? event.payload.json : canonicalJson(event.payload, maxPayloadDepth);
        const payloadBytes = Buffer.byteLength(payload);
        if (payloadBytes > limits.maxPayloadBytes) {
          violations.push({ index, field: "payload", description: `is ${payloadBytes} bytes as JSON, at most ${limits.maxPayloadBytes} allowed` });
        }
      } catch (err) {
        if (!(err instanceof PayloadShapeError)) throw err;
        violations.push({ index, field: "payload", description: err.message });
      }
    }
    if (violations.length > before) continue;
    const record: EventRecord = {
      topic: event.topic,
      eventId: event.eventId,
      ts: timestampToText(ts!),
      source: event.source,
      payload,
    };
    records[index] = record;
    bytes += recordBytes(record);
  }
  if (violations.length > 0) throw new ValidationError(violations.sort((a, b) => a.index - b.index));
  return { records, bytes };
}

/** Approximate memory an event holds while queued: its text, two bytes a character. */
function recordBytes(r: EventRecord): number {
  return 2 * (r.topic.length + r.eventId.length + r.ts.length + r.source.length + r.payload.length);
}

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

/** Whether a Timestamp lies in the range google.protobuf.Timestamp allows. */
export function isTimestampInRange(ts: Timestamp): boolean {
  return ts.seconds >= minTimestampSeconds && ts.seconds <= maxTimestampSeconds && ts.nanos >= 0 && ts.nanos <= 999_999_999;
}

/** Days from 1970-01-01 to a proleptic Gregorian date (month 1-12), by integer arithmetic: Date objects cost more than the rest of parsing. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Parses an RFC 3339 timestamp with a zone ("Z" or an offset); undefined when it is not one or is out of range. */
export function parseRfc3339(text: string): Timestamp | undefined {
  const m = rfc3339.exec(text);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) return undefined;
  const offsetHour = m[8] !== undefined ? 0 : Number(m[10]);
  const offsetMinute = m[8] !== undefined ? 0 : Number(m[11]);
  if (offsetHour > 23 || offsetMinute > 59) return undefined;
  const offsetMinutes = (m[9] === "-" ? -1 : 1) * (offsetHour * 60 + offsetMinute);
  const seconds = BigInt(daysFromCivil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60);
  // A literal, not create(): Timestamp has no other fields, and reflection cost as much as the parse.
  const ts: Timestamp = { $typeName: "google.protobuf.Timestamp", seconds, nanos: m[7] === undefined ? 0 : Number(m[7].padEnd(9, "0")) };
  return isTimestampInRange(ts) ? ts : undefined;
}

/**
 * A timestamp as protobuf JSON reads it: parseRfc3339's instants, with the
 * upper-case "T" and "Z" protobuf-es requires, so REST accepts the timestamps
 * Connect JSON accepts (except dates that do not exist, such as February 30,
 * which protobuf-es lets JavaScript's Date roll over and this refuses).
 */
export function parseJsonTimestamp(text: string): Timestamp | undefined {
  return /[tz]/.test(text) ? undefined : parseRfc3339(text);
}
