/**
 * Every decoder yields the same canonical event, and the same refusal, for
 * the same input: the REST decoder (JSON text), the binary decoder (protobuf
 * bytes, the gRPC, gRPC-Web and Connect binary fast path) and protobuf-es's
 * JSON decoding (Connect JSON). The canonical payload text is dedup identity,
 * so a difference here would let one logical event be stored twice, or be
 * reported CONFLICT against itself, depending on the protocol it came by.
 *
 * Inputs are built as a tree first and then written both as JSON text and as
 * protobuf bytes by hand, so that they can hold what the JavaScript object
 * model or protobuf-es's encoder would not keep (a "__proto__" key, 1e400, a
 * number literal a double cannot hold, bytes that are not UTF-8).
 *
 * Two things only JSON text can say, and binary protobuf cannot, are compared
 * between the JSON protocols alone: a number literal a double cannot hold
 * (binary carries the double) and bytes that are not UTF-8 in the JSON text
 * itself. A byte that is not UTF-8 inside a binary string is compared with
 * the same text spelled in JSON as the lone surrogate it reads as
 * (codec/utf8-text.ts): "\udcff" for the byte ff.
 */
import { fromBinary, fromJson, type JsonValue } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PublishRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { decodeJsonBytes } from "../../src/codec/json-events.js";
import { checkJsonText } from "../../src/codec/json-text-check.js";
import type { DecodedBatch } from "../../src/codec/decoded-batch.js";
import { decodeMessageEvents } from "../../src/codec/message-events.js";
import { maxPayloadDepth } from "../../src/codec/payload-rules.js";
import { validateBatch } from "../../src/codec/validate.js";
import { ValidationError, type Violation } from "../../src/codec/violations.js";
import { decodeWireEvents } from "../../src/codec/wire-events.js";
import type { EventRecord } from "../../src/store/types.js";

const limits = { maxBatch: 10, maxPayloadBytes: 4096 };

// ---------------------------------------------------------------------------
// Inputs: a JSON tree that keeps key order, repeated nothing, and numbers JSON text can only write as overflow.
// ---------------------------------------------------------------------------

type Tree = null | boolean | number | string | Tree[] | { members: [string, Tree][] } | NumberLiteral;

/** A number as JSON text spells it; binary protobuf carries the double it parses to. */
interface NumberLiteral {
  literal: string;
}

const isLiteral = (value: Tree): value is NumberLiteral => typeof value === "object" && value !== null && "literal" in value;

interface Input {
  topic: string;
  eventId: string;
  source: string;
  /** Seconds since the epoch, within google.protobuf.Timestamp's range; undefined for none. */
  timestamp: { seconds: number; nanos: number } | undefined;
  payload: { members: [string, Tree][] } | undefined;
}

/**
 * A byte that is not UTF-8 wherever it stands (a continuation byte alone, C0,
 * C1, F5 to FF: none can join the bytes around it into a character), as the
 * lone surrogate U+DC00 + byte the decoders read it as.
 */
const strayByte = fc
  .oneof(fc.integer({ min: 0x80, max: 0xbf }), fc.constantFrom(0xc0, 0xc1), fc.integer({ min: 0xf5, max: 0xff }))
  .map((byte) => String.fromCharCode(0xdc00 + byte));

/** Text holding a byte that is not UTF-8. */
const brokenText = fc
  .tuple(fc.string({ maxLength: 3, unit: "grapheme" }), strayByte, fc.string({ maxLength: 3, unit: "grapheme" }))
  .map(([before, stray, after]) => before + stray + after);

/** Keys that exercise V8's property order (integer-like keys), sorting by code unit, and the rules ("__proto__", invalid text). */
const key = fc.oneof(
  { weight: 12, arbitrary: fc.string({ maxLength: 6, unit: "grapheme" }) },
  { weight: 6, arbitrary: fc.constantFrom("0", "1", "10", "01", "9", "-1", "a", "B", "é", "日本", "", "\u{1f600}", "\u{1f080}", "a.b", "new\nline") },
  { weight: 2, arbitrary: fc.constant("__proto__") },
  { weight: 1, arbitrary: brokenText },
);

/** Digits, as a string of min to max of them. */
const digits = (min: number, max: number) => fc.stringMatching(new RegExp(`^[0-9]{${min},${max}}$`));

/** An exact number spelled another way than JavaScript writes it: 1.5 as 1.50 or 15e-1. */
const respelled = fc.tuple(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer({ min: 0, max: 2 })).map(([value, way]) => {
  const [mantissa, exponent] = value.toExponential().split("e") as [string, string];
  const point = mantissa.includes(".") ? mantissa : `${mantissa}.0`;
  if (way === 0) return `${point}0e${Number(exponent)}`;
  if (way === 1) return `${point.replace(".", "")}E${Number(exponent) - (point.length - point.indexOf(".") - 1)}`;
  return `${point}00e${Number(exponent) >= 0 ? "+" : ""}${Number(exponent)}`;
});

/** Number literals a double may or may not hold exactly, in every form JSON allows. */
const literal: fc.Arbitrary<NumberLiteral> = fc
  .oneof(
    fc.bigInt({ min: -(10n ** 25n), max: 10n ** 25n }).map(String),
    fc.tuple(fc.integer({ min: -999, max: 999 }), digits(1, 25)).map(([whole, fraction]) => `${whole}.${fraction}`),
    fc
      .tuple(fc.integer({ min: -99, max: 99 }), digits(0, 18), fc.constantFrom("e", "E", "e+", "e-", "E-"), fc.integer({ min: 0, max: 420 }))
      .map(([whole, fraction, e, exponent]) => `${whole}${fraction === "" ? "" : `.${fraction}`}${e}${exponent}`),
    respelled,
    fc.constantFrom("-0", "-0.0", "0e5", "1.50", "15e-1", "9007199254740992", "9007199254740993", "1e-400", "5e-324", "2.4703282292062328e-324"),
  )
  .map((text) => ({ literal: text }));

const scalar: fc.Arbitrary<Tree> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(null) },
  { weight: 4, arbitrary: fc.boolean() },
  { weight: 4, arbitrary: fc.double({ noNaN: true }) },
  { weight: 4, arbitrary: fc.integer() },
  { weight: 4, arbitrary: fc.string({ maxLength: 8, unit: "grapheme" }) },
  { weight: 1, arbitrary: brokenText },
  { weight: 2, arbitrary: literal },
);

/** Members with distinct keys: a repeated key is kept differently by JSON.parse and by a map, and that is not what this compares. */
const membersOf = (value: fc.Arbitrary<Tree>) => fc.uniqueArray(fc.tuple(key, value), { maxLength: 5, selector: ([k]) => k });

const { tree } = fc.letrec<{ tree: Tree }>((tie) => ({
  tree: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.array(tie("tree"), { maxLength: 4 }),
    membersOf(tie("tree")).map((members) => ({ members })),
  ),
}));

/** Objects nested around the depth limit, where the rule is. */
const deep = fc.integer({ min: maxPayloadDepth - 2, max: maxPayloadDepth + 3 }).map((depth) => {
  let value: Tree = { members: [["leaf", 1]] };
  for (let level = 1; level < depth; level++) value = { members: [[level % 2 === 0 ? "a" : "0", value]] };
  return value as { members: [string, Tree][] };
});

/** A number JSON text can only write as an overflow (1e400), which JSON.parse reads as Infinity. */
const overflow = membersOf(scalar).map((members) => ({ members: [...members, ["big", Number.NEGATIVE_INFINITY] as [string, Tree]] }));

const payload = fc.oneof({ weight: 8, arbitrary: membersOf(tree).map((members) => ({ members })) }, { weight: 1, arbitrary: deep }, { weight: 1, arbitrary: overflow });

const identifier = fc.oneof(
  { weight: 16, arbitrary: fc.string({ minLength: 1, maxLength: 12 }) },
  { weight: 4, arbitrary: fc.constantFrom("", "   ", "tab\there", "nul\u0000", "del\u007f", "x".repeat(256), "ünïcode", "\u{1f600}") },
  { weight: 1, arbitrary: brokenText },
);

const input: fc.Arbitrary<Input> = fc.record({
  topic: identifier,
  eventId: identifier,
  source: identifier,
  timestamp: fc.option(fc.record({ seconds: fc.integer({ min: -62_135_596_800, max: 253_402_300_799 }), nanos: fc.integer({ min: 0, max: 999_999_999 }) }), {
    nil: undefined,
    freq: 10,
  }),
  payload: fc.option(payload, { nil: undefined, freq: 10 }),
});

// ---------------------------------------------------------------------------
// Writing an input as JSON text and as protobuf bytes.
// ---------------------------------------------------------------------------

/** How JSON text writes a byte that is not UTF-8: as the escape of its lone surrogate ("\udcff"), or as the byte itself. */
type StrayBytes = "escaped" | "raw";

/** A JSON string; "raw" leaves each stray byte's lone surrogate unescaped, for jsonBytes to write as the byte. */
function quote(text: string, stray: StrayBytes): string {
  if (stray === "escaped") return JSON.stringify(text);
  const parts = text.split(/((?<![\ud800-\udbff])[\udc80-\udcff])/);
  return `"${parts.map((part, i) => (i % 2 === 1 ? part : JSON.stringify(part).slice(1, -1))).join("")}"`;
}

function jsonText(value: Tree, stray: StrayBytes = "escaped"): string {
  if (typeof value === "number") return Number.isFinite(value) ? JSON.stringify(value) : value > 0 ? "1e400" : "-1e400";
  if (typeof value === "string") return quote(value, stray);
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => jsonText(item, stray)).join(",")}]`;
  if (isLiteral(value)) return value.literal;
  return `{${value.members.map(([k, v]) => `${quote(k, stray)}:${jsonText(v, stray)}`).join(",")}}`;
}

/** Text as bytes: UTF-8, except that a lone surrogate U+DC80–U+DCFF is the byte it stands for (utf8-text.ts reads it back so). */
function utf8(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const char of text) {
    const code = char.codePointAt(0)!;
    parts.push(code >= 0xdc80 && code <= 0xdcff ? Buffer.from([code - 0xdc00]) : Buffer.from(char, "utf8"));
  }
  return Buffer.concat(parts);
}

/** RFC 3339 as protobuf JSON writes it: upper-case T and Z, nine fraction digits. */
function rfc3339(ts: { seconds: number; nanos: number }): string {
  const date = new Date(ts.seconds * 1000).toISOString().slice(0, 19);
  return `${date}.${String(ts.nanos).padStart(9, "0")}Z`;
}

function eventJson(e: Input, stray: StrayBytes = "escaped"): string {
  const fields = [`"topic":${quote(e.topic, stray)}`, `"event_id":${quote(e.eventId, stray)}`, `"source":${quote(e.source, stray)}`];
  if (e.timestamp !== undefined) fields.push(`"timestamp":"${rfc3339(e.timestamp)}"`);
  if (e.payload !== undefined) fields.push(`"payload":${jsonText(e.payload, stray)}`);
  return `{${fields.join(",")}}`;
}

const bytes = (...parts: (number[] | Uint8Array)[]) => Buffer.concat(parts.map((p) => Buffer.from(p)));

function varint(n: bigint): number[] {
  let v = BigInt.asUintN(64, n);
  const out: number[] = [];
  while (v > 127n) {
    out.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

const lengthDelimited = (field: number, body: Uint8Array) => bytes(varint(BigInt((field << 3) | 2)), varint(BigInt(body.length)), body);

function valueBytes(value: Tree): Buffer {
  if (value === null) return bytes([0x08, 0x00]);
  if (typeof value === "boolean") return bytes([0x20, value ? 1 : 0]);
  if (typeof value === "number" || isLiteral(value)) {
    const double = Buffer.alloc(8);
    double.writeDoubleLE(typeof value === "number" ? value : Number(value.literal));
    return bytes([0x11], double);
  }
  if (typeof value === "string") return lengthDelimited(3, utf8(value));
  if (Array.isArray(value)) return lengthDelimited(6, Buffer.concat(value.map((item) => lengthDelimited(1, valueBytes(item)))));
  return lengthDelimited(5, structBytes(value));
}

function structBytes(value: { members: [string, Tree][] }): Buffer {
  return Buffer.concat(value.members.map(([k, v]) => lengthDelimited(1, bytes(lengthDelimited(1, utf8(k)), lengthDelimited(2, valueBytes(v))))));
}

function eventBytes(e: Input): Uint8Array {
  const parts = [lengthDelimited(1, utf8(e.topic)), lengthDelimited(2, utf8(e.eventId))];
  if (e.timestamp !== undefined) {
    const ts = bytes([0x08], varint(BigInt(e.timestamp.seconds)), e.timestamp.nanos === 0 ? [] : bytes([0x10], varint(BigInt(e.timestamp.nanos))));
    parts.push(lengthDelimited(3, ts));
  }
  parts.push(lengthDelimited(4, utf8(e.source)));
  if (e.payload !== undefined) parts.push(lengthDelimited(5, structBytes(e.payload)));
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------
// What each decoder, followed by validation, makes of a batch.
// ---------------------------------------------------------------------------

type Outcome = { records: EventRecord[] } | { violations: Violation[] };

function outcome(decode: () => DecodedBatch): Outcome {
  try {
    return { records: validateBatch(decode(), limits).records };
  } catch (err) {
    if (err instanceof ValidationError) return { violations: err.violations };
    throw err;
  }
}

/** REST: the body's bytes, as POST /publish reads them (an array of events). */
const viaRest = (batch: Input[], stray: StrayBytes = "escaped") =>
  outcome(() => decodeJsonBytes(utf8(`[${batch.map((e) => eventJson(e, stray)).join(",")}]`), limits.maxBatch));
const viaBinary = (batch: Input[]) => outcome(() => decodeWireEvents(batch.map(eventBytes), limits.maxBatch));

/**
 * Connect JSON: the message's bytes checked at the RPC edge (rpc/exact-json-body.ts), then decoded by
 * protobuf-es; undefined when protobuf-es refuses the request itself (its own words, before our rules).
 */
function viaProtobufEsJson(batch: Input[], stray: StrayBytes = "escaped"): Outcome | undefined {
  const body = utf8(`{"events":[${batch.map((e) => eventJson(e, stray)).join(",")}]}`);
  try {
    checkJsonText(body, "protobuf");
  } catch (err) {
    if (err instanceof ValidationError) return { violations: err.violations };
    throw err;
  }
  let request;
  try {
    request = fromJson(PublishRequestSchema, JSON.parse(new TextDecoder().decode(body)) as JsonValue);
  } catch {
    return undefined;
  }
  return outcome(() => decodeMessageEvents(request.events));
}

/** The canonical form by its definition: every object's keys sorted by code unit, each number as the double it reads as. */
function referenceCanonical(value: Tree): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(referenceCanonical).join(",")}]`;
  if (isLiteral(value)) return JSON.stringify(Number(value.literal));
  const sorted = [...value.members].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${sorted.map(([k, v]) => `${JSON.stringify(k)}:${referenceCanonical(v)}`).join(",")}}`;
}

function hasProtoKey(value: Tree): boolean {
  if (value === null || typeof value !== "object" || isLiteral(value)) return false;
  if (Array.isArray(value)) return value.some(hasProtoKey);
  return value.members.some(([k, v]) => k === "__proto__" || hasProtoKey(v));
}

/** A literal's decimal value, exactly, as digits times a power of ten. */
function decimal(text: string): { digits: bigint; exponent: number } {
  const [mantissa = "", exponent = "0"] = text.toLowerCase().split("e");
  const [whole = "", fraction = ""] = mantissa.split(".");
  return { digits: BigInt(whole.replace("-", "") + fraction) * (mantissa.startsWith("-") ? -1n : 1n), exponent: Number(exponent) - fraction.length };
}

/** Whether a literal reads back as the value it spells, worked out apart from payload-rules.ts: exact rational arithmetic. */
function readsBackExactly(text: string): boolean {
  const value = Number(text);
  if (!Number.isFinite(value)) return true; // the rule for Infinity's, not this one's
  const [a, b] = [decimal(text), decimal(String(value))];
  const low = Math.min(a.exponent, b.exponent);
  return a.digits * 10n ** BigInt(a.exponent - low) === b.digits * 10n ** BigInt(b.exponent - low);
}

/** The literals of a tree that a double cannot hold. */
function inexactLiterals(value: Tree): string[] {
  if (value === null || typeof value !== "object") return [];
  if (isLiteral(value)) return readsBackExactly(value.literal) ? [] : [value.literal];
  if (Array.isArray(value)) return value.flatMap(inexactLiterals);
  return value.members.flatMap(([, v]) => inexactLiterals(v));
}

const batch = fc.array(input, { minLength: 1, maxLength: 3 });

/** The events whose payload holds a number literal a double cannot hold, by index. */
const withInexactNumbers = (events: Input[]) => events.flatMap((e, i) => (e.payload !== undefined && inexactLiterals(e.payload).length > 0 ? [i] : []));

describe("every decoder", () => {
  it("yields the same canonical events, or the same refusal naming the same fields, for the same input over REST and binary", () => {
    let inexact = 0;
    fc.assert(
      fc.property(batch, (events) => {
        const rest = viaRest(events);
        const refusedNumbers = withInexactNumbers(events);
        if (refusedNumbers.length > 0) {
          // Only JSON text can spell such a literal: REST refuses the request, naming each such payload, and nothing else.
          inexact++;
          expect("violations" in rest && rest.violations.map((v) => [v.index, /^payload[.[]/.test(v.field), v.description.startsWith("number ")])).toEqual(
            refusedNumbers.map((i) => [i, true, true]),
          );
          return;
        }
        expect(viaBinary(events)).toEqual(rest);
        if ("records" in rest) {
          rest.records.forEach((record, i) => expect(record.payload).toBe(referenceCanonical(events[i]!.payload!)));
        }
      }),
      { numRuns: 3_000, seed: 20261207 },
    );
    // Both kinds of input must have come up often, or the property says little about either.
    expect(inexact).toBeGreaterThan(100);
    expect(inexact).toBeLessThan(2_000);
  });

  it("agrees between REST and Connect JSON on bytes that are not UTF-8 in the JSON text itself", () => {
    let refused = 0;
    fc.assert(
      fc.property(batch, (events) => {
        // protobuf-es drops a Struct key "__proto__" while decoding JSON, before our rules can see it (README, known limits).
        fc.pre(!events.some((e) => e.payload !== undefined && hasProtoKey(e.payload)));
        const rest = viaRest(events, "raw");
        expect(viaProtobufEsJson(events, "raw")).toEqual(rest);
        if ("violations" in rest && rest.violations.some((v) => v.description.includes("not valid UTF-8"))) refused++;
      }),
      { numRuns: 1_000, seed: 20261207 },
    );
    expect(refused).toBeGreaterThan(50);
  });

  it("agrees with Connect JSON wherever protobuf-es decodes the request itself", () => {
    let compared = 0;
    fc.assert(
      fc.property(batch, (events) => {
        // protobuf-es drops a Struct key "__proto__" while decoding JSON, before our rules can see it (README, known limits).
        fc.pre(!events.some((e) => e.payload !== undefined && hasProtoKey(e.payload)));
        const viaConnect = viaProtobufEsJson(events);
        if (viaConnect === undefined) return;
        compared++;
        expect(viaConnect).toEqual(viaRest(events));
      }),
      { numRuns: 2_000, seed: 20261207 },
    );
    // Most inputs must have been compared, or the property says little.
    expect(compared).toBeGreaterThan(1_000);
  });

  it("refuses a broken payload rule with the same words over REST and binary", () => {
    const base: Input = { topic: "orders", eventId: "e1", source: "test", timestamp: { seconds: 1_761_300_000, nanos: 0 }, payload: undefined };
    const cases: [Input["payload"], string][] = [
      [{ members: [["a", { members: [["__proto__", 1]] }]] }, 'has the key "__proto__" at payload.a, which protobuf decoding would drop silently; rename it'],
      [{ members: [["n", [1, Number.POSITIVE_INFINITY]]] }, "contains Infinity, which JSON cannot represent (numbers beyond ±1.8e308 overflow to it)"],
      [{ members: [["z", null]] }, ""],
    ];
    const invalid = "that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8)";
    cases.push([{ members: [["a", { members: [["k\udcff", 1]] }]] }, `has a key ${invalid} at payload.a`]);
    cases.push([{ members: [["a b", ["ok", "x\udc80y"]]] }, `has a string ${invalid} at payload["a b"][1]`]);
    for (const [payload, description] of cases) {
      const events = [{ ...base, topic: "", payload }];
      const expected = [{ index: 0, field: "topic", description: "is required (1-255 characters)" }];
      if (description !== "") expected.push({ index: 0, field: "payload", description });
      expect(viaRest(events)).toEqual({ violations: expected });
      expect(viaBinary(events)).toEqual({ violations: expected });
    }
  });

  it("refuses text that is not valid, in each string field, with the same words over every protocol", () => {
    const base: Input = { topic: "orders", eventId: "e1", source: "test", timestamp: { seconds: 1_761_300_000, nanos: 0 }, payload: { members: [] } };
    const invalid = "is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8)";
    for (const field of ["topic", "eventId", "source"] as const) {
      const events = [{ ...base, [field]: "x\udcff" }];
      const expected = { violations: [{ index: 0, field: field === "eventId" ? "event_id" : field, description: invalid }] };
      // Binary: the byte ff; REST: the escape "\udcff" (validation's words), or the byte ff (the text check's words).
      expect(viaBinary(events)).toEqual(expected);
      expect(viaRest(events)).toEqual(expected);
      expect(viaRest(events, "raw")).toEqual(expected);
      expect(viaProtobufEsJson(events, "raw")).toEqual(expected);
      // Connect JSON with the escape: protobuf-es refuses the request itself, before our rules, in its own words.
      expect(viaProtobufEsJson(events)).toBeUndefined();
    }
  });

  it("leaves no protobuf decoder that turns bytes that are not UTF-8 into U+FFFD: protobuf-es refuses them too", () => {
    // Publish never decodes events by reflection (the binary fast path does), but Events requests do.
    const badTopic = Uint8Array.from([0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]);
    expect(() => fromBinary(PublishRequestSchema, badTopic)).toThrow(/not valid for encoding utf-8/);
  });
});
