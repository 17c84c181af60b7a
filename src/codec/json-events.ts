import type { JsonObject } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
import { quoted } from "../answers/quote.js";
import { CanonicalPayload, canonicalJson } from "./canonical-json.js";
import { RefusedPayload, type DecodedBatch, type DecodedEvent } from "./decoded-batch.js";
import { checkJsonText } from "./json-text-check.js";
import { PayloadRuleError } from "./payload-rules.js";
import { parseJsonTimestamp } from "./timestamps.js";
import { checkBatchSize } from "./validate.js";
import { ValidationError, type Violation } from "./violations.js";

/**
 * The REST decoder from the body's bytes: its text checked as text first
 * (json-text-check.ts: bytes that are not UTF-8, numbers a double cannot
 * hold), then parsed and decoded as below. Throws ValidationError, or
 * SyntaxError (JSON.parse's) when the body is not JSON.
 */
export function decodeJsonBytes(bytes: Uint8Array, maxBatch: number): DecodedBatch {
  checkJsonText(bytes, "rest");
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
  return decodeJsonBody(JSON.parse(text), maxBatch);
}

/**
 * The REST decoder: a parsed JSON body, in the three shapes the older
 * clients send (one event, an array, or {"events": [...]}), into a decoded
 * batch. Each event is built directly from the parsed object, and its
 * payload written as canonical JSON in the same walk that checks the payload
 * rules: protobuf-es's reflective fromJson would repeat that work (it was
 * the largest cost of a single-event request). Accepts protobuf JSON's
 * camelCase spelling too, as fromJson does.
 */
export function decodeJsonBody(body: unknown, maxBatch: number): DecodedBatch {
  let items: unknown[];
  if (Array.isArray(body)) items = body;
  else if (isObject(body) && Array.isArray(body.events)) items = body.events;
  else if (isObject(body) && body.events !== undefined) {
    throw new ValidationError([{ index: -1, field: "events", description: "must be an array of events" }]);
  } else if (isObject(body)) items = [body];
  else throw new ValidationError([{ index: -1, field: "body", description: 'must be an event object, an array of events, or {"events": [...]}' }]);

  checkBatchSize(items.length, maxBatch);
  const violations: Violation[] = [];
  const events = items.map((item, index) => decodeItem(item, index, violations));
  return { events, violations };
}

function decodeItem(item: unknown, index: number, violations: Violation[]): DecodedEvent | undefined {
  if (!isObject(item)) {
    violations.push({ index, field: "event", description: "must be a JSON object" });
    return undefined;
  }
  const typeErrors = checkJsonTypes(item, index);
  const timestamp = typeof item.timestamp === "string" ? parseJsonTimestamp(item.timestamp) : undefined;
  if (typeof item.timestamp === "string" && timestamp === undefined) {
    typeErrors.push({ index, field: "timestamp", description: `${quoted(item.timestamp)} is not an RFC 3339 timestamp (e.g. 2025-10-24T10:00:00Z)` });
  }
  if (typeErrors.length > 0) {
    violations.push(...typeErrors);
    return undefined;
  }
  const text = (value: unknown) => (typeof value === "string" ? value : "");
  return {
    topic: text(item.topic),
    eventId: text(item.event_id ?? item.eventId),
    timestamp,
    source: text(item.source),
    payload: isObject(item.payload) ? canonicalPayload(item.payload as JsonObject) : undefined,
  };
}

/** A parsed payload object as its canonical text, or refused with the first payload rule it breaks. */
export function canonicalPayload(payload: JsonObject): CanonicalPayload | RefusedPayload {
  try {
    return new CanonicalPayload(canonicalJson(payload));
  } catch (err) {
    if (err instanceof PayloadRuleError) return new RefusedPayload(err.description);
    throw err;
  }
}

/** JSON types of the known fields, checked first so the error names the field plainly. */
const expectedTypes: [field: string, alias: string, type: "string" | "object"][] = [
  ["topic", "topic", "string"],
  ["event_id", "eventId", "string"],
  ["timestamp", "timestamp", "string"],
  ["source", "source", "string"],
  ["payload", "payload", "object"],
];

function checkJsonTypes(item: Record<string, unknown>, index: number): Violation[] {
  const violations: Violation[] = [];
  for (const [field, alias, type] of expectedTypes) {
    const value = item[field] ?? item[alias];
    if (value === undefined || value === null) continue; // reported as missing by validation
    const ok = type === "object" ? isObject(value) : typeof value === "string";
    if (!ok) violations.push({ index, field, description: `must be ${type === "object" ? "a JSON object" : "a string"}, got ${jsonType(value)}` });
  }
  return violations;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function jsonType(value: unknown): string {
  if (Array.isArray(value)) return "an array";
  if (value === null) return "null";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}
