import { create } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * Timestamps as clients send them (RFC 3339 in JSON, google.protobuf.Timestamp
 * in binary) and as the store keeps them: fixed-width RFC 3339 with
 * nanoseconds ("2025-10-24T10:00:00.000000000Z"), so that they sort as text
 * and `sqlite3 aggregator.db 'select * from events'` stays readable.
 */

/** Smallest and largest seconds a google.protobuf.Timestamp may hold (years 0001 to 9999). */
const minTimestampSeconds = -62_135_596_800n;
const maxTimestampSeconds = 253_402_300_799n;

/** Whether a Timestamp lies in the range google.protobuf.Timestamp allows. */
export function isTimestampInRange(ts: Timestamp): boolean {
  return ts.seconds >= minTimestampSeconds && ts.seconds <= maxTimestampSeconds && ts.nanos >= 0 && ts.nanos <= 999_999_999;
}

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

const rfc3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

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
