import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { mayHoldLongOrExponentNumber, walkJson, type JsonStep } from "../../src/codec/json-scan.js";

/** What a walk tells, in order: numbers and strings with their paths, and whether the text was JSON. */
function walk(text: string) {
  const told: string[] = [];
  const at = (path: readonly JsonStep[]) => JSON.stringify(path);
  const isJson = walkJson(text, {
    number: (literal, path) => told.push(`number ${literal} at ${at(path)}`),
    string: (all, start, end, path, isKey) => told.push(`${isKey ? "key" : "string"} ${all.slice(start, end)} at ${at(path)}`),
    container: (path, isArray) => told.push(`${isArray ? "array" : "object"} at ${at(path)}`),
  });
  return { isJson, told };
}

const bytes = (text: string) => Buffer.from(text, "utf8");

describe("walkJson", () => {
  it("tells each number with its path of keys and indices, literals as written", () => {
    const { isJson, told } = walk('{"a": [1, -0.50, {"b": 1E+3}], "c": {"d": 12345678901234567890}, "e": -0}');
    expect(isJson).toBe(true);
    expect(told.filter((t) => t.startsWith("number"))).toEqual([
      'number 1 at ["a",0]',
      'number -0.50 at ["a",1]',
      'number 1E+3 at ["a",2,"b"]',
      'number 12345678901234567890 at ["c","d"]',
      // Negative zero is a literal like any other: the rule keeps it (payload-rules.ts).
      'number -0 at ["e"]',
    ]);
  });

  it("ignores what looks like a number inside a string, escaped quotes included", () => {
    const { isJson, told } = walk('{"n\\"1e400": "12345678901234567890 \\" 1e-400", "x": ["\\\\", 2]}');
    expect(isJson).toBe(true);
    expect(told.filter((t) => t.startsWith("number"))).toEqual(['number 2 at ["x",1]']);
  });

  it("decodes escaped keys for the path, and tells a key at the path of its object", () => {
    const { told } = walk('{"a\\u002eb": {"\\n": 5}}');
    expect(told).toEqual([
      "object at []",
      'key "a\\u002eb" at []',
      'object at ["a.b"]',
      'key "\\n" at ["a.b"]',
      'number 5 at ["a.b","\\n"]',
    ]);
  });

  it("counts array indices and leaves containers, empty ones too", () => {
    const { told } = walk('[[], {}, [7, [8]], 9]');
    expect(told.filter((t) => t.startsWith("number"))).toEqual(['number 7 at [2,0]', 'number 8 at [2,1,0]', 'number 9 at [3]']);
  });

  it("walks any depth without recursing", () => {
    const depth = 100_000;
    let deepest = 0;
    const isJson = walkJson(`${"[".repeat(depth)}1${"]".repeat(depth)}`, {
      number: (_literal, path) => (deepest = path.length),
      string: () => undefined,
      container: () => undefined,
    });
    expect(isJson).toBe(true);
    expect(deepest).toBe(depth);
  });

  it("says whether the text is JSON exactly as JSON.parse does", () => {
    const parses = (text: string) => {
      try {
        JSON.parse(text);
        return true;
      } catch {
        return false;
      }
    };
    const broken = [
      "",
      " ",
      "{",
      "[1,]",
      '{"a":1,}',
      '{"a" 1}',
      "01",
      "1.",
      ".5",
      "1e",
      "1e+",
      "-",
      "+1",
      "0x10",
      "NaN",
      "Infinity",
      "tru",
      "nulls",
      '"\\x"',
      '"\\u12g4"',
      '"tab\there"',
      '"open',
      "[1] [2]",
      "{'a': 1}",
      "[1 2]",
      '{"a":1 "b":2}',
      "\u00a01",
      '"\ud800"',
      '{"\udc80": 1}',
    ];
    for (const text of broken) expect(walk(text).isJson, text).toBe(parses(text));
    fc.assert(
      fc.property(fc.json({ maxDepth: 4 }), fc.nat(), fc.string({ maxLength: 2, unit: "binary" }), (json, at, noise) => {
        expect(walk(json).isJson).toBe(true);
        // The same text with a little damage somewhere: both must agree whether it is still JSON.
        const cut = at % (json.length + 1);
        const damaged = json.slice(0, cut) + noise + json.slice(cut + 1);
        expect(walk(damaged).isJson).toBe(parses(damaged));
      }),
      { numRuns: 2_000, seed: 20261207 },
    );
  });
});

describe("mayHoldLongOrExponentNumber", () => {
  it("finds a number with an exponent, in every form, or with more than 15 digits, decimal point or not", () => {
    for (const text of ['{"n":1e5}', '{"n":1E5}', "[1.5e-7]", '{"n": 2E+10 }', "[0e0]", '{"n":1234567890123456}', '{"n":12345678.12345678}', '{"n":0.0000000000000001}']) {
      expect(mayHoldLongOrExponentNumber(bytes(text)), text).toBe(true);
    }
  });

  it("passes bodies whose numbers have at most 15 digits and no exponent, and ids that look like exponents", () => {
    const ids = ['"550e8400-e29b-41d4-a716-446655440000"', '"1e5f"', '"3e-4c"', '"2025-10-24T10:00:00.123456789Z"', '"192.168.100.200"'];
    for (const text of ['{"n":123456789012345}', '{"n":-12345678.1234567}', '{"n":0.5,"m":[1,2,3]}', ...ids.map((id) => `{"id":${id}}`)]) {
      expect(mayHoldLongOrExponentNumber(bytes(text)), text).toBe(false);
    }
  });

  it("never misses a number the full check needs: every literal with an exponent or more than 15 digits", () => {
    const literal = fc
      .tuple(fc.boolean(), fc.stringMatching(/^(0|[1-9][0-9]{0,25})$/), fc.option(fc.stringMatching(/^[0-9]{1,25}$/)), fc.option(fc.stringMatching(/^[eE][+-]?[0-9]{1,4}$/)))
      .map(([negative, whole, fraction, exponent]) => `${negative ? "-" : ""}${whole}${fraction === null ? "" : `.${fraction}`}${exponent ?? ""}`);
    fc.assert(
      fc.property(literal, fc.constantFrom("[", '{"n":', '{"a":"x","n":'), (number, before) => {
        const digits = number.replace(/[^0-9]/g, "").length;
        const needsCheck = /[eE]/.test(number) || digits > 15;
        const text = `${before}${number}${before === "[" ? "]" : "}"}`;
        if (needsCheck) expect(mayHoldLongOrExponentNumber(bytes(text)), text).toBe(true);
      }),
      { numRuns: 3_000, seed: 20261207 },
    );
  });
});
