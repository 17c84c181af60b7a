import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { Buffer, isUtf8 } from "node:buffer";
import type { Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import type { Violation } from "../errors.js";
import { maxPayloadDepth } from "../validate.js";

/**
 * A decoder for aggregator.v1.Event in protobuf binary, for the publish hot
 * path. protobuf-es decodes by reflection and builds a message object for
 * every Struct, Value and map entry: profiled, that was the largest cost of
 * the server's main thread. This reads the wire format of the five Event
 * fields (and Struct/Value/ListValue in the payload) straight into plain
 * objects, with the same result as fromBinary(EventSchema) except that it
 * also refuses invalid UTF-8 and a payload key "__proto__" (which
 * protobuf-es drops silently).
 */

const enum WireType {
  Varint = 0,
  Bit64 = 1,
  LengthDelimited = 2,
  StartGroup = 3,
  EndGroup = 4,
  Bit32 = 5,
}

class WireError extends Error {}

/**
 * A payload refused while decoding, with validation's wording: nested deeper
 * than the JSON depth limit (checked here so hostile input cannot exhaust the
 * stack), or holding the key "__proto__", which the JSON path's decoder drops
 * silently, so it is refused on every path alike.
 */
class PayloadRefusal extends Error {}

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  /** A varint of up to 64 bits; values beyond 2^53 lose precision, which only int64 fields could carry. */
  varint(): number {
    let result = 0;
    let shift = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const byte = this.buf[this.pos++]!;
      result += (byte & 0x7f) * shift;
      if (byte < 0x80) return result;
      shift *= 128;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** A varint read as a two's-complement int64, exactly, as a bigint. */
  int64(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new WireError("truncated varint");
      const byte = this.buf[this.pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return BigInt.asIntN(64, result);
      shift += 7n;
    }
    throw new WireError("varint longer than 10 bytes");
  }

  /** Bounds of a length-delimited field; advances past it. */
  span(): [number, number] {
    const length = this.varint();
    const start = this.pos;
    if (length > this.end - start) throw new WireError("length past the end of the message");
    this.pos = start + length;
    return [start, this.pos];
  }

  string(): string {
    const [start, end] = this.span();
    if (!isUtf8(this.buf.subarray(start, end))) throw new WireError("string is not valid UTF-8");
    return this.buf.toString("utf8", start, end);
  }

  double(): number {
    if (this.end - this.pos < 8) throw new WireError("truncated double");
    const value = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return value;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WireType.Varint:
        this.varint();
        return;
      case WireType.Bit64:
        this.advance(8);
        return;
      case WireType.LengthDelimited:
        this.span();
        return;
      case WireType.Bit32:
        this.advance(4);
        return;
      default:
        throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(bytes: number): void {
    if (this.end - this.pos < bytes) throw new WireError("truncated field");
    this.pos += bytes;
  }
}

function expect(wireType: number, wanted: WireType, field: string): void {
  if (wireType !== wanted) throw new WireError(`${field} has wire type ${wireType}, expected ${wanted}`);
}

/** Decodes one Event from its bytes. */
function decodeEvent(bytes: Uint8Array): Event {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf, 0, buf.length);
  const event = {
    $typeName: "aggregator.v1.Event",
    topic: "",
    eventId: "",
    timestamp: undefined as Event["timestamp"],
    source: "",
    payload: undefined as JsonObject | undefined,
  };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    switch (field) {
      case 1:
        expect(wireType, WireType.LengthDelimited, "topic");
        event.topic = r.string();
        break;
      case 2:
        expect(wireType, WireType.LengthDelimited, "event_id");
        event.eventId = r.string();
        break;
      case 3: {
        expect(wireType, WireType.LengthDelimited, "timestamp");
        const [start, end] = r.span();
        event.timestamp = decodeTimestamp(new Reader(buf, start, end), event.timestamp);
        break;
      }
      case 4:
        expect(wireType, WireType.LengthDelimited, "source");
        event.source = r.string();
        break;
      case 5: {
        expect(wireType, WireType.LengthDelimited, "payload");
        const [start, end] = r.span();
        // A repeated occurrence of a message field merges into the first, as protobuf specifies.
        event.payload = decodeStruct(new Reader(buf, start, end), event.payload ?? newObject(), 1);
        break;
      }
      default:
        r.skip(wireType);
    }
  }
  return event as Event;
}

function decodeTimestamp(r: Reader, previous: Event["timestamp"]): NonNullable<Event["timestamp"]> {
  const ts = { $typeName: "google.protobuf.Timestamp" as const, seconds: previous?.seconds ?? 0n, nanos: previous?.nanos ?? 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    const wireType = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expect(wireType, WireType.Varint, "timestamp.seconds");
        ts.seconds = r.int64();
        break;
      case 2:
        expect(wireType, WireType.Varint, "timestamp.nanos");
        ts.nanos = Number(BigInt.asIntN(32, r.int64()));
        break;
      default:
        r.skip(wireType);
    }
  }
  return ts;
}

/** Objects without a prototype, so a key named "__proto__" is an ordinary key. */
function newObject(): JsonObject {
  return Object.create(null) as JsonObject;
}

function checkDepth(depth: number): void {
  if (depth > maxPayloadDepth) throw new PayloadRefusal(`is nested deeper than ${maxPayloadDepth} levels`);
}

/**
 * Calls `each` with a reader over every occurrence of field 1, length
 * delimited: the one field of both Struct (its map entries) and ListValue.
 * Other fields are skipped, as protobuf decoders skip unknown fields.
 */
function eachField1(r: Reader, name: string, each: (item: Reader) => void): void {
  while (r.pos < r.end) {
    const tag = r.varint();
    const wireType = tag & 7;
    if (tag >>> 3 !== 1) {
      r.skip(wireType);
      continue;
    }
    expect(wireType, WireType.LengthDelimited, name);
    const [start, end] = r.span();
    each(new Reader(r.buf, start, end));
  }
}

/** depth counts JSON containers (Struct and ListValue), as validation does: the payload itself is 1. */
function decodeStruct(r: Reader, into: JsonObject, depth: number): JsonObject {
  checkDepth(depth);
  eachField1(r, "Struct.fields", (entry) => {
    let key = "";
    let value: JsonValue = null;
    while (entry.pos < entry.end) {
      const entryTag = entry.varint();
      const entryWire = entryTag & 7;
      if (entryTag >>> 3 === 1) {
        expect(entryWire, WireType.LengthDelimited, "Struct key");
        key = entry.string();
      } else if (entryTag >>> 3 === 2) {
        expect(entryWire, WireType.LengthDelimited, "Struct value");
        const [vs, ve] = entry.span();
        value = decodeValue(new Reader(entry.buf, vs, ve), depth);
      } else {
        entry.skip(entryWire);
      }
    }
    if (key === "__proto__") throw new PayloadRefusal('has the key "__proto__", which protobuf JSON decoding would drop silently; rename it');
    into[key] = value;
  });
  return into;
}

/** A google.protobuf.Value; an unset kind reads as null, as protobuf-es reads it. */
function decodeValue(r: Reader, depth: number): JsonValue {
  let value: JsonValue = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const wireType = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expect(wireType, WireType.Varint, "null_value");
        r.varint();
        value = null;
        break;
      case 2:
        expect(wireType, WireType.Bit64, "number_value");
        value = r.double();
        break;
      case 3:
        expect(wireType, WireType.LengthDelimited, "string_value");
        value = r.string();
        break;
      case 4:
        expect(wireType, WireType.Varint, "bool_value");
        value = r.varint() !== 0;
        break;
      case 5: {
        expect(wireType, WireType.LengthDelimited, "struct_value");
        const [start, end] = r.span();
        value = decodeStruct(new Reader(r.buf, start, end), newObject(), depth + 1);
        break;
      }
      case 6: {
        expect(wireType, WireType.LengthDelimited, "list_value");
        const [start, end] = r.span();
        value = decodeList(new Reader(r.buf, start, end), depth + 1);
        break;
      }
      default:
        r.skip(wireType);
    }
  }
  return value;
}

function decodeList(r: Reader, depth: number): JsonValue[] {
  checkDepth(depth);
  const values: JsonValue[] = [];
  eachField1(r, "ListValue.values", (item) => values.push(decodeValue(item, depth)));
  return values;
}

/**
 * Decodes the events of a batch that arrived as raw bytes. An event that is
 * not valid protobuf becomes a violation at its index, and the batch is then
 * refused whole by validation like any other invalid batch.
 */
export function decodeWireEvents(raw: readonly Uint8Array[]): { events: (Event | undefined)[]; violations: Violation[] } {
  const violations: Violation[] = [];
  const events = raw.map((bytes, index) => {
    try {
      return decodeEvent(bytes);
    } catch (err) {
      if (err instanceof PayloadRefusal) {
        violations.push({ index, field: "payload", description: err.message });
        return undefined;
      }
      if (!(err instanceof WireError)) throw err;
      violations.push({ index, field: "event", description: `is not a valid aggregator.v1.Event: ${err.message}` });
      return undefined;
    }
  });
  return { events, violations };
}
