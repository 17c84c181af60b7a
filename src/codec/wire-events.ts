import { Buffer, isUtf8 } from "node:buffer";
import { CanonicalPayload, objectJson } from "./canonical-json.js";
import { RefusedPayload, type DecodedBatch, type DecodedEvent } from "./decoded-batch.js";
import { PayloadRuleError, checkDepth, checkKey, checkLeaf, checkNumber, elementStep, memberStep, withinStep } from "./payload-rules.js";
import { decodeKeepingFaults } from "./utf8-text.js";
import { checkBatchSize } from "./validate.js";
import type { Violation } from "./violations.js";

/**
 * A decoder for aggregator.v1.Event in protobuf binary, for the publish hot
 * path. protobuf-es decodes by reflection and builds a message object for
 * every Struct, Value and map entry: profiled, that was the largest cost of
 * the server's main thread. This reads the wire format of the five Event
 * fields straight into plain values, and the payload (Struct/Value/ListValue)
 * straight into its canonical JSON text (canonical-json.ts), checking the
 * payload rules (payload-rules.ts) on the way, with the same result as
 * fromBinary(EventSchema) and canonicalJson. Bytes that are not UTF-8 are
 * kept visible (utf8-text.ts) rather than replaced, so validation and the
 * payload rules refuse them in the field or key they are in, in the words
 * they use for a lone surrogate sent in JSON (text-rules.ts).
 *
 * Numbers arrive as doubles, so the rule that a JSON number literal must be
 * stored exactly (payload-rules.ts) holds here by construction.
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

class Reader {
  pos: number;
  /** Whether a string read so far held bytes that are not UTF-8; such text is never valid (text-rules.ts). */
  sawInvalidText = false;
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
    const buf = this.buf;
    // Ids, topics and payload keys are mostly ASCII, which needs no UTF-8 validation or decoding.
    for (let i = start; i < end; i++) {
      if (buf[i]! >= 0x80) {
        const bytes = buf.subarray(start, end);
        if (isUtf8(bytes)) return buf.toString("utf8", start, end);
        this.sawInvalidText = true;
        return decodeKeepingFaults(bytes);
      }
    }
    return buf.toString("latin1", start, end);
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

/** Decodes one Event from its bytes; throws WireError when they are not one. */
function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const r = new Reader(buf, 0, buf.length);
  const event: DecodedEvent = { topic: "", eventId: "", timestamp: undefined, source: "", payload: undefined };
  let payloadMembers: Map<string, string> | undefined;
  let refused: PayloadRuleError | undefined;
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
        try {
          payloadMembers = structMembers(new Reader(buf, start, end), payloadMembers ?? new Map(), 1);
        } catch (err) {
          if (!(err instanceof PayloadRuleError)) throw err;
          refused ??= err;
        }
        break;
      }
      default:
        r.skip(wireType);
    }
  }
  if (refused !== undefined) event.payload = new RefusedPayload(refused.description);
  else if (payloadMembers !== undefined) event.payload = new CanonicalPayload(objectJson(payloadMembers));
  return event;
}

function decodeTimestamp(r: Reader, previous: DecodedEvent["timestamp"]): NonNullable<DecodedEvent["timestamp"]> {
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

/**
 * Calls `each` with a reader over every occurrence of field 1, length
 * delimited: the one field of both Struct (its map entries) and ListValue.
 * Other fields are skipped, as protobuf decoders skip unknown fields.
 */
function eachField1(r: Reader, name: string, each: (item: Reader, index: number) => void): void {
  let index = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    const wireType = tag & 7;
    if (tag >>> 3 !== 1) {
      r.skip(wireType);
      continue;
    }
    expect(wireType, WireType.LengthDelimited, name);
    const [start, end] = r.span();
    each(new Reader(r.buf, start, end), index++);
  }
}

/**
 * The members of a Struct as key and canonical JSON text of the value, added
 * to `into`. depth counts JSON containers (Struct and ListValue), as
 * validation does: the payload itself is 1.
 */
function structMembers(r: Reader, into: Map<string, string>, depth: number): Map<string, string> {
  checkDepth(depth);
  // The rules are checked in canonical order, as canonical-json.ts checks them: a broken one is
  // kept only if its key sorts before every other broken one's.
  let first: { key: string; problem: PayloadRuleError } | undefined;
  eachField1(r, "Struct.fields", (entry) => {
    let key = "";
    let value: [number, number] | undefined;
    while (entry.pos < entry.end) {
      const entryTag = entry.varint();
      const entryWire = entryTag & 7;
      if (entryTag >>> 3 === 1) {
        expect(entryWire, WireType.LengthDelimited, "Struct key");
        key = entry.string();
      } else if (entryTag >>> 3 === 2) {
        expect(entryWire, WireType.LengthDelimited, "Struct value");
        value = entry.span();
      } else {
        entry.skip(entryWire);
      }
    }
    try {
      // Reader.string() has seen whether the key's bytes were UTF-8.
      checkKey(key, !entry.sawInvalidText);
      into.set(key, value === undefined ? "null" : memberJson(new Reader(entry.buf, value[0], value[1]), key, depth));
    } catch (err) {
      if (!(err instanceof PayloadRuleError)) throw err;
      if (first === undefined || key < first.key) first = { key, problem: err };
    }
  });
  if (first !== undefined) throw first.problem;
  return into;
}

/** A member's value as JSON text; a broken rule inside it learns the member's key for its path. */
function memberJson(r: Reader, key: string, depth: number): string {
  try {
    return valueJson(r, depth);
  } catch (err) {
    throw withinStep(err, memberStep(key));
  }
}

/** The JSON text of a google.protobuf.Value; an unset kind reads as null, as protobuf-es reads it. */
function valueJson(r: Reader, depth: number): string {
  let value = "null";
  while (r.pos < r.end) {
    const tag = r.varint();
    const wireType = tag & 7;
    switch (tag >>> 3) {
      case 1:
        expect(wireType, WireType.Varint, "null_value");
        r.varint();
        value = "null";
        break;
      case 2: {
        expect(wireType, WireType.Bit64, "number_value");
        const number = r.double();
        checkNumber(number);
        value = JSON.stringify(number);
        break;
      }
      case 3: {
        expect(wireType, WireType.LengthDelimited, "string_value");
        const text = r.string();
        if (r.sawInvalidText) checkLeaf(text);
        value = JSON.stringify(text);
        break;
      }
      case 4:
        expect(wireType, WireType.Varint, "bool_value");
        value = r.varint() !== 0 ? "true" : "false";
        break;
      case 5: {
        expect(wireType, WireType.LengthDelimited, "struct_value");
        const [start, end] = r.span();
        value = objectJson(structMembers(new Reader(r.buf, start, end), new Map(), depth + 1));
        break;
      }
      case 6: {
        expect(wireType, WireType.LengthDelimited, "list_value");
        const [start, end] = r.span();
        value = listJson(new Reader(r.buf, start, end), depth + 1);
        break;
      }
      default:
        r.skip(wireType);
    }
  }
  return value;
}

function listJson(r: Reader, depth: number): string {
  checkDepth(depth);
  const values: string[] = [];
  eachField1(r, "ListValue.values", (item, index) => {
    try {
      values.push(valueJson(item, depth));
    } catch (err) {
      throw withinStep(err, elementStep(index));
    }
  });
  return `[${values.join(",")}]`;
}

/**
 * Decodes the events of a batch that arrived as raw bytes, refusing an
 * oversized batch before decoding any. An event that is not valid protobuf
 * becomes a violation at its index, and the batch is then refused whole by
 * validation like any other invalid batch.
 */
export function decodeWireEvents(raw: readonly Uint8Array[], maxBatch: number): DecodedBatch {
  checkBatchSize(raw.length, maxBatch);
  const violations: Violation[] = [];
  const events = raw.map((bytes, index) => {
    try {
      return decodeEvent(bytes);
    } catch (err) {
      if (!(err instanceof WireError)) throw err;
      violations.push({ index, field: "event", description: `is not a valid aggregator.v1.Event: ${err.message}` });
      return undefined;
    }
  });
  return { events, violations };
}
