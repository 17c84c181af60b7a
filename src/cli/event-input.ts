import type { Violation } from "../codec/violations.js";
import { checkEvents, parseJsonText, problemsOf, type CheckedEvent } from "./event-check.js";
import { inputLines } from "./input-lines.js";

/**
 * Where an event is in the input: its line (NDJSON) and, on a line of
 * several events, its place there; or, in a whole JSON document, its place
 * in the array.
 */
export interface Position {
  line?: number;
  index?: number;
}

/** One item of input: an event ready to send, or what is wrong at that position. */
export type InputItem = ({ ok: true; position: Position } & CheckedEvent) | { ok: false; position: Position; problems: string[] };

/** "line 12", "line 12, events[3]", "events[3]", "the input": how messages point into the input. */
export function describePosition(p: Position): string {
  if (p.line === undefined) return p.index === undefined ? "the input" : `events[${p.index}]`;
  return p.index === undefined ? `line ${p.line}` : `line ${p.line}, events[${p.index}]`;
}

/** Places the server's events[i] of a checked value in the input; -1 is the value as a whole. */
type Placer = (index: number) => Position;

/**
 * Reads events from NDJSON or from one JSON document, told apart by the
 * input's first character and first line:
 * - NDJSON (one event per line; a line may also hold an array or
 *   {"events": [...]}): read and checked a line at a time, in bounded memory;
 * - a JSON array, or an object spread over lines (a pretty-printed
 *   {"events": [...]}) whose first line is not JSON by itself: read whole,
 *   then checked an item at a time.
 * Yields each event, or the problems at a position. Blank lines are skipped.
 */
export async function* readInput(chunks: AsyncIterable<Buffer>): AsyncGenerator<InputItem> {
  const iterator = chunks[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let first: number | undefined;
  while (first === undefined) {
    const next = await iterator.next();
    if (next.done === true) return; // empty, or only whitespace: no events
    head.push(next.value);
    first = firstNonBlank(next.value);
  }
  const all = (async function* () {
    yield* head;
    for (let next = await iterator.next(); next.done !== true; next = await iterator.next()) yield next.value;
  })();
  if (first === 0x5b /* [ */) yield* documentItems(await readAll(all), 1);
  else yield* lineItems(all);
}

async function* lineItems(chunks: AsyncIterable<Buffer>): AsyncGenerator<InputItem> {
  const lines = inputLines(chunks);
  let seenJson = false;
  for await (const { line, bytes } of lines) {
    if (firstNonBlank(bytes) === undefined) continue;
    let value: unknown;
    try {
      value = parseJsonText(bytes);
    } catch (err) {
      if (!seenJson && err instanceof SyntaxError) {
        // Not NDJSON after all: a document spread over lines. Read it whole, from this line on.
        const rest: Buffer[] = [bytes];
        for await (const more of lines) rest.push(Buffer.from("\n"), more.bytes);
        yield* documentItems(Buffer.concat(rest), line);
        return;
      }
      yield* refused(err, () => ({ line }));
      continue;
    }
    seenJson = true;
    const single = !Array.isArray(value) && !isEventsObject(value);
    yield* checkedItems(value, (index) => (single || index < 0 ? { line } : { line, index }));
  }
}

/** A whole document, the line of a syntax error counted from `firstLine`. Its items are checked one by one, so one must be an event itself. */
function* documentItems(bytes: Buffer, firstLine: number): Generator<InputItem> {
  let value: unknown;
  try {
    value = parseJsonText(bytes);
  } catch (err) {
    if (err instanceof SyntaxError) {
      const line = lineOfSyntaxError(err, bytes);
      yield* refused(err, () => (line === undefined ? {} : { line: firstLine + line }));
    }
    else yield* refused(err, (index) => (index < 0 ? {} : { index }));
    return;
  }
  const items = Array.isArray(value) ? value : isEventsObject(value) ? value.events : [value];
  for (let index = 0; index < items.length; index++) yield* checkedItems([items[index]], () => ({ index }));
}

function* checkedItems(value: unknown, place: Placer): Generator<InputItem> {
  let checked: CheckedEvent[];
  try {
    checked = checkEvents(value);
  } catch (err) {
    yield* refused(err, place);
    return;
  }
  for (let i = 0; i < checked.length; i++) yield { ok: true, position: place(i), ...checked[i]! };
}

/** A refusal as one item per bad event, each with its fields in the server's words; rethrows anything that is not a refusal. */
function* refused(err: unknown, place: Placer): Generator<InputItem> {
  if (err instanceof SyntaxError) {
    yield { ok: false, position: place(-1), problems: [`not JSON: ${syntaxMessage(err)}`] };
    return;
  }
  const violations = problemsOf(err);
  if (violations === undefined) throw err;
  const byIndex = new Map<number, Violation[]>();
  for (const v of violations) byIndex.set(v.index, [...(byIndex.get(v.index) ?? []), v]);
  for (const [index, vs] of byIndex) yield { ok: false, position: place(index), problems: vs.map((v) => `${v.field}: ${v.description}`) };
}

/** JSON.parse's message on one line: V8 quotes the input around the error, line breaks and all. */
function syntaxMessage(err: SyntaxError): string {
  return err.message.replace(/\r/g, "\\r").replace(/\n/g, "\\n");
}

/** The 0-based line of a syntax error in a document, from V8's "at position N"; undefined when it does not say (its quote of the input then shows where). */
function lineOfSyntaxError(err: SyntaxError, bytes: Buffer): number | undefined {
  const match = /at position (\d+)/.exec(err.message);
  if (match === null) return undefined;
  const text = bytes.toString("utf8");
  const end = Math.min(text.length, Number(match[1]));
  let lines = 0;
  for (let i = 0; i < end; i++) if (text.charCodeAt(i) === 10) lines++;
  return lines;
}

function isEventsObject(value: unknown): value is { events: unknown[] } {
  return typeof value === "object" && value !== null && !Array.isArray(value) && Array.isArray((value as { events?: unknown }).events);
}

function firstNonBlank(bytes: Uint8Array): number | undefined {
  for (const byte of bytes) if (byte !== 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d) return byte;
  return undefined;
}

async function readAll(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const all: Buffer[] = [];
  for await (const chunk of chunks) all.push(chunk);
  return Buffer.concat(all);
}
