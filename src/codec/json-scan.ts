import { maxAlwaysExactDigits } from "./payload-rules.js";

/**
 * Reading JSON as text, for what JSON.parse does not keep: the literal of
 * each number (JSON.parse rounds it to a double) and where each string
 * token is. It walks the text once, without building values, and tells a
 * visitor the path to each number and string. Only the check of JSON text
 * (json-text-check.ts) uses it, and only when the cheap look below finds
 * something worth walking for, so a common body costs one pass over its
 * bytes.
 */

/** One step of a path from the top of a JSON text: a member's key or an element's index. */
export type JsonStep = string | number;

/** What a walk tells; a path passed in is the walk's own and changes after the call: copy it to keep it. */
export interface JsonVisitor {
  /** A number literal, as written, at `path`. */
  number(literal: string, path: readonly JsonStep[]): void;
  /** A string token (quotes included) from `start` to `end`: a value at `path`, or a key (`isKey`) of the object at `path`. */
  string(text: string, start: number, end: number, path: readonly JsonStep[], isKey: boolean): void;
  /** An object or array begins at `path`. */
  container(path: readonly JsonStep[], isArray: boolean): void;
}

/**
 * Whether JSON bytes may hold a number literal that needs the full check of
 * payload-rules.ts: one with an exponent or with more than
 * maxAlwaysExactDigits digits. It looks at bytes without telling strings
 * apart, so a string such as "ref 12345678901234567" answers true too (the
 * walk then finds no such number); an id such as "550e8400-e29b" does not,
 * since an exponent is followed by digits and then the end of the number.
 */
export function mayHoldLongOrExponentNumber(bytes: Uint8Array): boolean {
  const end = bytes.length;
  let i = 0;
  while (i < end) {
    // Most bytes are no digit: one test each (measured: the fastest of the loops tried).
    if (!isDigit(bytes[i]!)) {
      i++;
      continue;
    }
    // A run of digits, and of decimal points, whose digits on both sides count together.
    let digits = 0;
    for (; i < end; i++) {
      const c = bytes[i]!;
      if (isDigit(c)) {
        if (++digits > maxAlwaysExactDigits) return true;
      } else if (c !== 0x2e) {
        break;
      }
    }
    if ((bytes[i] === 0x65 || bytes[i] === 0x45) && isExponentAt(bytes, i + 1)) return true;
    i++;
  }
  return false;
}

/** Whether bytes from i on are the rest of an exponent: a sign or none, digits, then the end of a number. */
function isExponentAt(bytes: Uint8Array, i: number): boolean {
  if (bytes[i] === 0x2b || bytes[i] === 0x2d) i++;
  const first = i;
  while (i < bytes.length && isDigit(bytes[i]!)) i++;
  return i > first && (i === bytes.length || endsValue(bytes[i]!));
}

/** Characters that may follow a JSON value: whitespace, ",", "]" and "}". */
function endsValue(c: number): boolean {
  return c === 0x2c || c === 0x5d || c === 0x7d || isWhitespace(c);
}

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;
}

/** What the walk expects next. */
const enum Expect {
  Value,
  /** A value, or "]" right after "[". */
  ValueOrEnd,
  /** A key, or "}" right after "{". */
  KeyOrEnd,
  Key,
  Colon,
  /** "," or the end of the container a value is in. */
  CommaOrEnd,
  /** Nothing more: the top value is complete. */
  Nothing,
}

/**
 * Walks JSON text, telling the visitor each number, string and container
 * with its path; answers whether the text is JSON (RFC 8259, as JSON.parse
 * reads it). The walk stops at the first error, so a visitor may have been
 * told about part of a text that is not JSON. It keeps its own stack instead
 * of recursing, so any depth is safe.
 */
export function walkJson(text: string, visitor: JsonVisitor): boolean {
  const path: JsonStep[] = [];
  /** For each open container, whether it is an array. */
  const arrays: boolean[] = [];
  let expect = Expect.Value;
  let i = 0;
  const afterValue = () => (arrays.length === 0 ? Expect.Nothing : Expect.CommaOrEnd);
  for (;;) {
    while (i < text.length && isWhitespace(text.charCodeAt(i))) i++;
    if (expect === Expect.Nothing) return i === text.length;
    if (i === text.length) return false;
    const c = text.charCodeAt(i);
    switch (expect) {
      case Expect.ValueOrEnd:
      case Expect.Value: {
        if (expect === Expect.ValueOrEnd && c === 0x5d) {
          arrays.pop();
          path.pop();
          i++;
          expect = afterValue();
          break;
        }
        if (c === 0x7b || c === 0x5b) {
          const isArray = c === 0x5b;
          visitor.container(path, isArray);
          arrays.push(isArray);
          if (isArray) path.push(0);
          i++;
          expect = isArray ? Expect.ValueOrEnd : Expect.KeyOrEnd;
          break;
        }
        let end: number;
        if (c === 0x22) {
          end = stringEnd(text, i);
          if (end < 0) return false;
          visitor.string(text, i, end, path, false);
        } else if (c === 0x2d || isDigit(c)) {
          end = numberEnd(text, i);
          if (end < 0) return false;
          visitor.number(text.slice(i, end), path);
        } else {
          end = wordEnd(text, i);
          if (end < 0) return false;
        }
        i = end;
        expect = afterValue();
        break;
      }
      case Expect.KeyOrEnd:
      case Expect.Key: {
        if (expect === Expect.KeyOrEnd && c === 0x7d) {
          arrays.pop();
          i++;
          expect = afterValue();
          break;
        }
        if (c !== 0x22) return false;
        const end = stringEnd(text, i);
        if (end < 0) return false;
        visitor.string(text, i, end, path, true);
        path.push(stringValue(text, i, end));
        i = end;
        expect = Expect.Colon;
        break;
      }
      case Expect.Colon:
        if (c !== 0x3a) return false;
        i++;
        expect = Expect.Value;
        break;
      case Expect.CommaOrEnd: {
        const inArray = arrays[arrays.length - 1]!;
        if (c === 0x2c) {
          if (inArray) path[path.length - 1] = (path[path.length - 1] as number) + 1;
          else path.pop();
          i++;
          expect = inArray ? Expect.Value : Expect.Key;
        } else if (c === (inArray ? 0x5d : 0x7d)) {
          // The index of the element, or the key of the member, that ended with the container.
          path.pop();
          arrays.pop();
          i++;
          expect = afterValue();
        } else {
          return false;
        }
        break;
      }
    }
  }
}

/** The end of the string token starting at i (just past its closing quote), or -1 when it is not one. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c < 0x20) return -1;
    if (c !== 0x5c) continue;
    const escaped = text.charCodeAt(++j);
    if (escaped === 0x75) {
      if (!/^[0-9a-fA-F]{4}$/.test(text.slice(j + 1, j + 5))) return -1;
      j += 4;
    } else if (!isSimpleEscape(escaped)) {
      return -1;
    }
  }
  return -1;
}

/** The characters after a backslash that JSON allows, except "u": " \ / b f n r t. */
function isSimpleEscape(c: number): boolean {
  return c === 0x22 || c === 0x5c || c === 0x2f || c === 0x62 || c === 0x66 || c === 0x6e || c === 0x72 || c === 0x74;
}

/** The value of a string token, as JSON.parse reads it. */
function stringValue(text: string, start: number, end: number): string {
  const token = text.slice(start, end);
  return token.includes("\\") ? (JSON.parse(token) as string) : token.slice(1, -1);
}

/** The end of the number token starting at i, or -1 when it is not one: -?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)? */
function numberEnd(text: string, i: number): number {
  let j = i;
  if (text.charCodeAt(j) === 0x2d) j++;
  if (text.charCodeAt(j) === 0x30) j++;
  else if (isDigit(text.charCodeAt(j))) j = digitsEnd(text, j);
  else return -1;
  if (text.charCodeAt(j) === 0x2e) {
    const fraction = j + 1;
    j = digitsEnd(text, fraction);
    if (j === fraction) return -1;
  }
  const e = text.charCodeAt(j);
  if (e === 0x65 || e === 0x45) {
    j++;
    const sign = text.charCodeAt(j);
    if (sign === 0x2b || sign === 0x2d) j++;
    const exponent = j;
    j = digitsEnd(text, exponent);
    if (j === exponent) return -1;
  }
  return j;
}

function digitsEnd(text: string, i: number): number {
  while (isDigit(text.charCodeAt(i))) i++;
  return i;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/** The end of true, false or null at i, or -1. */
function wordEnd(text: string, i: number): number {
  for (const word of ["true", "false", "null"]) {
    if (text.startsWith(word, i)) return i + word.length;
  }
  return -1;
}
