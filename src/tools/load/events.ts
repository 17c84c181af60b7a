import type { JsonObject } from "@bufbuild/protobuf";
import type { Event } from "../../../gen/aggregator/v1/aggregator_pb.js";

/**
 * Event number i of a seeded workload, the same every time: the bench can
 * re-create any event (to re-send it, or to check it) without keeping it,
 * and the shape is the one the older services carried: 4 topics, 4 sources,
 * a random-looking UUID id and a ~150-byte payload object.
 */

/** The seed services' topics; more than four are numbered. */
const namedTopics = ["orders", "payments", "users", "inventory"];
const sources = ["checkout", "billing", "auth", "warehouse"];
const actions = ["purchase", "refund", "login", "restock"];

/** Event times start here (2025-10-24T10:00:00Z) and advance a second per event number. */
const firstEventSecond = 1_761_300_000;

/** Topic names for a workload with `count` topics. */
export function topicNames(count: number): string[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`topics must be a positive integer, got ${count}`);
  return Array.from({ length: count }, (_, k) => namedTopics[k] ?? `topic-${k + 1}`);
}

/** Topics t000, t001, …: one per subscriber of the bench's fan-out run, each name the same width so they sort by number. */
export function numberedTopics(count: number): string[] {
  if (!Number.isInteger(count) || count < 1) throw new RangeError(`topics must be a positive integer, got ${count}`);
  const width = String(count - 1).length;
  return Array.from({ length: count }, (_, k) => `t${String(k).padStart(Math.max(width, 3), "0")}`);
}

/** The fields of one event, in the forms both the protobuf and the JSON encoders start from. */
export interface EventFields {
  topic: string;
  eventId: string;
  seconds: number;
  /** Milliseconds, so timestamps carry a fraction as real producers' do. */
  millis: number;
  source: string;
  payload: JsonObject;
}

/** Builds event number `index` of the workload seeded with `seed`. */
export function eventFields(seed: number, index: number, topics: readonly string[]): EventFields {
  // The first word is a bijection of the index (mix32 is invertible), so ids never repeat within a seed.
  const w0 = mix32(index ^ mix32(seed));
  const w1 = mix32(w0 ^ 0x68e31da4);
  const w2 = mix32(w1 ^ 0xb5297a4d);
  const w3 = mix32(w2 ^ 0x1b56c4e9);
  return {
    topic: topics[index % topics.length]!,
    eventId: uuidV4(w0, w1, w2, w3),
    seconds: firstEventSecond + index,
    millis: w3 % 1000,
    source: sources[Math.floor(index / topics.length) % sources.length]!,
    payload: {
      user_id: `user-${String(w1 % 100_000).padStart(6, "0")}`,
      action: actions[w2 % actions.length]!,
      amount: (w3 % 100_000) / 100,
      currency: "EUR",
      items: [w1 % 17, w2 % 31],
      session: hex8(w2) + hex8(w3).slice(0, 4),
      client: { ip: `10.${w1 & 255}.${(w1 >>> 8) & 255}.${(w1 >>> 16) & 255}`, app: "web" },
    },
  };
}

/** The event as a protobuf-es message. */
export function protoEvent(f: EventFields): Event {
  return {
    $typeName: "aggregator.v1.Event",
    topic: f.topic,
    eventId: f.eventId,
    timestamp: { $typeName: "google.protobuf.Timestamp", seconds: BigInt(f.seconds), nanos: f.millis * 1_000_000 },
    source: f.source,
    payload: f.payload,
  };
}

/** The event as REST and Connect JSON clients send it (snake_case, RFC 3339 time). */
export function jsonEvent(f: EventFields): Record<string, unknown> {
  const iso = new Date(f.seconds * 1000 + f.millis).toISOString();
  return { topic: f.topic, event_id: f.eventId, timestamp: iso, source: f.source, payload: f.payload };
}

/** Murmur3's 32-bit finalizer: cheap, invertible, and mixes every input bit into every output bit. */
function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

function hex8(word: number): string {
  return word.toString(16).padStart(8, "0");
}

/** RFC 9562 version 4 layout: random bits with the version nibble 4 and the variant bits 10. */
function uuidV4(w0: number, w1: number, w2: number, w3: number): string {
  const a = hex8(w0);
  const b = hex8(((w1 & 0xffff0fff) | 0x00004000) >>> 0);
  const c = hex8(((w2 & 0x3fffffff) | 0x80000000) >>> 0);
  const d = hex8(w3);
  return `${a}-${b.slice(0, 4)}-${b.slice(4)}-${c.slice(0, 4)}-${c.slice(4)}${d}`;
}
