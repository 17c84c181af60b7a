import { quoted, quotedPrefixChars } from "../answers/quote.js";
import { invalidTextWhy, isValidText } from "./text-rules.js";

/**
 * The rules every payload must follow, whichever decoder read it: the JSON
 * walker (canonical-json.ts, for REST and Connect JSON) and the protobuf
 * binary decoder (wire-events.ts) both call these, so a payload refused over
 * one protocol is refused over every other, with the same words. A rule
 * changed here changes for every front door at once, which is the point:
 * the canonical payload text is dedup identity. The rule for text (strings
 * and keys) is text-rules.ts', which identifiers follow too.
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

/** The rules of a JSON leaf (anything but an object or an array): its string, its number. */
export function checkLeaf(value: string | number | boolean | null): void {
  if (typeof value === "string") checkString(value);
  else if (typeof value === "number") checkNumber(value);
}
