import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/codec/canonical-json.js";
import { PayloadRuleError, maxPayloadDepth } from "../../src/codec/payload-rules.js";

/** What canonicalJson refuses a payload with, as validation reports it. */
function refusal(value: JsonObject): string {
  try {
    canonicalJson(value);
  } catch (err) {
    if (err instanceof PayloadRuleError) return err.description;
    throw err;
  }
  throw new Error("expected a broken payload rule");
}

/** An object nested `depth` levels deep ({"a":{"a":...}}), the payload itself being level 1. */
function nested(depth: number, key = "a"): JsonObject {
  let value: JsonObject = {};
  for (let level = 1; level < depth; level++) value = { [key]: value };
  return value;
}

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

describe("canonicalJson", () => {
  it("sorts keys at every level so key order does not matter", () => {
    expect(canonicalJson({ b: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] })).toBe('{"a":[{"c":2,"d":1}],"b":{"x":2,"y":1}}');
  });

  it("sorts keys as strings, integer-like keys too, and leaves the payload as it was", () => {
    fc.assert(
      fc.property(payload, (value) => {
        const before = JSON.stringify(value);
        // fast-check likes to try a key "__proto__"; the rules refuse it (below), whatever else the payload holds.
        if (before.includes('"__proto__":')) expect(refusal(value)).toMatch(/^has the key "__proto__" at payload/);
        else expect(canonicalJson(value)).toBe(referenceCanonical(value));
        expect(JSON.stringify(value)).toBe(before);
      }),
      { numRuns: 2_000 },
    );
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`k${(i * 17) % 40}`, i]));
    expect(canonicalJson(many)).toBe(referenceCanonical(many));
    expect(canonicalJson({ b: 1, 10: 2, 9: 3, a: { 2: 0, 10: 1 } })).toBe('{"10":2,"9":3,"a":{"10":1,"2":0},"b":1}');
  });

  it("refuses what JSON cannot carry and nesting past the limit, wherever the keys would send it", () => {
    expect(refusal({ b: [1, Number.NaN] })).toBe("contains NaN, which JSON cannot represent");
    expect(refusal({ 1: { a: Number.POSITIVE_INFINITY } })).toMatch(/^contains Infinity, which JSON cannot represent/);
    expect(refusal(nested(maxPayloadDepth + 1))).toBe(`is nested deeper than ${maxPayloadDepth} levels`);
    expect(refusal(nested(maxPayloadDepth + 1, "0"))).toBe(`is nested deeper than ${maxPayloadDepth} levels`);
    expect(() => canonicalJson(nested(maxPayloadDepth))).not.toThrow();
  });

  it('refuses a key "__proto__" and unpaired surrogates, naming where they are', () => {
    expect(refusal(JSON.parse('{"z":1,"a":{"__proto__":{"b":1}}}') as JsonObject)).toBe(
      'has the key "__proto__" at payload.a, which protobuf decoding would drop silently; rename it',
    );
    expect(refusal({ a: [1, { b: "x\ud800" }] })).toBe("has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.a[1].b");
    expect(refusal({ "k\udc00": 1 })).toBe("has a key that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload");
    // A surrogate pair is one character, and fine.
    expect(canonicalJson({ emoji: "\ud83d\ude00" })).toBe('{"emoji":"\ud83d\ude00"}');
  });

  it("reports the first broken rule in canonical order, whatever order the keys were written in", () => {
    expect(refusal({ z: Number.NaN, a: "x\ud800" })).toBe("has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.a");
    expect(refusal({ 9: "x\ud800", a: Number.NaN })).toBe("has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.9");
  });

  it("quotes a long or unusual key in a path, and cuts a long path short", () => {
    const long = "k".repeat(200);
    expect(refusal({ [long]: "\ud800" })).toBe(`has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload["${"k".repeat(64)}"… (200 characters)]`);
    expect(refusal({ "a.b": { "line\nbreak": "\ud800" } })).toBe(`has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload["a.b"]["line\\nbreak"]`);
    expect(refusal({ ünï_cöde$1: { "-": "\ud800" } })).toBe(`has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.ünï_cöde$1.-`);
    const deep = { [`${"a".repeat(60)}`]: { [`${"b".repeat(60)}`]: { c: "\ud800" } } };
    expect(refusal(deep)).toBe(`has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.${"a".repeat(60)}.${"b".repeat(51)}…`);
  });
});
