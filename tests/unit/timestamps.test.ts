import fc from "fast-check";
import { fromJson } from "@bufbuild/protobuf";
import { TimestampSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { parseJsonTimestamp, parseRfc3339, textToRfc3339, textToTimestamp, timestampToText } from "../../src/codec/timestamps.js";

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
