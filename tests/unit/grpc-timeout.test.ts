import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseGrpcTimeout } from "../../src/rpc/grpc-timeout.js";

/** Large enough that no 8-digit value of any unit is over it. */
const noLimit = Number.MAX_SAFE_INTEGER;

describe("parseGrpcTimeout", () => {
  it("answers undefined when no grpc-timeout header was sent", () => {
    expect(parseGrpcTimeout(undefined, noLimit)).toBeUndefined();
  });

  it("reads hours, minutes, seconds and milliseconds as whole milliseconds", () => {
    expect(parseGrpcTimeout("2H", noLimit)).toBe(7_200_000);
    expect(parseGrpcTimeout("3M", noLimit)).toBe(180_000);
    expect(parseGrpcTimeout("5S", noLimit)).toBe(5_000);
    expect(parseGrpcTimeout("250m", noLimit)).toBe(250);
  });

  it("reads microseconds and nanoseconds as fractions of a millisecond", () => {
    expect(parseGrpcTimeout("1500u", noLimit)).toBeCloseTo(1.5, 12);
    expect(parseGrpcTimeout("7u", noLimit)).toBeCloseTo(0.007, 12);
    expect(parseGrpcTimeout("2500000n", noLimit)).toBeCloseTo(2.5, 12);
    expect(parseGrpcTimeout("1n", noLimit)).toBeCloseTo(0.000_001, 15);
  });

  it("accepts a zero timeout", () => {
    expect(parseGrpcTimeout("0S", noLimit)).toBe(0);
    expect(parseGrpcTimeout("00000000m", noLimit)).toBe(0);
  });

  it("accepts up to 8 digits and refuses a ninth", () => {
    expect(parseGrpcTimeout("99999999m", noLimit)).toBe(99_999_999);
    expect(parseGrpcTimeout("12345678S", noLimit)).toBe(12_345_678_000);
    expect(parseGrpcTimeout("123456789m", noLimit)).toBe("invalid");
    expect(parseGrpcTimeout("000000001S", noLimit)).toBe("invalid");
  });

  it.each([
    ["an empty value", ""],
    ["a unit alone", "S"],
    ["digits without a unit", "100"],
    ["a lower-case s, which is no gRPC unit", "1s"],
    ["an upper-case N, which is no gRPC unit", "1N"],
    ["a spelled-out unit", "10ms"],
    ["a fraction", "1.5S"],
    ["a negative number", "-1S"],
    ["a plus sign", "+1S"],
    ["a leading space", " 1S"],
    ["a trailing space", "1S "],
    ["a space before the unit", "1 S"],
    ["two units", "1S1m"],
    ["a hexadecimal number", "0x1S"],
    ["non-ASCII digits", "\u0661S"],
  ])("answers invalid for %s", (_what, value) => {
    expect(parseGrpcTimeout(value, noLimit)).toBe("invalid");
  });

  it("answers invalid for a header sent more than once (an array), even when each value is valid", () => {
    expect(parseGrpcTimeout(["1S"], noLimit)).toBe("invalid");
    expect(parseGrpcTimeout(["1S", "2S"], noLimit)).toBe("invalid");
    expect(parseGrpcTimeout([], noLimit)).toBe("invalid");
  });

  it("accepts a timeout equal to the maximum and refuses one over it", () => {
    expect(parseGrpcTimeout("1S", 1_000)).toBe(1_000);
    expect(parseGrpcTimeout("1000m", 1_000)).toBe(1_000);
    expect(parseGrpcTimeout("1001m", 1_000)).toBe("invalid");
    expect(parseGrpcTimeout("1000001u", 1_000)).toBe("invalid");
    expect(parseGrpcTimeout("1M", 1_000)).toBe("invalid");
  });

  it("measures the maximum in milliseconds whatever the unit of the header", () => {
    const hourMs = 3_600_000;
    expect(parseGrpcTimeout("1H", hourMs)).toBe(hourMs);
    expect(parseGrpcTimeout("60M", hourMs)).toBe(hourMs);
    expect(parseGrpcTimeout("3601S", hourMs)).toBe("invalid");
    expect(parseGrpcTimeout("61M", hourMs)).toBe("invalid");
    expect(parseGrpcTimeout("2H", hourMs)).toBe("invalid");
  });

  it("reads any 1- to 8-digit count of a unit as that many of the unit's milliseconds", () => {
    const unitMs = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 } as const;
    const units = Object.keys(unitMs) as (keyof typeof unitMs)[];
    fc.assert(
      fc.property(fc.stringMatching(/^\d{1,8}$/), fc.constantFrom(...units), (digits, unit) => {
        const ms = parseGrpcTimeout(`${digits}${unit}`, noLimit);
        expect(typeof ms).toBe("number");
        expect(ms as number).toBeCloseTo(Number(digits) * unitMs[unit], 6);
      }),
    );
  });
});
