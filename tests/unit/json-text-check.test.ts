import { describe, expect, it } from "vitest";
import { decodeJsonBytes } from "../../src/codec/json-events.js";
import { checkJsonText, type EventsLayout } from "../../src/codec/json-text-check.js";
import { inexactNumberDescription } from "../../src/codec/payload-rules.js";
import { ValidationError, violationPath, type Violation } from "../../src/codec/violations.js";

const invalidText = "is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8)";
const invalidInPayload = (what: "string" | "key", at: string) => `has a ${what} that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at ${at}`;

/** JSON text as bytes, each "\xNN" in it the raw byte NN (so text can hold bytes that are not UTF-8). */
function body(text: string): Buffer {
  const parts = text.split(/\\x([0-9a-f]{2})/);
  return Buffer.concat(parts.map((part, i) => (i % 2 === 1 ? Buffer.from([parseInt(part, 16)]) : Buffer.from(part, "utf8"))));
}

/** The violations a check throws, as "path: description"; [] when it passes. */
function refusals(text: string, layout: EventsLayout = "rest", message?: number): string[] {
  try {
    checkJsonText(body(text), layout, message);
    return [];
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.violations.map((v: Violation) => `${violationPath(v)}: ${v.description}`);
  }
}

describe("inexactNumberDescription", () => {
  it("refuses a literal whose value differs from the one it reads back as, saying which", () => {
    expect(inexactNumberDescription("12345678901234567890")).toBe(
      "number 12345678901234567890 cannot be stored exactly (it would read back as 12345678901234567000); send it as a string",
    );
    const readBack: [string, string][] = [
      ["9007199254740993", "9007199254740992"],
      ["-9007199254740993", "-9007199254740992"],
      ["1e-400", "0"],
      ["-1e-400", "0"],
      ["1.00000000000000001", "1"],
      ["0.1000000000000000055511151231257827", "0.1"],
      ["123456789012345678901234567890e-10", "12345678901234567000"],
      ["2.4703282292062328e-324", "5e-324"],
      ["1.2345678901234567e-320", "1.2347e-320"],
    ];
    for (const [literal, value] of readBack) expect(inexactNumberDescription(literal), literal).toContain(`(it would read back as ${value})`);
  });

  it("keeps a literal whose value reads back unchanged, however it is spelled", () => {
    const kept = ["9007199254740992", "0.1", "1.0", "1e3", "1.50", "1.5e0", "15e-1", "0.15E+1", "100000000000000000000", "1e21", "5e-324", "1.7976931348623157e308", "0", "0.0", "0e400"];
    for (const literal of kept) expect(inexactNumberDescription(literal), literal).toBeUndefined();
  });

  it('keeps negative zero: its value is zero, and canonical JSON writes it "0" over every protocol', () => {
    for (const literal of ["-0", "-0.0", "-0e10"]) expect(inexactNumberDescription(literal)).toBeUndefined();
  });

  it("leaves a literal beyond the range of doubles to the rule for Infinity", () => {
    expect(inexactNumberDescription("1e400")).toBeUndefined();
    expect(inexactNumberDescription(`-${"9".repeat(400)}`)).toBeUndefined();
  });

  it("quotes at most 64 characters of a long literal", () => {
    expect(inexactNumberDescription(`0.${"1".repeat(98)}`)).toBe(
      `number 0.${"1".repeat(62)}… (100 characters) cannot be stored exactly (it would read back as 0.1111111111111111); send it as a string`,
    );
  });
});

describe("checkJsonText", () => {
  const number = (n: string) => `number ${n} cannot be stored exactly (it would read back as ${Number(n)}); send it as a string`;

  it("names an inexact number in a payload by its path, in each of the REST body's shapes", () => {
    expect(refusals('{"topic":"t","payload":{"a":{"n":9007199254740993}}}')).toEqual([`events[0].payload.a.n: ${number("9007199254740993")}`]);
    expect(refusals('[{"payload":{}},{"payload":{"a":[1, 1e-400]}}]')).toEqual(["events[1].payload.a[1]: number 1e-400 cannot be stored exactly (it would read back as 0); send it as a string"]);
    expect(refusals('{"events":[{"payload":{"x y":{"n":9007199254740993}}}]}')).toEqual([`events[0].payload["x y"].n: ${number("9007199254740993")}`]);
  });

  it("reads protobuf JSON's one shape, and names the message of a stream", () => {
    expect(refusals('{"events":[{"payload":{"n":9007199254740993}}]}', "protobuf")).toEqual([`events[0].payload.n: ${number("9007199254740993")}`]);
    expect(refusals('{"events":[{},{"payload":{"n":9007199254740993}}]}', "protobuf", 3)).toEqual([`messages[3].events[1].payload.n: ${number("9007199254740993")}`]);
    // Not where protobuf JSON has events: protobuf-es refuses or ignores it, nothing is stored.
    expect(refusals('[{"payload":{"n":9007199254740993}}]', "protobuf")).toEqual([]);
    expect(refusals('{"payload":{"n":9007199254740993}}', "protobuf")).toEqual([]);
  });

  it("looks only at numbers a payload stores: not a number where a string belongs, nor one in a member nobody reads", () => {
    expect(refusals('{"events":[{"topic":9007199254740993,"extra":1e-400,"payload":1e-400}],"payload":{"n":1e-400}}')).toEqual([]);
  });

  it("reports the first inexact number of each payload, and every payload that has one", () => {
    expect(refusals('[{"payload":{"a":1e-400,"b":9007199254740993}},{"payload":{"c":[9007199254740993]}}]')).toEqual([
      "events[0].payload.a: number 1e-400 cannot be stored exactly (it would read back as 0); send it as a string",
      `events[1].payload.c[0]: ${number("9007199254740993")}`,
    ]);
  });

  it("names the field or payload path of bytes that are not UTF-8, in the words of the text rule", () => {
    expect(refusals('{"topic":"t\\xff","event_id":"e\\xc3(","source":"s","timestamp":"\\xed\\xa0\\x80","payload":{"a":{"k\\xc0":"v"}}}')).toEqual([
      `events[0].topic: ${invalidText}`,
      `events[0].event_id: ${invalidText}`,
      `events[0].timestamp: ${invalidText}`,
      `events[0].payload: ${invalidInPayload("key", "payload.a")}`,
    ]);
    expect(refusals('[{"payload":{"list":["ok","\\xfe"]}}]')).toEqual([`events[0].payload: ${invalidInPayload("string", "payload.list[1]")}`]);
    // A member nobody reads is still part of the body: named as the event's.
    expect(refusals('{"events":[{"eventId":"\\xff","extra":"\\xff"}]}', "protobuf")).toEqual([`events[0].event_id: ${invalidText}`, `events[0].event: ${invalidText}`]);
  });

  it("refuses the body when bytes that are not UTF-8 are outside every event, or outside any string", () => {
    expect(refusals('{"events":[],"note":"\\xff"}', "protobuf")).toEqual([`body: ${invalidText}`]);
    expect(refusals('{"events":[{"topic":"t"}]\\xff}', "protobuf")).toEqual([`body: ${invalidText}`]);
    expect(refusals('"\\xff"')).toEqual([`body: ${invalidText}`]);
  });

  it("leaves a lone surrogate spelled as an escape to the rules that run after parsing (validation, the payload rules)", () => {
    expect(refusals('{"topic":"\\ud800","payload":{"k":"\\udc80"}}')).toEqual([]);
  });

  it("leaves text that is not JSON to the parser, whatever numbers it holds", () => {
    expect(refusals('{"payload":{"n":9007199254740993}')).toEqual([]);
  });

  it("reports bad bytes and inexact numbers together", () => {
    expect(refusals('[{"topic":"\\xff","payload":{"n":9007199254740993}}]')).toEqual([`events[0].topic: ${invalidText}`, `events[0].payload.n: ${number("9007199254740993")}`]);
  });
});

describe("decodeJsonBytes", () => {
  it("checks the text before parsing it, and throws JSON.parse's SyntaxError for text that is not JSON", () => {
    expect(() => decodeJsonBytes(body('{"payload":{"n":9007199254740993}}'), 10)).toThrow(ValidationError);
    expect(() => decodeJsonBytes(body('{"payload":'), 10)).toThrow(SyntaxError);
    const batch = decodeJsonBytes(body('{"topic":"t","payload":{"n":15e-1,"big":9007199254740992}}'), 10);
    expect(batch.events[0]?.payload).toEqual({ json: '{"big":9007199254740992,"n":1.5}' });
  });
});
