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
    lastSecondText = secondToText(Number(ts.seconds));
    lastSeconds = ts.seconds;
  }
  return `${lastSecondText}.${String(ts.nanos).padStart(9, "0")}Z`;
}

/**
 * "YYYY-MM-DDTHH:MM:SS" of a second since the epoch (years 0001 to 9999), by
 * integer arithmetic (the civil-from-days algorithm): single-event requests
 * rarely share a second, and a Date plus toISOString per event cost more than
 * the rest of the timestamp's handling.
 */
function secondToText(epochSeconds: number): string {
  const days = Math.floor(epochSeconds / 86_400);
  const secondOfDay = epochSeconds - days * 86_400;
  const shifted = days + 719_468; // days since 0000-03-01
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthFromMarch = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthFromMarch + 2) / 5) + 1;
  const month = monthFromMarch < 10 ? monthFromMarch + 3 : monthFromMarch - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(secondOfDay / 3600);
  const minute = Math.floor((secondOfDay % 3600) / 60);
  return `${String(year).padStart(4, "0")}-${twoDigits(month)}-${twoDigits(day)}T${twoDigits(hour)}:${twoDigits(minute)}:${twoDigits(secondOfDay % 60)}`;
}

function twoDigits(n: number): string {
  return n < 10 ? `0${n}` : String(n);
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
  const sorted = sortedCopy(value, 1, maxDepth);
  return sorted === unordered ? write(value, 1, maxDepth) : JSON.stringify(sorted);
}

/** What sortedCopy answers for a value holding keys whose order it cannot set. */
const unordered = Symbol("unordered");

/**
 * The value with the keys of every object in sorted order, sharing whatever
 * is already sorted. JSON.stringify writes keys in property order, so this
 * lets V8 write the canonical text natively, about twice as fast as building
 * it here (it was the largest part of validating a single REST event). V8
 * keeps string keys in insertion order, except integer-like keys, which come
 * first in numeric order, and "__proto__", which sets the prototype: an object
 * with a key that could be either answers `unordered`, and is written by hand.
 */
function sortedCopy(value: JsonValue, depth: number, maxDepth: number): JsonValue | typeof unordered {
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new PayloadShapeError(nonFiniteNumberMessage(value));
    return value;
  }
  if (typeof value !== "object" || value === null) return value;
  if (depth > maxDepth) throw new PayloadShapeError(`is nested deeper than ${maxDepth} levels`);
  if (Array.isArray(value)) {
    let copy: JsonValue[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item = sortedCopy(value[i]!, depth + 1, maxDepth);
      if (item === unordered) return unordered;
      if (item !== value[i]) (copy ??= value.slice())[i] = item;
    }
    return copy ?? value;
  }
  const keys = Object.keys(value);
  let inOrder = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!keepsInsertionOrder(key)) return unordered;
    if (i > 0 && keys[i - 1]! > key) inOrder = false;
  }
  if (!inOrder) sortKeys(keys);
  let copy: JsonObject | undefined = inOrder ? undefined : {};
  for (const key of keys) {
    const member = sortedCopy(value[key]!, depth + 1, maxDepth);
    if (member === unordered) return unordered;
    if (copy === undefined && member !== value[key]) copy = { ...value };
    if (copy !== undefined) copy[key] = member;
  }
  return copy ?? value;
}

/** Keys a payload object usually has fit an insertion sort, which unlike Array.prototype.sort allocates nothing (V8 copies into a work array). */
const insertionSortMaxKeys = 24;

/** Sorts in place by UTF-16 code units, as Array.prototype.sort does by default. */
function sortKeys(keys: string[]): void {
  if (keys.length > insertionSortMaxKeys) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
}

/** Whether V8 keeps this key where it was inserted: not integer-like (conservatively, not starting with a digit), not "__proto__". */
function keepsInsertionOrder(key: string): boolean {
  const first = key.charCodeAt(0);
  return !(first >= 48 && first <= 57) && key !== "__proto__";
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
