/**
 * The tally CLI's pure pieces: what the arguments ask for, how events and
 * tables are printed, how input is read and placed, how acks are paced and
 * how a refusal is told in the input's terms. The commands against a real
 * server are in tests/e2e/cli.test.ts.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { InvalidArgumentError } from "commander";
import { afterEach, describe, expect, it, vi } from "vitest";
import { StatsResponseSchema, StoredEventSchema, SubscribeRequest_Start } from "../../gen/aggregator/v1/aggregator_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { AckBatcher } from "../../src/cli/ack-batcher.js";
import { seqArgument, timestampArgument } from "../../src/cli/arguments.js";
import { reconnectDelayMs } from "../../src/cli/backoff.js";
import { BatchPositions } from "../../src/cli/batch-positions.js";
import { whatToRun } from "../../src/cli/commands.js";
import { describePosition, readInput, type InputItem } from "../../src/cli/event-input.js";
import { describeFailure } from "../../src/cli/failure.js";
import { resumeRequest } from "../../src/cli/follow.js";
import { inputLines } from "../../src/cli/input-lines.js";
import { explainRefusal } from "../../src/cli/publish-refusal.js";
import { eventJsonLine, eventLine, plural } from "../../src/cli/render.js";
import { duration, statsLines } from "../../src/cli/stats.js";
import { tableLines } from "../../src/cli/table.js";
import { subscribeRequestOf } from "../../src/cli/tail.js";
import { drainMicrotasks } from "../support/promises.js";

const storedEvent = create(StoredEventSchema, {
  seq: 42n,
  topic: "orders",
  eventId: "evt 1",
  source: "checkout",
  timestamp: timestampFromDate(new Date("2025-10-24T10:00:00Z")),
  payload: { amount: 100, tags: ["a", "b"] },
  receivedAt: timestampFromDate(new Date("2025-10-24T10:00:01.5Z")),
});

function event(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { topic: "orders", event_id: id, timestamp: "2025-10-24T10:00:00Z", source: "s", payload: { n: 1 }, ...extra };
}

async function* chunks(...parts: string[]): AsyncGenerator<Buffer> {
  for (const part of parts) yield Buffer.from(part);
}

async function items(...parts: string[]): Promise<InputItem[]> {
  const all: InputItem[] = [];
  for await (const item of readInput(chunks(...parts))) all.push(item);
  return all;
}

/** Each item as "position: event_id" or "position: problem; problem". */
function summary(all: InputItem[]): string[] {
  return all.map((i) => `${describePosition(i.position)}: ${i.ok ? i.event.eventId : i.problems.join("; ")}`);
}

describe("what tally runs", () => {
  it("runs the server with no arguments or with flags, a client for a command word, and refuses any other word", () => {
    expect(whatToRun([])).toBe("server");
    expect(whatToRun(["--port", "9000"])).toBe("server");
    expect(whatToRun(["--help"])).toBe("server");
    expect(whatToRun(["tail", "--topic", "x"])).toBe("client");
    expect(whatToRun(["help"])).toBe("client");
    expect(whatToRun(["serve"])).toBe("unknown");
  });
});

describe("arguments", () => {
  it("reads a seq as a bigint, all 64 bits of it, and refuses what is not one", () => {
    expect(seqArgument("18446744073709551615")).toBe(2n ** 64n - 1n);
    expect(seqArgument(" 7 ")).toBe(7n);
    expect(() => seqArgument("18446744073709551616")).toThrow(InvalidArgumentError);
    expect(() => seqArgument("-1")).toThrow(InvalidArgumentError);
    expect(() => seqArgument("1e3")).toThrow(InvalidArgumentError);
  });

  it("reads --since with the server's RFC 3339 rules", () => {
    expect(timestampArgument("2025-10-24T10:00:00+02:00").seconds).toBe(BigInt(Date.parse("2025-10-24T08:00:00Z") / 1000));
    expect(() => timestampArgument("2025-02-30T00:00:00Z")).toThrow(/RFC 3339/);
    expect(() => timestampArgument("yesterday")).toThrow(InvalidArgumentError);
  });

  it("turns tail's flags into a Subscribe request: --new is START_NEW, --after N is after_seq, --after 0 the beginning even for a consumer", () => {
    expect(subscribeRequestOf({ target: "", topic: "orders" })).toMatchObject({ topic: "orders", topicPrefix: "", afterSeq: 0n, start: SubscribeRequest_Start.UNSPECIFIED, consumer: "" });
    expect(subscribeRequestOf({ target: "", new: true, topicPrefix: "orders." })).toMatchObject({ topicPrefix: "orders.", start: SubscribeRequest_Start.NEW });
    expect(subscribeRequestOf({ target: "", after: 17n, consumer: "c" })).toMatchObject({ afterSeq: 17n, start: SubscribeRequest_Start.UNSPECIFIED, consumer: "c" });
    expect(subscribeRequestOf({ target: "", after: 0n, consumer: "c" })).toMatchObject({ afterSeq: 0n, start: SubscribeRequest_Start.BEGINNING });
  });

  it("resumes after the point reached with the same filters and consumer, and from nothing at the beginning", () => {
    const request = { topic: "orders", consumer: "c", start: SubscribeRequest_Start.NEW };
    expect(resumeRequest(request, undefined)).toMatchObject({ topic: "orders", consumer: "c", start: SubscribeRequest_Start.NEW, afterSeq: 0n });
    expect(resumeRequest(request, 99n)).toMatchObject({ topic: "orders", consumer: "c", start: SubscribeRequest_Start.UNSPECIFIED, afterSeq: 99n });
    expect(resumeRequest(request, 0n)).toMatchObject({ start: SubscribeRequest_Start.BEGINNING, afterSeq: 0n });
  });

  it("backs off from about 100 ms, doubling, to at most 5 s", () => {
    expect(reconnectDelayMs(1, () => 1)).toBe(100);
    expect(reconnectDelayMs(1, () => 0)).toBe(50);
    expect(reconnectDelayMs(3, () => 1)).toBe(400);
    expect(reconnectDelayMs(50, () => 1)).toBe(5000);
    expect(reconnectDelayMs(50, () => 0)).toBe(2500);
  });
});

describe("printing", () => {
  it("prints an event as seq, topic, event_id, source, timestamp and compact payload, quoting a field with a space", () => {
    expect(eventLine(storedEvent)).toBe('42 orders "evt 1" checkout 2025-10-24T10:00:00Z {"amount":100,"tags":["a","b"]}');
  });

  it("prints --json as proto JSON with snake_case names and 64-bit numbers as strings", () => {
    expect(JSON.parse(eventJsonLine(storedEvent))).toEqual({
      seq: "42",
      topic: "orders",
      event_id: "evt 1",
      timestamp: "2025-10-24T10:00:00Z",
      source: "checkout",
      payload: { amount: 100, tags: ["a", "b"] },
      received_at: "2025-10-24T10:00:01.500Z",
    });
  });

  it("lays a table out in columns, numbers to the right, the last column ragged", () => {
    const lines = tableLines([{ heading: "NAME" }, { heading: "N", align: "right" }, { heading: "NOTE" }], [["a", "1", "x"], ["bbbb", "100", ""]]);
    expect(lines).toEqual(["NAME    N  NOTE", "a       1  x", "bbbb  100"]);
  });

  it("shows stats as counters, then the largest topics", () => {
    const stats = create(StatsResponseSchema, {
      received: 5n,
      uniqueProcessed: 3n,
      duplicateDropped: 1n,
      conflicts: 1n,
      topics: [{ name: "orders", count: 3n }],
      topicCount: 1n,
      uptimeSeconds: 3725.5,
    });
    const lines = statsLines(stats);
    expect(lines[0]).toBe("received           5");
    expect(lines).toContain("uptime             1h 02m 05s (started -)");
    expect(lines.slice(-2)).toEqual(["TOPIC   EVENTS", "orders       3"]);
  });

  it("writes durations and counts the way people say them", () => {
    expect(duration(0.4)).toBe("0s");
    expect(duration(65)).toBe("1m 05s");
    expect(duration(90_061)).toBe("1d 01h 01m 01s");
    expect([plural(1, "event"), plural(2, "event"), plural(1, "batch"), plural(0, "batch")]).toEqual(["1 event", "2 events", "1 batch", "0 batches"]);
  });

  it("prints a Connect error as its code and message, exit 1; a usage or input error exits 2", () => {
    expect(describeFailure(new ConnectError('token "x" lacks the "read" role', Code.PermissionDenied))).toEqual({
      text: 'permission_denied: token "x" lacks the "read" role',
      code: 1,
    });
  });
});

describe("reading input", () => {
  it("splits lines across chunk boundaries, with CRLF, and numbers them", async () => {
    const lines: string[] = [];
    for await (const l of inputLines(chunks("ab", "c\r\nd", "e\n\nf"))) lines.push(`${l.line}:${l.bytes.toString()}`);
    expect(lines).toEqual(["1:abc", "2:de", "3:", "4:f"]);
  });

  it("refuses a line longer than the limit instead of holding it", async () => {
    const read = async () => {
      for await (const _ of inputLines(chunks("x".repeat(10), "y".repeat(10)), 1, 15)) void _;
    };
    await expect(read()).rejects.toThrow(/line 1: longer than 15 bytes/);
  });

  it("reads NDJSON a line at a time, skipping blank lines; a line may hold an array or {events: [...]}", async () => {
    const text = [JSON.stringify(event("a")), "", "  ", JSON.stringify([event("b"), event("c")]), JSON.stringify({ events: [event("d")] })].join("\n");
    expect(summary(await items(text))).toEqual(["line 1: a", "line 4, events[0]: b", "line 4, events[1]: c", "line 5, events[0]: d"]);
  });

  it("names the line and field of each bad event, in the server's words, and goes on", async () => {
    const text = [
      JSON.stringify(event("a")),
      '{"topic": "orders", oops}',
      JSON.stringify(event("", { source: "" })),
      JSON.stringify(event("b")),
      '{"topic":"t","event_id":"n","timestamp":"2025-10-24T10:00:00Z","source":"s","payload":{"n":12345678901234567890}}',
    ].join("\n");
    expect(summary(await items(text))).toEqual([
      "line 1: a",
      expect.stringMatching(/^line 2: not JSON: /),
      "line 3: event_id: is required (1-255 characters); source: is required (1-255 characters)",
      "line 4: b",
      expect.stringMatching(/^line 5: payload\.n: number 12345678901234567890 cannot be stored exactly/),
    ]);
  });

  it("refuses what JSON.parse would quietly change: bytes that are not UTF-8", async () => {
    const bad = Buffer.concat([Buffer.from('{"topic":"t","event_id":"x","timestamp":"2025-10-24T10:00:00Z","source":"s","payload":{"k":"'), Buffer.from([0xff]), Buffer.from('"}}')]);
    const all: InputItem[] = [];
    for await (const item of readInput((async function* () { yield bad; })())) all.push(item);
    expect(all).toHaveLength(1);
    expect(all[0]!.ok).toBe(false);
  });

  it("reads a JSON array, or a pretty-printed {events: [...]} document, whole; items are placed by index", async () => {
    expect(summary(await items("  [", JSON.stringify(event("a")), ",", JSON.stringify(event("b", { payload: [] })), "]"))).toEqual([
      "events[0]: a",
      "events[1]: payload: must be a JSON object, got an array",
    ]);
    const pretty = JSON.stringify({ events: [event("a"), event("b")] }, null, 2);
    expect(summary(await items(pretty))).toEqual(["events[0]: a", "events[1]: b"]);
  });

  it("in a document, an item must be an event itself, not a nested array", async () => {
    expect(summary(await items(JSON.stringify([[event("a")]])))).toEqual(["events[0]: event: must be a JSON object"]);
  });

  it("places a syntax error in a pretty-printed document on its line where V8 says where, and keeps the message on one line", async () => {
    const placed = await items('{"events": [\n  {"topic": "a"},\n  {"topic" "b"}\n]}');
    expect(summary(placed)).toEqual([expect.stringMatching(/^line 3: not JSON: /)]);
    // V8 words some errors without a position but with a quote of the text around them, line breaks and all.
    const quoted = await items('{"events": [\n  {"topic": "a"},\n  {"topic": oops}\n]}');
    expect(summary(quoted)).toEqual([expect.stringMatching(/^(the input|line 3): not JSON: [^\n]*$/)]);
  });

  it("reads nothing from empty or blank input", async () => {
    expect(await items()).toEqual([]);
    expect(await items("\n  \n")).toEqual([]);
    expect(await items("[]")).toEqual([]);
  });

  it("builds events the server reads back as sent: camelCase accepted, timestamps exact", async () => {
    const [item] = await items(JSON.stringify({ ...event("x", { timestamp: "2025-10-24T12:00:00.123456789+02:00" }), event_id: undefined, eventId: "x" }));
    expect(item!.ok).toBe(true);
    if (!item!.ok) return;
    expect(item!.event).toMatchObject({ topic: "orders", eventId: "x", source: "s", payload: { n: 1 } });
    expect(item!.event.timestamp).toMatchObject({ seconds: BigInt(Date.parse("2025-10-24T10:00:00Z") / 1000), nanos: 123456789 });
  });
});

describe("telling a refusal in the input's terms", () => {
  it("places messages[i].events[j] on the input line it came from, with each field violation on a line of its own", () => {
    const positions = new BatchPositions();
    positions.add([{ line: 1 }, { line: 2 }]);
    positions.add([{ line: 4 }, { line: 5, index: 1 }]);
    const err = new ConnectError(
      "invalid batch, none of its events stored (1 invalid event): messages[1].events[1].payload: is 110 bytes as JSON, at most 50 allowed",
      Code.InvalidArgument,
      undefined,
      [{ desc: BadRequestSchema, value: { fieldViolations: [{ field: "messages[1].events[1].payload", description: "is 110 bytes as JSON, at most 50 allowed" }] } }],
    );
    const lines = explainRefusal(err, positions);
    expect(lines[0]).toBe("invalid_argument: invalid batch, none of its events stored (1 invalid event):");
    expect(lines[1]).toBe("  line 5, events[1]: payload: is 110 bytes as JSON, at most 50 allowed");
    expect(lines[2]).toMatch(/batches before the refused one are stored/);
  });

  it("annotates a path in a message without details, and falls back to where a forgotten batch began", () => {
    const positions = new BatchPositions(1);
    positions.add([{ line: 1 }]);
    positions.add([{ line: 2 }]);
    const err = new ConnectError('stream message 0 refused: messages[0].events[0].topic "x"; messages[1].events[0].topic "y"', Code.PermissionDenied);
    expect(explainRefusal(err, positions)[0]).toBe(
      'permission_denied: stream message 0 refused: messages[0].events[0].topic (the batch from line 1) "x"; messages[1].events[0].topic (line 2) "y"',
    );
  });
});

describe("AckBatcher", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("acks the highest printed seq once 100 events were printed, one Ack in flight at a time", async () => {
    const acked: bigint[] = [];
    let release: () => void = () => undefined;
    const ack = vi.fn((seq: bigint) => {
      acked.push(seq);
      return new Promise<void>((resolve) => (release = resolve));
    });
    const batcher = new AckBatcher(ack, () => undefined, { maxEvents: 3, maxDelayMs: 60_000 });
    batcher.printed(1n);
    batcher.printed(2n);
    expect(acked).toEqual([]);
    batcher.printed(3n);
    expect(acked).toEqual([3n]);
    for (const seq of [4n, 5n, 6n, 7n]) batcher.printed(seq);
    // The first Ack is still on its way: the next waits for it.
    expect(acked).toEqual([3n]);
    release();
    await drainMicrotasks();
    expect(batcher.ackedSeq).toBe(3n);
    // close() acks what is left, once, and waits for it.
    const closed = batcher.close();
    await drainMicrotasks();
    release();
    await closed;
    expect(acked).toEqual([3n, 7n]);
    expect(batcher.ackedSeq).toBe(7n);
  });

  it("acks after the delay when fewer events were printed, and not at all when nothing new was", async () => {
    vi.useFakeTimers();
    const acked: bigint[] = [];
    const batcher = new AckBatcher(async (seq) => void acked.push(seq), () => undefined, { maxEvents: 100, maxDelayMs: 200 });
    batcher.printed(5n);
    batcher.printed(4n); // older: changes nothing
    expect(acked).toEqual([]);
    await vi.advanceTimersByTimeAsync(200);
    expect(acked).toEqual([5n]);
    await vi.advanceTimersByTimeAsync(1_000);
    await batcher.close();
    expect(acked).toEqual([5n]);
  });

  it("tries again after unavailable, and stops at any other refusal, reporting it once", async () => {
    vi.useFakeTimers();
    const failures: unknown[] = [];
    let answer: ConnectError | undefined = new ConnectError("restarting", Code.Unavailable);
    const ack = vi.fn(async () => {
      if (answer !== undefined) throw answer;
    });
    const batcher = new AckBatcher(ack, (err) => failures.push(err), { maxEvents: 100, maxDelayMs: 200 });
    batcher.printed(1n);
    await vi.advanceTimersByTimeAsync(200);
    expect(failures).toEqual([]);
    expect(batcher.ackedSeq).toBe(0n);
    answer = new ConnectError("no consumer c", Code.NotFound);
    await vi.advanceTimersByTimeAsync(200);
    expect(failures).toHaveLength(1);
    batcher.printed(2n);
    await vi.advanceTimersByTimeAsync(1_000);
    await batcher.close();
    expect(ack).toHaveBeenCalledTimes(2);
  });
});
