import { ProtoWriter, writeStructFields } from "../../codec/proto-writer.js";
import type { EventFields } from "./events.js";

/**
 * aggregator.v1.Event written by hand (codec/proto-writer.ts), for the load
 * generator: pre-encoding a million events by reflection took over a minute.
 * tests/load checks that protobuf-es decodes its output back to the same event.
 */

/** Appends aggregator.v1.Event: topic 1, event_id 2, timestamp 3 {seconds 1, nanos 2}, source 4, payload 5. */
export function writeEvent(w: ProtoWriter, f: EventFields): void {
  w.string(1, f.topic);
  w.string(2, f.eventId);
  const ts = w.fork(3);
  w.varint(1, f.seconds);
  if (f.millis !== 0) w.varint(2, f.millis * 1_000_000);
  w.join(ts);
  w.string(4, f.source);
  const payload = w.fork(5);
  writeStructFields(w, f.payload);
  w.join(payload);
}

/** One event's encoding on its own (tests; the cache writes into its arena instead). */
export function encodeEvent(f: EventFields): Uint8Array {
  const w = new ProtoWriter(512);
  writeEvent(w, f);
  return Uint8Array.prototype.slice.call(w.buffer, 0, w.length);
}

/**
 * Reads the top-level varint fields of a message, skipping the rest: the
 * counts of a PublishResponse (accepted 1, duplicates 2, conflicts 3) or a
 * PublishStreamResponse (received 1, accepted 2, duplicates 3, conflicts 4)
 * without decoding a thousand per-event results the load generator does not
 * need. Absent fields read as 0, as proto3 says.
 */
export function readVarintFields(bytes: Uint8Array, highestField: number): number[] {
  const values = new Array<number>(highestField + 1).fill(0);
  let at = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const byte = bytes[at++];
      if (byte === undefined) throw new RangeError("truncated protobuf message");
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
  };
  while (at < bytes.length) {
    const key = varint();
    const field = Math.floor(key / 8);
    const wireType = key & 7;
    if (wireType === 0) {
      const value = varint();
      if (field <= highestField) values[field] = value;
    } else if (wireType === 2) {
      // Not `at += varint()`: that reads `at` before varint() moves it past the length.
      const length = varint();
      at += length;
    } else if (wireType === 1) at += 8;
    else if (wireType === 5) at += 4;
    else throw new RangeError(`unexpected wire type ${wireType}`);
  }
  return values;
}
