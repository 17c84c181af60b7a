import { Buffer, isUtf8 } from "node:buffer";
import { mayHoldLongOrExponentNumber, walkJson, type JsonStep, type JsonVisitor } from "./json-scan.js";
import { elementStep, inexactNumberDescription, invalidTextInPayload, memberStep, payloadPath } from "./payload-rules.js";
import { invalidTextDescription, isValidText } from "./text-rules.js";
import { decodeKeepingFaults } from "./utf8-text.js";
import { ValidationError, type Violation } from "./violations.js";

/**
 * The check of a JSON body or message as text, before it is parsed, for
 * what parsing would lose without a word:
 * - bytes that are not UTF-8, which decoding to a string replaces with U+FFFD;
 * - a payload number whose literal a double cannot hold (payload-rules.ts),
 *   which JSON.parse and protobuf-es round.
 * Both JSON front doors call it on the bytes they receive, REST
 * (json-events.ts) and the RPC edge for Connect, gRPC and gRPC-Web with the
 * JSON codec (rpc/exact-json-body.ts), so they refuse the same text with the
 * same violations. Like a syntax error, what it finds refuses the request
 * before anything else is checked; text that is not JSON is left to the
 * parser to refuse, unless its bytes are not UTF-8 either.
 */

/** Where a JSON text keeps its events: REST takes one event, an array of events or {"events": [...]}; protobuf JSON takes {"events": [...]}. */
export type EventsLayout = "rest" | "protobuf";

/**
 * Throws ValidationError naming each bad field (the first finding of each
 * field of an event); `message` is the position of a stream message, for the
 * path. Bodies with neither bytes that are not UTF-8 nor a long or exponent
 * number literal (almost all) cost one pass over their bytes.
 */
export function checkJsonText(bytes: Uint8Array, layout: EventsLayout, message?: number): void {
  const utf8 = isUtf8(bytes);
  if (utf8 && !mayHoldLongOrExponentNumber(bytes)) return;
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const findings = new Findings(layout, !utf8);
  const isJson = walkJson(utf8 ? view.toString("utf8") : decodeKeepingFaults(view), findings);
  const violations = isJson ? findings.violations() : [];
  // Bytes that are not UTF-8 outside any string: the text is not JSON either, but that is the first fault.
  if (!utf8 && violations.length === 0) violations.push({ index: -1, field: "body", description: invalidTextDescription });
  if (violations.length === 0) return;
  if (message !== undefined) for (const v of violations) v.message = message;
  throw new ValidationError(violations);
}

/** Something found, where it was found; `isKey` for a key, whose path is its object's. */
interface Finding {
  path: JsonStep[];
  /** A number's refusal; undefined for text that is not valid. */
  number?: string;
  isKey: boolean;
}

/** Collects what the walk finds, and names it once the text's layout is known. */
class Findings implements JsonVisitor {
  private readonly found: Finding[] = [];
  /** What the text is at its top: events live only in an object or an array. */
  private top: "array" | "object" | "other" = "other";
  private topHasEvents = false;

  constructor(
    private readonly layout: EventsLayout,
    /** Whether strings may hold bytes that were not UTF-8 (lone surrogates, utf8-text.ts), worth looking for. */
    private readonly textMayBeInvalid: boolean,
  ) {}

  container(path: readonly JsonStep[], isArray: boolean): void {
    if (path.length === 0) this.top = isArray ? "array" : "object";
  }

  number(literal: string, path: readonly JsonStep[]): void {
    const refusal = inexactNumberDescription(literal);
    if (refusal !== undefined) this.found.push({ path: [...path], number: refusal, isKey: false });
  }

  string(text: string, start: number, end: number, path: readonly JsonStep[], isKey: boolean): void {
    if (isKey && path.length === 0 && JSON.parse(text.slice(start, end)) === "events") this.topHasEvents = true;
    // Bytes that were not UTF-8 are lone surrogates in the text itself, not escapes ("\ud800" is for the parser's rules).
    if (this.textMayBeInvalid && !isValidText(text.slice(start, end))) this.found.push({ path: [...path], isKey });
  }

  /**
   * What was found, as violations sorted by event as validation sorts them:
   * the first of each field of an event, and the first number of each
   * payload, so a body of many bad numbers gets a short answer.
   */
  violations(): Violation[] {
    const byField = new Map<string, Violation>();
    for (const finding of this.found) {
      const violation = this.violation(finding);
      if (violation === undefined) continue;
      const key = `${violation.index}:${finding.number === undefined ? violation.field : "payload number"}`;
      if (!byField.has(key)) byField.set(key, violation);
    }
    return [...byField.values()].sort((a, b) => a.index - b.index);
  }

  private violation({ path, number, isKey }: Finding): Violation | undefined {
    const event = this.eventAt(path);
    if (number !== undefined) {
      // Numbers outside payloads are not stored: a wrong type, or a member nobody reads.
      if (event === undefined || event.within[0] !== "payload" || event.within.length < 2) return undefined;
      return { index: event.index, field: payloadPath(steps(event.within.slice(1))), description: number };
    }
    if (event === undefined) return { index: -1, field: "body", description: invalidTextDescription };
    const [member, ...inMember] = event.within;
    if (member === "payload" && (isKey || inMember.length > 0)) {
      return { index: event.index, field: "payload", description: invalidTextInPayload(isKey, steps(inMember)) };
    }
    const field = typeof member === "string" && !isKey && inMember.length === 0 ? eventFields.get(member) : undefined;
    return { index: event.index, field: field ?? "event", description: invalidTextDescription };
  }

  /** The event a path leads into, and the path within it; undefined outside every event. */
  private eventAt(path: JsonStep[]): { index: number; within: JsonStep[] } | undefined {
    if (this.top === "other") return undefined;
    if (this.layout === "rest" && this.top === "array") {
      return typeof path[0] === "number" ? { index: path[0], within: path.slice(1) } : undefined;
    }
    if (this.layout === "protobuf" || this.topHasEvents) {
      return path[0] === "events" && typeof path[1] === "number" ? { index: path[1], within: path.slice(2) } : undefined;
    }
    return { index: 0, within: path };
  }
}

/** Members of an event, in either JSON spelling, by the field name violations use. */
const eventFields = new Map([
  ["topic", "topic"],
  ["event_id", "event_id"],
  ["eventId", "event_id"],
  ["timestamp", "timestamp"],
  ["source", "source"],
  ["payload", "payload"],
]);

/** A path within a payload in the steps refusals write (payload-rules.ts). */
function steps(path: readonly JsonStep[]): string[] {
  return path.map((step) => (typeof step === "number" ? elementStep(step) : memberStep(step)));
}
