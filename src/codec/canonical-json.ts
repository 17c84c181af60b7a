import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { checkDepth, checkKey, checkLeaf, elementStep, memberStep, withinStep } from "./payload-rules.js";

/**
 * The canonical JSON text of a payload is dedup identity: two sends of one
 * (topic, event_id) are the same event exactly when their payloads have the
 * same canonical text. Object keys are sorted (by UTF-16 code units, as
 * Array.prototype.sort sorts), so re-sends compare equal however the producer
 * ordered its keys; the text is what the store keeps and compares. Both
 * decoders produce it: this module from a parsed object (REST, Connect JSON),
 * wire-events.ts straight from protobuf bytes; tests/unit/decoders.test.ts
 * proves they agree.
 */

/** A payload in its canonical JSON text, as every decoder hands it on. */
export class CanonicalPayload {
  constructor(readonly json: string) {}
}

/** JSON text of one object from its members' texts: keys sorted, the last of a repeated key kept. */
export function objectJson(members: Map<string, string>): string {
  const keys = [...members.keys()].sort();
  let text = "{";
  for (let i = 0; i < keys.length; i++) {
    if (i > 0) text += ",";
    text += `${JSON.stringify(keys[i])}:${members.get(keys[i]!)}`;
  }
  return `${text}}`;
}

/**
 * The canonical text of a payload object, checking every payload rule
 * (payload-rules.ts) in canonical order, the order of the text it makes;
 * throws PayloadRuleError at the first one broken.
 */
export function canonicalJson(value: JsonObject): string {
  const sorted = sortedCopy(value, 1);
  return sorted === unordered ? write(value, 1) : JSON.stringify(sorted);
}

/** What sortedCopy answers for a value holding keys whose order it cannot set. */
const unordered = Symbol("unordered");

/**
 * The value with the keys of every object in sorted order, sharing whatever
 * is already sorted. JSON.stringify writes keys in property order, so this
 * lets V8 write the canonical text natively, about twice as fast as building
 * it here (it was the largest part of validating a single REST event). V8
 * keeps string keys in insertion order, except integer-like keys, which come
 * first in numeric order, and "__proto__", which sets the prototype: an
 * object with a key that could be either answers `unordered`, and is written
 * by hand.
 */
function sortedCopy(value: JsonValue, depth: number): JsonValue | typeof unordered {
  if (typeof value !== "object" || value === null) {
    checkLeaf(value);
    return value;
  }
  checkDepth(depth);
  if (Array.isArray(value)) {
    let copy: JsonValue[] | undefined;
    for (let i = 0; i < value.length; i++) {
      let item;
      try {
        item = sortedCopy(value[i]!, depth + 1);
      } catch (err) {
        throw withinStep(err, elementStep(i));
      }
      if (item === unordered) return unordered;
      if (item !== value[i]) (copy ??= value.slice())[i] = item;
    }
    return copy ?? value;
  }
  const keys = Object.keys(value);
  let inOrder = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    if (!keepsInsertionOrder(key)) return unordered;
    if (i > 0 && keys[i - 1]! > key) inOrder = false;
  }
  if (!inOrder) sortKeys(keys);
  let copy: JsonObject | undefined = inOrder ? undefined : {};
  for (const key of keys) {
    checkKey(key);
    let member;
    try {
      member = sortedCopy(value[key]!, depth + 1);
    } catch (err) {
      throw withinStep(err, memberStep(key));
    }
    if (member === unordered) return unordered;
    if (copy === undefined && member !== value[key]) copy = { ...value };
    if (copy !== undefined) copy[key] = member;
  }
  return copy ?? value;
}

/** Keys a payload object usually has fit an insertion sort, which unlike Array.prototype.sort allocates nothing (V8 copies into a work array). */
const insertionSortMaxKeys = 24;

/** Sorts in place by UTF-16 code units, as Array.prototype.sort does by default. */
function sortKeys(keys: string[]): void {
  if (keys.length > insertionSortMaxKeys) {
    keys.sort();
    return;
  }
  for (let i = 1; i < keys.length; i++) {
    const key = keys[i]!;
    let j = i - 1;
    for (; j >= 0 && keys[j]! > key; j--) keys[j + 1] = keys[j]!;
    keys[j + 1] = key;
  }
}

/** Whether V8 keeps this key where it was inserted: not integer-like (conservatively, not starting with a digit), not "__proto__". */
function keepsInsertionOrder(key: string): boolean {
  const first = key.charCodeAt(0);
  return !(first >= 48 && first <= 57) && key !== "__proto__";
}

/** The canonical text written by hand, for objects whose keys V8 would reorder. */
function write(value: JsonValue, depth: number): string {
  if (typeof value !== "object" || value === null) {
    checkLeaf(value);
    return JSON.stringify(value);
  }
  checkDepth(depth);
  if (Array.isArray(value)) {
    const items: string[] = [];
    for (let i = 0; i < value.length; i++) {
      try {
        items.push(write(value[i]!, depth + 1));
      } catch (err) {
        throw withinStep(err, elementStep(i));
      }
    }
    return `[${items.join(",")}]`;
  }
  const members: string[] = [];
  for (const key of Object.keys(value).sort()) {
    checkKey(key);
    try {
      members.push(`${JSON.stringify(key)}:${write(value[key] as JsonValue, depth + 1)}`);
    } catch (err) {
      throw withinStep(err, memberStep(key));
    }
  }
  return `{${members.join(",")}}`;
}
