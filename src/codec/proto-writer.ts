import type { JsonObject, JsonValue } from "@bufbuild/protobuf";

/**
 * A hand-written protobuf writer, for the messages that carry
 * google.protobuf.Struct in bulk: protobuf-es encodes Struct by reflection at
 * about 13k events/s on this machine. The server writes subscription events
 * with it (stored-event-wire.ts), the load generator its events. Tests check
 * that protobuf-es decodes the output back to the same message.
 *
 * Wire format reminders: a field key is (number << 3) | wire type; wire type
 * 0 is a varint, 1 a little-endian double, 2 length-delimited bytes.
 */

/** Bytes a varint of `value` (0 <= value < 2^53) takes. */
export function varintSize(value: number): number {
  let size = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    size++;
  }
  return size;
}

/** Writes `value` as a varint at `at`; returns the offset after it. */
export function writeVarint(out: Uint8Array, at: number, value: number): number {
  while (value >= 0x80) {
    out[at++] = (value % 128) | 0x80;
    value = Math.floor(value / 128);
  }
  out[at++] = value;
  return at;
}

/**
 * Appends protobuf to one growing buffer with no allocation per field: the
 * first version built a small array per field and ran at 11k events/s, no
 * faster than reflection. A sub-message gets one byte reserved for its
 * length; the rare one of 128 bytes or more is shifted right to make room.
 */
export class ProtoWriter {
  buffer: Buffer;
  /** Bytes written so far. */
  length = 0;

  constructor(initialBytes = 64 * 1024) {
    this.buffer = Buffer.allocUnsafe(initialBytes);
  }

  private ensure(extra: number): void {
    if (this.length + extra <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + extra));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }

  private key(fieldNumber: number, wireType: number): void {
    this.ensure(10);
    this.length = writeVarint(this.buffer, this.length, (fieldNumber << 3) | wireType);
  }

  varint(fieldNumber: number, value: number): void {
    this.key(fieldNumber, 0);
    this.ensure(10);
    this.length = writeVarint(this.buffer, this.length, value);
  }

  /** An int64 field that may be negative (a Timestamp's seconds before 1970): ten bytes of two's complement then. */
  int64(fieldNumber: number, value: number): void {
    if (value >= 0) {
      this.varint(fieldNumber, value);
      return;
    }
    this.key(fieldNumber, 0);
    this.ensure(10);
    let rest = BigInt.asUintN(64, BigInt(value));
    for (let i = 0; i < 9; i++) {
      this.buffer[this.length++] = Number(rest & 0x7fn) | 0x80;
      rest >>= 7n;
    }
    this.buffer[this.length++] = Number(rest);
  }

  double(fieldNumber: number, value: number): void {
    this.key(fieldNumber, 1);
    this.ensure(8);
    this.length = this.buffer.writeDoubleLE(value, this.length);
  }

  string(fieldNumber: number, text: string): void {
    const start = this.fork(fieldNumber);
    this.ensure(text.length * 3);
    let at = this.length;
    const out = this.buffer;
    // ASCII, the common case, byte by byte: cheaper than a call into C++ for short strings.
    let i = 0;
    for (; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0x80) break;
      out[at++] = c;
    }
    if (i < text.length) at += out.write(text.slice(i), at, "utf8");
    this.length = at;
    this.join(start);
  }

  /** Reserves `bytes` bytes to fill in later (a gRPC envelope's prefix); returns where they start. */
  reserve(bytes: number): number {
    this.ensure(bytes);
    const at = this.length;
    this.length += bytes;
    return at;
  }

  /** Starts a length-delimited field; returns where its content starts, for join(). */
  fork(fieldNumber: number): number {
    this.key(fieldNumber, 2);
    this.ensure(1);
    this.length++;
    return this.length;
  }

  /** Ends the field fork() started: writes its length, moving the content if the length needs more than a byte. */
  join(start: number): void {
    const size = this.length - start;
    const extra = varintSize(size) - 1;
    if (extra > 0) {
      this.ensure(extra);
      this.buffer.copyWithin(start + extra, start, this.length);
      this.length += extra;
    }
    writeVarint(this.buffer, start - 1, size);
  }
}

/** google.protobuf.Value: null 1, number 2, string 3, bool 4, struct 5, list 6. */
function writeValue(w: ProtoWriter, value: JsonValue): void {
  if (value === null) w.varint(1, 0);
  else if (typeof value === "number") w.double(2, value);
  else if (typeof value === "string") w.string(3, value);
  else if (typeof value === "boolean") w.varint(4, value ? 1 : 0);
  else if (Array.isArray(value)) {
    const list = w.fork(6);
    for (const item of value) {
      const element = w.fork(1);
      writeValue(w, item);
      w.join(element);
    }
    w.join(list);
  } else {
    const struct = w.fork(5);
    writeStructFields(w, value);
    w.join(struct);
  }
}

/** The fields of a google.protobuf.Struct: map<string, Value> fields = 1, each entry {key 1, value 2}. */
export function writeStructFields(w: ProtoWriter, object: JsonObject): void {
  for (const key of Object.keys(object)) {
    const entry = w.fork(1);
    w.string(1, key);
    const value = w.fork(2);
    writeValue(w, object[key] as JsonValue);
    w.join(value);
    w.join(entry);
  }
}
