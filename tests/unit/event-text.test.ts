import { describe, expect, it } from "vitest";
import { canonicalJson, textToRfc3339, textToTimestamp, timestampToText } from "../../src/event-text.js";

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
    expect(textToRfc3339(texts[2]!)).toBe("2025-10-24T10:00:00.123Z");
    expect(textToRfc3339("2025-10-24T10:00:00.000000000Z")).toBe("2025-10-24T10:00:00Z");
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every level so key order does not matter", () => {
    expect(canonicalJson({ b: { y: 1, x: 2 }, a: [{ d: 1, c: 2 }] }, 10)).toBe('{"a":[{"c":2,"d":1}],"b":{"x":2,"y":1}}');
  });
});
