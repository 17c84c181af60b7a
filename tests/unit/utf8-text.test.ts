import fc from "fast-check";
import { isUtf8 } from "node:buffer";
import { describe, expect, it } from "vitest";
import { isValidText } from "../../src/codec/text-rules.js";
import { decodeUtf8 } from "../../src/codec/utf8-text.js";

/** Text back to bytes, each lone surrogate U+DC80–U+DCFF as the byte it stands for (the inverse of decodeUtf8). */
function encodeKeepingFaults(text: string): Buffer {
  const parts: Buffer[] = [];
  for (const char of text) {
    const code = char.codePointAt(0)!;
    parts.push(code >= 0xdc80 && code <= 0xdcff ? Buffer.from([code - 0xdc00]) : Buffer.from(char, "utf8"));
  }
  return Buffer.concat(parts);
}

describe("decodeUtf8", () => {
  it("decodes UTF-8 as Node does", () => {
    for (const text of ["", "ascii", "ünïcode", "日本語", "\u{1f600}", "nul\u0000"]) expect(decodeUtf8(Buffer.from(text, "utf8"))).toBe(text);
  });

  it("turns each byte that is not UTF-8 into a lone surrogate instead of U+FFFD", () => {
    const cases: [number[], string][] = [
      [[0xc3, 0x28], "\udcc3("], // a lead byte without its continuation
      [[0xed, 0xa0, 0x80], "\udced\udca0\udc80"], // an encoded surrogate, how some systems write a lone one
      [[0xc0, 0xaf], "\udcc0\udcaf"], // an overlong "/"
      [[0xf4, 0x90, 0x80, 0x80], "\udcf4\udc90\udc80\udc80"], // beyond U+10FFFF
      [[0x61, 0xf0, 0x9f, 0x98], "a\udcf0\udc9f\udc98"], // cut short
      [[0xff, 0xf0, 0x9f, 0x98, 0x80], "\udcff\u{1f600}"], // a stray byte before a valid character
    ];
    for (const [bytes, text] of cases) {
      expect(decodeUtf8(Uint8Array.from(bytes))).toBe(text);
      expect(isValidText(text)).toBe(false);
    }
  });

  it("decodes a range of a larger buffer", () => {
    const bytes = Buffer.from([0x78, 0xc3, 0x28, 0x79]);
    expect(decodeUtf8(bytes, 1, 3)).toBe("\udcc3(");
  });

  it("loses nothing: the bytes can be read back from the text, and the text is valid exactly when the bytes are UTF-8", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.string({ maxLength: 6, unit: "grapheme" }), (noise, text) => {
        const bytes = Buffer.concat([Buffer.from(text, "utf8"), noise, Buffer.from(text, "utf8")]);
        const decoded = decodeUtf8(bytes);
        expect(encodeKeepingFaults(decoded)).toEqual(bytes);
        expect(isValidText(decoded)).toBe(isUtf8(bytes));
      }),
      { numRuns: 3_000, seed: 20261207 },
    );
  });
});
