import { create, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { EventSchema, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import type { Prng } from "./prng.js";

/** Topics the chaos producers spread their events over. */
const topics = ["chaos.orders", "chaos.clicks", "chaos.audit"] as const;

/** Strings that must come back byte for byte: escapes, non-ASCII, and a NUL (the writer's field separator). */
const labels = ["plain", "héllo wörld", "emoji 🎉 ok", 'quote " and \\ backslash', "tab\tand\nnewline", "nul \u0000 inside", ""] as const;

/** When the producers' events happened: fixed, so a replayed seed sends the same events. */
const baseMs = Date.UTC(2025, 9, 24, 10, 0, 0);

/** Identity of an event: (topic, event_id). */
export function eventKey(topic: string, eventId: string): string {
  return `${topic}\u0000${eventId}`;
}

/**
 * Event number n of a producer. Its id is unique to the producer and n; the
 * rest comes from the producer's PRNG. The Event object is kept and re-sent as
 * is, so every re-send carries the identical payload.
 */
export function chaosEvent(producer: number, n: number, prng: Prng): Event {
  return create(EventSchema, {
    topic: prng.pick(topics),
    eventId: `p${producer}-${n}`,
    timestamp: timestampFromMs(baseMs + n * 1_000 + prng.int(0, 999)),
    source: `chaos-producer-${producer}`,
    payload: chaosPayload(producer, n, prng),
  });
}

function chaosPayload(producer: number, n: number, prng: Prng): JsonObject {
  // Few values: every one is a google.protobuf.Value to encode, and encoding is most of the producers' CPU.
  const payload: JsonObject = {
    producer,
    n,
    ratio: prng.next(),
    label: prng.pick(labels),
    nested: { zeta: [prng.chance(0.5), null], alpha: prng.int(-1_000, 1_000) },
  };
  // Now and then a larger payload, so batches vary in bytes as well as in count.
  if (prng.chance(0.05)) payload.blob = "x".repeat(prng.int(100, 1_500));
  return payload;
}

/** The payload text tally stores: JSON with object keys sorted at every level. */
export function canonicalPayload(payload: JsonObject | undefined): string {
  return JSON.stringify(sortKeys(payload ?? {}));
}

function sortKeys(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== "object") return value;
  const sorted: JsonObject = {};
  for (const key of Object.keys(value).sort()) sorted[key] = sortKeys(value[key]!);
  return sorted;
}

/** The timestamp text tally stores: fixed-width RFC 3339 with nanoseconds. */
export function storedTimestamp(event: Event): string {
  const ts = event.timestamp!;
  return `${new Date(Number(ts.seconds) * 1_000).toISOString().slice(0, 19)}.${String(ts.nanos).padStart(9, "0")}Z`;
}

/** The event as REST and Connect JSON clients send it (snake_case, RFC 3339 timestamp, payload as an object). */
export function eventJson(event: Event): JsonValue {
  return toJson(EventSchema, event, { useProtoFieldName: true });
}
