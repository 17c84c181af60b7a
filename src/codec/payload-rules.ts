import { quoted, quotedPrefixChars } from "../answers/quote.js";
import { invalidTextWhy, isValidText } from "./text-rules.js";

/**
 * The rules every payload must follow, whichever decoder read it: the JSON
 * walker (canonical-json.ts, for REST and Connect JSON), the protobuf binary
 * decoder (wire-events.ts) and the check of JSON text before it is parsed
 * (json-text-check.ts) all call these, so a payload refused over one protocol
 * is refused over every other, with the same words. A rule changed here
 * changes for every front door at once, which is the point: the canonical
 * payload text is dedup identity. The rule for text (strings and keys) is
 * text-rules.ts', which identifiers follow too.
 */

/**
 * Payloads nest at most this deep. Real events nest a handful of levels; a
 * limit keeps a hostile 10,000-level payload from exhausting the stack. And a
 * stored payload must stay readable by every client: in protobuf binary each
 * JSON level is two nested messages (Struct or ListValue, then Value), and
 * decoders stop at 100 nested messages (protobuf-es, C++, Java, upb in
 * Python), so from about 49 levels on gRPC and Connect binary clients could
 * neither send such a payload nor read an Events page holding one. 32 keeps a
 * wide margin below that.
 */
export const maxPayloadDepth = 32;

/** A path into a payload quoted in a violation is cut here: payload keys can be long. */
const maxQuotedPath = 120;

/**
 * A payload broke a rule. Walkers report the first problem in canonical
 * order (object members by sorted key, as the stored text lists them; a key
 * before its value), so every decoder names the same one whatever order the
 * client wrote. They add their step to its path as it passes each level on
 * the way out, so nothing is allocated for the path unless there is a problem.
 */
export class PayloadRuleError extends Error {
  private readonly reversedPath: string[] = [];

  constructor(private readonly describe: (at: string) => string) {
    super("payload rule broken");
  }

  /** Adds the step into the member or element the problem is in (".key" or "[3]"), innermost first. */
  within(step: string): this {
    this.reversedPath.push(step);
    return this;
  }

  /** What validation reports for field "payload". */
  get description(): string {
    return this.describe(payloadPath([...this.reversedPath].reverse()));
  }
}

/** A path into a payload as refusals write it, from its steps (memberStep, elementStep), outermost first. */
export function payloadPath(steps: readonly string[]): string {
  const path = `payload${steps.join("")}`;
  if (path.length <= maxQuotedPath) return path;
  // Never cut a surrogate pair in half: the path would end in a lone surrogate.
  const end = isHighSurrogate(path.charCodeAt(maxQuotedPath - 1)) ? maxQuotedPath - 1 : maxQuotedPath;
  return `${path.slice(0, end)}…`;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

/** Rethrows err with the step added to its path when it is a broken rule; as it is otherwise. */
export function withinStep(err: unknown, step: string): unknown {
  return err instanceof PayloadRuleError ? err.within(step) : err;
}

/** Keys a path writes as they are: letters, digits, "_", "$" and "-". */
const plainKey = /^[\p{L}\p{N}_$-]+$/u;

/**
 * The step into a member of an object, as it is written in a path: ".key",
 * or ["key"] quoted (answers/quote.ts) when the key is long or holds anything
 * else, so a refusal repeats at most a short escaped prefix of it.
 */
export function memberStep(key: string): string {
  return key.length <= quotedPrefixChars && plainKey.test(key) ? `.${key}` : `[${quoted(key)}]`;
}

/** The step into an element of an array, as it is written in a path. */
export function elementStep(index: number): string {
  return `[${index}]`;
}

/** A container (object or array) at `depth` (the payload itself is 1) must not be deeper than the limit. */
export function checkDepth(depth: number): void {
  if (depth > maxPayloadDepth) throw new PayloadRuleError(() => `is nested deeper than ${maxPayloadDepth} levels`);
}

/** JSON has no NaN or Infinity. */
export function checkNumber(value: number): void {
  if (Number.isFinite(value)) return;
  // JSON text such as 1e400 parses to Infinity: say where it came from.
  const origin = Number.isNaN(value) ? "" : " (numbers beyond ±1.8e308 overflow to it)";
  throw new PayloadRuleError(() => `contains ${value}, which JSON cannot represent${origin}`);
}

/**
 * A literal without an exponent and with at most this many digits always
 * reads back as written: a double holds 15 significant decimal digits
 * exactly, and such a literal lies far inside the range where it does.
 */
export const maxAlwaysExactDigits = 15;

/**
 * Why a JSON number literal in a payload cannot be stored as written, or
 * undefined when it can. A payload number is stored as a double: canonical
 * JSON writes it as JavaScript does (the shortest decimal that reads back as
 * the same double, which is what every client reads back), and binary
 * protobuf carries the double itself, so it is exact by construction. A
 * literal whose decimal value differs from that read-back value
 * (9007199254740993 stored as 9007199254740992, 1e-400 as 0) would be stored
 * as another number, and a different payload could be reported DUPLICATE of
 * it: it is refused. Values are compared, not spellings: 1.50, 15e-1 and 1.5
 * are one number, and 0.1 reads back as 0.1. "-0" is kept: its value is
 * zero, and canonical JSON writes it 0 (as RFC 8785 does) over every
 * protocol. Literals beyond ±1.8e308 are left to checkNumber, which refuses
 * the Infinity they parse to.
 */
export function inexactNumberDescription(literal: string): string | undefined {
  if (!mayBeInexact(literal)) return undefined;
  const value = Number(literal);
  if (!Number.isFinite(value)) return undefined;
  const readBack = String(value);
  if (sameDecimal(decimalOf(literal), decimalOf(readBack))) return undefined;
  // A number literal is digits, a sign, a point and an exponent: only its length needs bounding, not escaping.
  const shown = literal.length <= quotedPrefixChars ? literal : `${literal.slice(0, quotedPrefixChars)}… (${literal.length} characters)`;
  return `number ${shown} cannot be stored exactly (it would read back as ${readBack}); send it as a string`;
}

/** Whether a literal needs comparing at all: only an exponent or more than maxAlwaysExactDigits digits can make it inexact. */
function mayBeInexact(literal: string): boolean {
  let digits = 0;
  for (let i = 0; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    if (c === 0x65 || c === 0x45) return true;
    if (c >= 0x30 && c <= 0x39) digits++;
  }
  return digits > maxAlwaysExactDigits;
}

/** A decimal number as sign, significant digits (no leading or trailing zeros; "" for zero) and the power of ten of the last. */
interface Decimal {
  negative: boolean;
  digits: string;
  exponent: number;
}

/** The decimal value of a JSON number literal, or of what String(number) writes (which may have "e+21"). */
function decimalOf(literal: string): Decimal {
  let text = literal;
  const negative = text.startsWith("-");
  if (negative) text = text.slice(1);
  let exponent = 0;
  const e = text.search(/[eE]/);
  if (e >= 0) {
    exponent = Number(text.slice(e + 1));
    text = text.slice(0, e);
  }
  const point = text.indexOf(".");
  if (point >= 0) {
    exponent -= text.length - point - 1;
    text = text.slice(0, point) + text.slice(point + 1);
  }
  let first = 0;
  while (first < text.length && text.charCodeAt(first) === 0x30) first++;
  let end = text.length;
  while (end > first && text.charCodeAt(end - 1) === 0x30) {
    end--;
    exponent++;
  }
  return { negative, digits: text.slice(first, end), exponent };
}

/** Whether two decimals have the same value; every zero is the same value, whatever its sign. */
function sameDecimal(a: Decimal, b: Decimal): boolean {
  if (a.digits !== b.digits) return false;
  return a.digits === "" || (a.negative === b.negative && a.exponent === b.exponent);
}

/**
 * A key must be valid text (text-rules.ts), and must not be "__proto__":
 * protobuf-es keeps a Struct's fields in a plain object, where that key sets
 * the prototype and is dropped without a word. Stored without it, a re-send
 * differing only there would be reported DUPLICATE; so it is refused, on
 * every path that sees it.
 * `wellFormed` says the decoder already knows the key is valid text (the
 * binary decoder sees whether its bytes were UTF-8), which skips that test.
 */
export function checkKey(key: string, wellFormed = false): void {
  if (key === "__proto__") {
    throw new PayloadRuleError((at) => `has the key "__proto__" at ${at}, which protobuf decoding would drop silently; rename it`);
  }
  if (!wellFormed && !isValidText(key)) throw new PayloadRuleError(invalidKey);
}

/** A string value must be valid text (text-rules.ts), or protobuf clients could not read it back. */
function checkString(value: string): void {
  if (!isValidText(value)) throw new PayloadRuleError(invalidString);
}

const invalidKey = (at: string) => `has a key ${invalidTextWhy} at ${at}`;
const invalidString = (at: string) => `has a string ${invalidTextWhy} at ${at}`;

/**
 * What the payload rules say of a key (`isKey`) or string that is not valid
 * text at a path (steps outermost first; a key's path is its object's), for
 * the check of JSON text, which finds bytes that are not UTF-8 before the
 * payload is parsed.
 */
export function invalidTextInPayload(isKey: boolean, steps: readonly string[]): string {
  return (isKey ? invalidKey : invalidString)(payloadPath(steps));
}

/** The rules of a JSON leaf (anything but an object or an array): its string, its number. */
export function checkLeaf(value: string | number | boolean | null): void {
  if (typeof value === "string") checkString(value);
  else if (typeof value === "number") checkNumber(value);
}
