import { ProtoWriter } from "../../codec/proto-writer.js";

/**
 * Subscribe's messages, written and read by hand for the bench's
 * subscribers. protobuf-es decodes google.protobuf.Struct by reflection at
 * ~13k events/s here, so ten subscribers decoding every payload would
 * measure themselves; these read only what the bench checks (seq, topic,
 * received_at, a heartbeat's fields) and skip the rest of each event.
 * tests/load checks both against protobuf-es.
 */

/** SubscribeRequest.Start, as the proto numbers it. */
export const subscribeStart = { unspecified: 0, beginning: 1, new: 2 } as const;

/** The SubscribeRequest fields the bench sets. */
export interface SubscribeOptions {
  topic?: string | undefined;
  afterSeq?: number | undefined;
  start?: (typeof subscribeStart)[keyof typeof subscribeStart] | undefined;
  heartbeatMs?: number | undefined;
}

/** A gRPC length-prefixed SubscribeRequest: topic 1, after_seq 4, start 5, heartbeat_ms 8. */
export function subscribeRequestFrame(o: SubscribeOptions): Buffer {
  const w = new ProtoWriter(256);
  if (o.topic) w.string(1, o.topic);
  if (o.afterSeq) w.varint(4, o.afterSeq);
  if (o.start) w.varint(5, o.start);
  if (o.heartbeatMs) w.varint(8, o.heartbeatMs);
  const frame = Buffer.alloc(5 + w.length);
  frame.writeUInt32BE(w.length, 1);
  w.buffer.copy(frame, 5, 0, w.length);
  return frame;
}

/**
 * One decoded SubscribeResponse. The decoder fills one object again and
 * again (no allocation per event): read it before the next decode.
 */
export interface SubscribeItem {
  kind: "event" | "heartbeat" | "other";
  /** event: StoredEvent.seq. */
  seq: number;
  /** event: where the topic's UTF-8 bytes are in the decoded message. */
  topicStart: number;
  topicEnd: number;
  /** event: received_at (commit time) in milliseconds since the epoch, or 0 when absent. */
  receivedAtMs: number;
  /** heartbeat: head_seq, caught_up, cursor. */
  headSeq: number;
  caughtUp: boolean;
  cursor: number;
}

/** The one item a subscriber decodes into, again and again. */
export function emptyItem(): SubscribeItem {
  return { kind: "other", seq: 0, topicStart: 0, topicEnd: 0, receivedAtMs: 0, headSeq: 0, caughtUp: false, cursor: 0 };
}

/** Decodes the SubscribeResponse in bytes [start, end) of `b` into `into`. */
export function decodeSubscribeResponse(b: Uint8Array, start: number, end: number, into: SubscribeItem): SubscribeItem {
  const r = new Reader(b, start, end);
  into.kind = "other";
  while (r.at < end) {
    const key = r.varint();
    const field = key >>> 3;
    if ((key & 7) === 2 && (field === 1 || field === 2)) {
      const length = r.varint();
      const itemEnd = r.at + length;
      if (field === 1) readEvent(new Reader(b, r.at, itemEnd), into);
      else readHeartbeat(new Reader(b, r.at, itemEnd), into);
      r.at = itemEnd;
    } else r.skip(key & 7);
  }
  return into;
}

/** StoredEvent: seq 1, topic 2, received_at 7 {seconds 1, nanos 2}; the rest skipped. */
function readEvent(r: Reader, into: SubscribeItem): void {
  into.kind = "event";
  into.seq = 0;
  into.topicStart = into.topicEnd = 0;
  into.receivedAtMs = 0;
  while (r.at < r.end) {
    const key = r.varint();
    const field = key >>> 3;
    const wire = key & 7;
    if (field === 1 && wire === 0) into.seq = r.varint();
    else if (field === 2 && wire === 2) {
      const length = r.varint();
      into.topicStart = r.at;
      into.topicEnd = r.at += length;
    } else if (field === 7 && wire === 2) {
      const length = r.varint();
      const tsEnd = r.at + length;
      let seconds = 0;
      let nanos = 0;
      while (r.at < tsEnd) {
        const k = r.varint();
        if (k === (1 << 3)) seconds = r.varint();
        else if (k === ((2 << 3) | 0)) nanos = r.varint();
        else r.skip(k & 7);
      }
      into.receivedAtMs = seconds * 1000 + Math.floor(nanos / 1_000_000);
    } else r.skip(wire);
  }
}

/** Heartbeat: head_seq 1, caught_up 2, cursor 3. */
function readHeartbeat(r: Reader, into: SubscribeItem): void {
  into.kind = "heartbeat";
  into.headSeq = 0;
  into.caughtUp = false;
  into.cursor = 0;
  while (r.at < r.end) {
    const key = r.varint();
    if (key === (1 << 3)) into.headSeq = r.varint();
    else if (key === (2 << 3)) into.caughtUp = r.varint() !== 0;
    else if (key === (3 << 3)) into.cursor = r.varint();
    else r.skip(key & 7);
  }
}

/** A cursor over protobuf bytes; varints up to 2^53, which seqs and timestamps stay below. */
class Reader {
  constructor(
    private readonly b: Uint8Array,
    public at: number,
    readonly end: number,
  ) {}

  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      if (this.at >= this.end) throw new RangeError("truncated protobuf message");
      const byte = this.b[this.at++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) return result;
      scale *= 128;
    }
  }

  skip(wire: number): void {
    if (wire === 0) this.varint();
    else if (wire === 1) this.at += 8;
    else if (wire === 2) {
      // Not `this.at += this.varint()`: that reads `at` before varint() moves it past the length.
      const length = this.varint();
      this.at += length;
    } else if (wire === 5) this.at += 4;
    else throw new RangeError(`unexpected wire type ${wire}`);
    if (this.at > this.end) throw new RangeError("truncated protobuf message");
  }
}
