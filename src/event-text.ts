import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { create } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";

/**
 * The text forms events take in the store. Timestamps are fixed-width RFC 3339
 * with nanoseconds ("2025-10-24T10:00:00.000000000Z") so that they sort as
 * text and `sqlite3 aggregator.db 'select * from events'` stays readable.
 */

/** Smallest and largest seconds a google.protobuf.Timestamp may hold (years 0001 to 9999). */
export const minTimestampSeconds = -62_135_596_800n;
export const maxTimestampSeconds = 253_402_300_799n;

/** The last second formatted, since events of a batch mostly share their second (Date formatting was 5% of the stream path). */
let lastSeconds: bigint | undefined;
let lastSecondText = "";

/** Store form of a timestamp; the caller has checked it is in range. */
export function timestampToText(ts: Timestamp): string {
  if (ts.seconds !== lastSeconds) {
    lastSecondText = new Date(Number(ts.seconds) * 1000).toISOString().slice(0, 19); // "YYYY-MM-DDTHH:MM:SS"
    lastSeconds = ts.seconds;
  }
  return `${lastSecondText}.${String(ts.nanos).padStart(9, "0")}Z`;
}

/** Timestamp message from its store form. */
export function textToTimestamp(text: string): Timestamp {
  return create(TimestampSchema, {
    seconds: BigInt(Date.parse(`${text.slice(0, 19)}Z`) / 1000),
    nanos: Number(text.slice(20, 29)),
  });
}

/** RFC 3339 as protobuf JSON writes it: 0, 3, 6 or 9 fraction digits. For REST answers. */
export function textToRfc3339(text: string): string {
  const fraction = text.slice(20, 29);
  const trimmed = fraction === "000000000" ? "" : fraction.endsWith("000000") ? `.${fraction.slice(0, 3)}` : fraction.endsWith("000") ? `.${fraction.slice(0, 6)}` : `.${fraction}`;
  return `${text.slice(0, 19)}${trimmed}Z`;
}

/** Thrown by canonicalJson for values JSON cannot carry. */
export class PayloadShapeError extends Error {}

/**
 * A payload already in its canonical JSON text, as the binary decoder
 * (ingest/wire-event.ts) writes it straight from the wire: building an
 * object first and walking it again was the largest cost of the stream path.
 */
export class CanonicalPayload {
  constructor(readonly json: string) {}
}

/** Why a number cannot be stored: JSON has no NaN or Infinity. */
export function nonFiniteNumberMessage(value: number): string {
  // JSON text such as 1e400 parses to Infinity: say where it came from.
  const origin = Number.isNaN(value) ? "" : " (numbers beyond ±1.8e308 overflow to it)";
  return `contains ${value}, which JSON cannot represent${origin}`;
}

/** JSON text of one object from its members' texts: keys sorted, the last of a repeated key kept. */
export function objectJson(members: Map<string, string>): string {
  const keys = [...members.keys()].sort();
  let text = "{";
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) text += ",";
    text += `${JSON.stringify(keys[i])}:${members.get(keys[i]!)}`;
  }
  return `${text}}`;
}

/**
 * JSON text of a payload with object keys sorted, so the same logical payload
 * always has the same text: re-sends compare equal however the producer ordered
 * the keys. Refuses non-finite numbers and nesting deeper than maxDepth.
 */
export function canonicalJson(value: JsonObject, maxDepth: number): string {
  return write(value, 1, maxDepth);
}

function write(value: JsonValue, depth: number, maxDepth: number): string {
  if (value === null || typeof value === "boolean" || typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new PayloadShapeError(nonFiniteNumberMessage(value));
    return JSON.stringify(value);
  }
  if (depth > maxDepth) throw new PayloadShapeError(`is nested deeper than ${maxDepth} levels`);
  if (Array.isArray(value)) {
    return `[${value.map((item) => write(item, depth + 1, maxDepth)).join(",")}]`;
  }
  const members = new Map<string, string>();
  for (const key of Object.keys(value)) members.set(key, write(value[key] as JsonValue, depth + 1, maxDepth));
  return objectJson(members);
}
