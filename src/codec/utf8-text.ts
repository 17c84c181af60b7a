import { Buffer, isUtf8 } from "node:buffer";

/**
 * UTF-8 bytes as text, keeping what is not UTF-8 visible. Node and
 * TextDecoder put U+FFFD where bytes are not UTF-8, which would hide the
 * fault and store something the client did not send. Here each byte that is
 * not part of a valid UTF-8 sequence becomes the lone surrogate U+DC00 + byte
 * (U+DC80 to U+DCFF), as Python's "surrogateescape" does: the text is then
 * refused by the one text rule (text-rules.ts) in the field or key that holds
 * it, in the same words as a lone surrogate sent in JSON.
 */

/** The text of bytes[start, end): decoded as UTF-8 when they are, as described above when not. */
export function decodeUtf8(bytes: Uint8Array, start = 0, end = bytes.length): string {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset + start, end - start);
  return isUtf8(view) ? view.toString("utf8") : decodeKeepingFaults(view);
}

/** The text of bytes known not to be valid UTF-8, each stray byte a lone surrogate. */
export function decodeKeepingFaults(bytes: Buffer): string {
  let text = "";
  let validFrom = 0;
  let i = 0;
  while (i < bytes.length) {
    const length = sequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    text += bytes.toString("utf8", validFrom, i) + String.fromCharCode(0xdc00 + bytes[i]!);
    validFrom = ++i;
  }
  return text + bytes.toString("utf8", validFrom, i);
}

/**
 * Length of the valid UTF-8 sequence starting at i, or 0 if none does.
 * RFC 3629's table: no overlong forms, no encoded surrogates (ED A0 80, how
 * some systems write a lone surrogate), nothing beyond U+10FFFF.
 */
function sequenceLength(bytes: Uint8Array, i: number): number {
  const lead = bytes[i]!;
  if (lead < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    else if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    else if (lead === 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (i + length > bytes.length) return 0;
  const second = bytes[i + 1]!;
  if (second < low || second > high) return 0;
  for (let k = 2; k < length; k++) {
    const next = bytes[i + k]!;
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}
