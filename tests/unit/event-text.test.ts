import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, textToRfc3339, textToTimestamp, timestampToText } from "../../src/event-text.js";

/** The canonical form by its definition: every object's keys sorted as strings, nothing else changed. */
function referenceCanonical(value: JsonValue): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(",")}]`;
  const members = Object.keys(value)
    .sort()
    .map((key) => `${JSON.stringify(key)}:${referenceCanonical(value[key]!)}`);
  return `{${members.join(",")}}`;
}

/** Keys that exercise V8's property order: integer-like ones come first whatever the insertion order. */
const key = fc.oneof(fc.string({ maxLength: 4 }), fc.constantFrom("0", "1", "9", "10", "01", "4294967295", "-1", "1.5", "a", "B", "_"));
const payload = fc.dictionary(key, fc.jsonValue({ maxDepth: 4 }), { maxKeys: 8 }).chain((top) =>
  fc.dictionary(key, fc.constant(top), { maxKeys: 3 }).map((outer) => ({ ...outer, ...top }) as JsonObject),
);

describe("timestamp text", () => {
  it("round-trips through the fixed-width store form, which sorts as time does", () => {
    const cases = [
      { seconds: -62_135_596_800n, nanos: 0 },
      { seconds: 0n, nanos: 1 },
      { seconds: 1_761_300_000n, nanos: 123_000_000 },
      { seconds: 253_402_300_799n, nanos: 999_999_999 },
    ];
    const texts = cases.map((ts) => timestampToText(ts as never));
    expect([...texts].sort()).toEqual(texts);
    for (const [i, text] of texts.entries()) expect(textToTimestamp(text)).toMatchObject(cases[i]!);
    expect(texts[0]).toBe("0001-01-01T00:00:00.000000000Z");
    expect(texts[3]).toBe("9999-12-31T23:59:59.999999999Z");
    expect(textToRfc3339(texts[2]!)).toBe("2025-10-24T10:00:00.123Z");
    expect(textToRfc3339("2025-10-24T10:00:00.000000000Z")).toBe("2025-10-24T10:00:00Z");
  });

  it("formats every second of years 0001 to 9999 as Date does", () => {
    fc.assert(
      fc.property(fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }), fc.integer({ min: 0, max: 999_999_999 }), (seconds, nanos) => {
        const text = timestampToText({ seconds: BigInt(seconds), nanos } as never);
        expect(text).toBe(`${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`);
      }),
      { numRuns: 2_000 },
    );
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every level so key order does not matter", () => {
    expect(canonicalJson({ b: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] }, 10)).toBe('{"a":[{"c":2,"d":1}],"b":{"x":2,"y":1}}');
  });

  it("sorts keys as strings, integer-like keys too, and leaves the payload as it was", () => {
    fc.assert(
      fc.property(payload, (value) => {
        const before = JSON.stringify(value);
        expect(canonicalJson(value, 10)).toBe(referenceCanonical(value));
        expect(JSON.stringify(value)).toBe(before);
      }),
      { numRuns: 2_000 },
    );
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 17) % 40}`, i]));
    expect(canonicalJson(many, 10)).toBe(referenceCanonical(many));
    expect(canonicalJson({ b: 1, 10: 2, 9: 3, a: { 2: 0, 10: 1 } }, 10)).toBe('{"10":2,"9":3,"a":{"10":1,"2":0},"b":1}');
    expect(canonicalJson(JSON.parse('{"z":1,"__proto__":{"b":1,"a":2}}') as JsonObject, 10)).toBe('{"__proto__":{"a":2,"b":1},"z":1}');
  });

  it("refuses what JSON cannot carry and nesting past the limit, wherever the keys would send it", () => {
    expect(() => canonicalJson({ b: [1, Number.NaN] }, 10)).toThrow("contains NaN");
    expect(() => canonicalJson({ 1: { a: Number.POSITIVE_INFINITY } }, 10)).toThrow("contains Infinity");
    expect(() => canonicalJson({ a: { b: { c: {} } } }, 3)).toThrow("nested deeper than 3 levels");
    expect(() => canonicalJson({ 0: { b: { c: {} } } }, 3)).toThrow("nested deeper than 3 levels");
    expect(canonicalJson({ a: { b: { c: 1 } } }, 3)).toBe('{"a":{"b":{"c":1}}}');
  });
});
