import type { EventCache } from "./event-cache.js";
import { varintSize, writeVarint } from "../../codec/proto-writer.js";
import type { Workload } from "./workload.js";

/** How the load reaches the server. */
export const transports = ["grpc-stream", "grpc", "connect", "rest"] as const;
export type Transport = (typeof transports)[number];

/**
 * A workload cut into request bodies: batch i carries sends
 * [i * size, min((i + 1) * size, sends)) of the order, encoded for one
 * transport. Bodies are made on demand; `preEncode` makes them all first,
 * before a clock starts.
 */
export interface Batches {
  readonly count: number;
  readonly size: number;
  /** First send of batch i. */
  start(i: number): number;
  /** One past its last send. */
  end(i: number): number;
  body(i: number): Buffer;
}

/** The request bodies of `workload` for `transport`, `size` events each. */
export function makeBatches(transport: Transport, workload: Workload, size: number, cache: EventCache): Batches {
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`batch size must be a positive integer, got ${size}`);
  const sends = workload.order.length;
  const start = (i: number) => i * size;
  const end = (i: number) => Math.min((i + 1) * size, sends);
  const indices = (i: number) => workload.order.subarray(start(i), end(i));
  const encode: (events: Int32Array) => Buffer =
    transport === "grpc" || transport === "grpc-stream"
      ? (events) => grpcPublishFrame(events, cache)
      : transport === "connect"
        ? (events) => jsonEventsBody(events, cache)
        : (events) => (events.length === 1 ? Buffer.from(cache.jsonText(events[0]!)) : jsonEventsBody(events, cache));
  return { count: Math.ceil(sends / size), size, start, end, body: (i) => encode(indices(i)) };
}

/** Encodes every body now and serves them from memory, so the timed run only writes bytes. */
export function preEncode(batches: Batches): Batches {
  const bodies = Array.from({ length: batches.count }, (_, i) => batches.body(i));
  return { count: batches.count, size: batches.size, start: batches.start, end: batches.end, body: (i) => bodies[i]! };
}

/**
 * A gRPC length-prefixed message holding a PublishRequest (or, with the same
 * field number and so the same bytes, a PublishStreamRequest): each event is
 * field 1, length-delimited, copied from the cache.
 */
function grpcPublishFrame(events: Int32Array, cache: EventCache): Buffer {
  let size = 0;
  for (const index of events) {
    const length = cache.proto(index).length;
    size += 1 + varintSize(length) + length;
  }
  const frame = Buffer.allocUnsafe(5 + size);
  frame[0] = 0;
  frame.writeUInt32BE(size, 1);
  let at = 5;
  for (const index of events) {
    const event = cache.proto(index);
    frame[at++] = (1 << 3) | 2;
    at = writeVarint(frame, at, event.length);
    frame.set(event, at);
    at += event.length;
  }
  return frame;
}

/** {"events":[...]}: the body of a Connect JSON Publish and of a batched REST /publish. */
function jsonEventsBody(events: Int32Array, cache: EventCache): Buffer {
  const texts = new Array<string>(events.length);
  for (let i = 0; i < events.length; i++) texts[i] = cache.jsonText(events[i]!);
  return Buffer.from(`{"events":[${texts.join(",")}]}`);
}
