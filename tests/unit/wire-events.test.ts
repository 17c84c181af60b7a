import { create, fromBinary, toBinary, type JsonObject } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { CanonicalPayload, canonicalJson } from "../../src/codec/canonical-json.js";
import { RefusedPayload } from "../../src/codec/decoded-batch.js";
import { decodeWireEvents } from "../../src/codec/wire-events.js";

/** ASCII and beyond: the decoder reads ASCII strings on a path of their own. */
const text = (maxLength?: number) => fc.oneof(fc.string({ maxLength }), fc.string({ maxLength, unit: "grapheme" }));

/** JSON objects as a Struct can carry them: finite numbers only, no "__proto__" key (protobuf-es drops it; tests/unit/decoders.test.ts covers the refusal). */
const payload = fc.dictionary(
  text().filter((k) => k !== "__proto__"),
  fc.jsonValue({ maxDepth: 4, stringUnit: "grapheme" }).map((v) => JSON.parse(JSON.stringify(v).replace(/"__proto__"/g, '"proto"')) as unknown),
  { maxKeys: 6 },
) as fc.Arbitrary<JsonObject>;

const event = fc.record({
  topic: text(40),
  eventId: text(40),
  source: text(40),
  timestamp: fc.option(fc.record({ seconds: fc.bigInt({ min: -62_135_596_800n, max: 253_402_300_799n }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }), { nil: undefined }),
  payload: fc.option(payload, { nil: undefined }),
});

describe("decodeWireEvents", () => {
  it("reads every Event exactly as protobuf-es does, the payload as its canonical JSON", () => {
    fc.assert(
      fc.property(event, (init) => {
        const bytes = toBinary(EventSchema, create(EventSchema, init));
        const reference = fromBinary(EventSchema, bytes);
        const { events, violations } = decodeWireEvents([bytes], 10);
        expect(violations).toEqual([]);
        const decoded = events[0]!;
        expect(decoded.topic).toBe(reference.topic);
        expect(decoded.eventId).toBe(reference.eventId);
        expect(decoded.source).toBe(reference.source);
        expect(decoded.timestamp?.seconds).toBe(reference.timestamp?.seconds);
        expect(decoded.timestamp?.nanos).toBe(reference.timestamp?.nanos);
        expect(decoded.payload === undefined).toBe(reference.payload === undefined);
        if (reference.payload) expect(decoded.payload).toEqual(new CanonicalPayload(canonicalJson(reference.payload)));
      }),
      { numRuns: 500, seed: 20261121 },
    );
  });

  it("names the index of an event that is not valid protobuf", () => {
    const good = toBinary(EventSchema, create(EventSchema, { topic: "t" }));
    const truncated = good.subarray(0, good.length - 1);
    const { events, violations } = decodeWireEvents([good, truncated], 10);
    expect(events[0]?.topic).toBe("t");
    expect(violations.map((v) => v.index)).toEqual([1]);
  });

  it("keeps bytes that are not UTF-8 visible as lone surrogates, never U+FFFD, so the text rule refuses the field", () => {
    // topic "(" after a lead byte without its continuation; event_id an encoded surrogate (ED A0 80).
    const bytes = Uint8Array.from([0x0a, 0x02, 0xc3, 0x28, 0x12, 0x04, 0x69, 0xed, 0xa0, 0x80]);
    const { events, violations } = decodeWireEvents([bytes], 10);
    expect(violations).toEqual([]);
    expect(events[0]?.topic).toBe("\udcc3(");
    expect(events[0]?.eventId).toBe("i\udced\udca0\udc80");
  });

  it("refuses hostile nesting without exhausting the stack, keeping the event's other fields", () => {
    let value = Uint8Array.from([0x08, 0x00]); // Value{null_value}
    let struct = new Uint8Array(0);
    for (let i = 0; i < 500; i++) {
      const entry = Uint8Array.from([0x12, ...varint(value.length), ...value]); // MapEntry{value}
      struct = Uint8Array.from([0x0a, ...varint(entry.length), ...entry]); // Struct{fields}
      value = Uint8Array.from([0x2a, ...varint(struct.length), ...struct]); // Value{struct_value}
    }
    const topic = Uint8Array.from([0x0a, 0x01, 0x74]); // Event.topic "t"
    const { events, violations } = decodeWireEvents([Uint8Array.from([...topic, 0x2a, ...varint(struct.length), ...struct])], 10); // Event.payload
    expect(violations).toEqual([]);
    expect(events[0]!.topic).toBe("t");
    expect(events[0]!.payload).toEqual(new RefusedPayload("is nested deeper than 32 levels"));
  });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
