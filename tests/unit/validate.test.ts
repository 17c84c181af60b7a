import { fromJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ValidationError } from "../../src/errors.js";
import { parseJsonTimestamp, parseRfc3339, validateBatch } from "../../src/validate.js";
import { makeEvent } from "../support/events.js";

const limits = { maxBatch: 10, maxPayloadBytes: 100 };

function violationsOf(run: () => unknown) {
  try {
    run();
  } catch (err) {
    if (err instanceof ValidationError) return err.violations;
    throw err;
  }
  throw new Error("expected a ValidationError");
}

describe("validateBatch", () => {
  it("converts valid events to store form with a fixed-width timestamp and canonical payload", () => {
    const { records, bytes } = validateBatch([makeEvent({ eventId: "e1", payload: { b: 1, a: [true, null, "x"] } })], limits);
    expect(records[0]).toEqual({
      topic: "orders",
      eventId: "e1",
      ts: "2025-10-24T10:00:00.000000000Z",
      source: "test",
      payload: '{"a":[true,null,"x"],"b":1}',
    });
    expect(bytes).toBeGreaterThan(0);
  });

  it("names each bad index and field", () => {
    const violations = violationsOf(() =>
      validateBatch(
        [
          makeEvent(),
          makeEvent({ topic: "", eventId: "x".repeat(256) }),
          makeEvent({ source: "tab\there", timestamp: undefined, payload: undefined }),
          makeEvent({ topic: "   " }),
        ],
        limits,
      ),
    );
    expect(violations.map((v) => `${v.index}.${v.field}`)).toEqual(["1.topic", "1.event_id", "2.source", "2.timestamp", "2.payload", "3.topic"]);
  });

  it("refuses an empty batch and one over the limit", () => {
    expect(violationsOf(() => validateBatch([], limits))[0]!.field).toBe("events");
    expect(violationsOf(() => validateBatch(Array.from({ length: 11 }, () => makeEvent()), limits))[0]!.description).toContain("at most 10");
  });

  it("refuses a payload over the byte limit, a non-finite number and deep nesting", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const violations = violationsOf(() =>
      validateBatch(
        [makeEvent({ payload: { s: "é".repeat(60) } }), makeEvent({ payload: { n: Number.NaN } }), makeEvent({ payload: deep as never })],
        { maxBatch: 10, maxPayloadBytes: 10_000 },
      ).records,
    );
    expect(violations.map((v) => v.index)).toEqual([1, 2]);
    const small = violationsOf(() => validateBatch([makeEvent({ payload: { s: "é".repeat(60) } })], limits));
    expect(small[0]!.description).toMatch(/\d+ bytes/);
  });

  it("refuses out-of-range timestamps", () => {
    const violations = violationsOf(() => validateBatch([makeEvent({ timestamp: { seconds: 253_402_300_800n, nanos: 0 } })], limits));
    expect(violations[0]!.field).toBe("timestamp");
  });
});

describe("parseRfc3339", () => {
  it("reads zones and fractions", () => {
    expect(parseRfc3339("2025-10-24T10:00:00Z")).toMatchObject({ seconds: 1761300000n, nanos: 0 });
    expect(parseRfc3339("2025-10-24T12:00:00.5+02:00")).toMatchObject({ seconds: 1761300000n, nanos: 500_000_000 });
  });

  it("refuses what is not a real instant", () => {
    for (const text of ["2025-02-30T00:00:00Z", "2025-10-24T10:00:00", "yesterday", "2025-13-01T00:00:00Z", "0000-01-01T00:00:00Z"]) {
      expect(parseRfc3339(text), text).toBeUndefined();
    }
  });
});

describe("parseJsonTimestamp", () => {
  const twoDigits = (max: number) => fc.integer({ min: 0, max }).map((n) => String(n).padStart(2, "0"));
  const timestampText = fc
    .record({
      year: fc.integer({ min: 0, max: 9999 }).map((n) => String(n).padStart(4, "0")),
      month: twoDigits(13),
      day: twoDigits(32),
      hour: twoDigits(24),
      minute: twoDigits(60),
      second: twoDigits(60),
      fraction: fc.option(fc.stringMatching(/^\d{1,9}$/), { nil: undefined }),
      t: fc.constantFrom("T", "t"),
      zone: fc.oneof(fc.constantFrom("Z", "z"), fc.tuple(fc.constantFrom("+", "-"), twoDigits(25), twoDigits(60)).map(([sign, h, m]) => `${sign}${h}:${m}`)),
    })
    .map((p) => ({ ...p, text: `${p.year}-${p.month}-${p.day}${p.t}${p.hour}:${p.minute}:${p.second}${p.fraction === undefined ? "" : `.${p.fraction}`}${p.zone}` }));

  const protobufEs = (text: string) => {
    try {
      const ts = fromJson(TimestampSchema, text);
      return { seconds: ts.seconds, nanos: ts.nanos };
    } catch {
      return undefined;
    }
  };

  it("reads what protobuf-es reads, to the nanosecond, and refuses what it refuses", () => {
    fc.assert(
      fc.property(timestampText, ({ text }) => {
        const ours = parseJsonTimestamp(text);
        if (ours !== undefined) expect({ seconds: ours.seconds, nanos: ours.nanos }, text).toEqual(protobufEs(text));
        else {
          // The one difference: instants JavaScript's Date rolls over (Feb 30, 24:00:00), which protobuf-es keeps.
          const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2})/.exec(text);
          const realDate = m !== null && Number(m[4]) <= 23 && Number(m[3]) <= new Date(Date.UTC(Number(m[1]), Number(m[2]), 0)).getUTCDate();
          if (realDate) expect(protobufEs(text), text).toBeUndefined();
        }
      }),
      { numRuns: 5000 },
    );
  });
});
