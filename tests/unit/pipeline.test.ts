import { describe, expect, it, vi } from "vitest";
import type { Caller } from "../../src/auth/caller.js";
import { CanonicalPayload } from "../../src/codec/canonical-json.js";
import type { DecodedBatch, DecodedEvent } from "../../src/codec/decoded-batch.js";
import { RefusedPayload } from "../../src/codec/decoded-batch.js";
import { ValidationError, type Violation } from "../../src/codec/violations.js";
import { PublishPipeline } from "../../src/ingest/pipeline.js";
import { IngestQueue } from "../../src/ingest/queue.js";
import { OverloadedError } from "../../src/ingest/refusals.js";
import { AppendStatus, type EventRecord } from "../../src/store/types.js";
import { ScriptedStore } from "../support/scripted-store.js";
import { drainMicrotasks, never, watch } from "../support/promises.js";

/** The permission refusal a fake caller throws (the real gate throws a ConnectError). */
class Refused extends Error {}

/** A Caller that records what it was asked, and refuses any batch touching one of `forbidden`. */
function fakeCaller(forbidden: string[] = []) {
  const authorizePublish = vi.fn<Caller["authorizePublish"]>((events, unit = "request") => {
    if (events.some((e) => e !== undefined && forbidden.includes(e.topic))) throw new Refused(`${unit} refused`);
  });
  const caller: Caller = { name: "tester", authorizePublish, authorizeRead: () => undefined, authorizeConsumer: () => undefined, mayRead: () => true };
  return { caller, authorizePublish };
}

function event(eventId: string, overrides: Partial<DecodedEvent> = {}): DecodedEvent {
  return {
    topic: "orders",
    eventId,
    timestamp: { $typeName: "google.protobuf.Timestamp", seconds: 1761300000n, nanos: 0 } as never,
    source: "test",
    payload: new CanonicalPayload('{"a":1}'),
    ...overrides,
  };
}

function batch(...events: (DecodedEvent | undefined)[]): DecodedBatch {
  return { events, violations: [] };
}

/** A batch of valid events with the given ids. */
function valid(...ids: string[]): DecodedBatch {
  return batch(...ids.map((id) => event(id)));
}

function setup(queueLimits = { maxEvents: 1_000, maxBytes: 10_000_000 }) {
  const store = new ScriptedStore();
  const queue = new IngestQueue(store, queueLimits);
  const pipeline = new PublishPipeline(queue, { maxBatch: 10, maxPayloadBytes: 100 });
  return { store, queue, pipeline };
}

/** The violations of a ValidationError, as "index:field". */
function violationKeys(err: unknown): string[] {
  if (!(err instanceof ValidationError)) throw new Error(`expected a ValidationError, got ${String(err)}`);
  return err.violations.map((v) => `${v.index}:${v.field}`);
}

describe("PublishPipeline.publish", () => {
  it("publish authorizes on the decoded topics before validating: a refused caller stores nothing and the store never sees the batch", async () => {
    const { store, queue, pipeline } = setup();
    const { caller, authorizePublish } = fakeCaller(["secret"]);
    // Invalid as well as forbidden: the refusal must be the caller's, since authorization comes first.
    const request = batch(event("e0"), event("", { topic: "secret" }));

    await expect(pipeline.publish(request, caller)).rejects.toBeInstanceOf(Refused);
    expect(authorizePublish).toHaveBeenCalledTimes(1);
    expect(authorizePublish.mock.calls[0]![0]).toBe(request.events);
    expect(pipeline.rejectedInvalid).toBe(0);
    expect(store.appends).toHaveLength(0);
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
  });

  it("publish asks the caller once per request, with the decoded events and no stream unit", async () => {
    const { store, pipeline } = setup();
    const { caller, authorizePublish } = fakeCaller();
    const request = batch(event("e0", { topic: "orders.eu" }), undefined, event("e2", { topic: "billing" }));
    request.violations.push({ index: 1, field: "payload", description: "could not be decoded" });

    await expect(pipeline.publish(request, caller)).rejects.toBeInstanceOf(ValidationError);
    expect(authorizePublish.mock.calls).toEqual([[request.events]]);
    expect(authorizePublish.mock.calls[0]![0].map((e) => e?.topic)).toEqual(["orders.eu", undefined, "billing"]);
    expect(store.appends).toHaveLength(0);
  });

  it("an invalid batch is refused whole with every violation, counted in rejectedInvalid, and never queued", async () => {
    const { store, queue, pipeline } = setup();
    const { caller } = fakeCaller();
    const decoderViolation: Violation = { index: 3, field: "payload", description: "could not be decoded" };
    const request: DecodedBatch = {
      events: [
        event("e0"),
        event("e1", { topic: "", payload: undefined }),
        event("e2", { timestamp: undefined, payload: new RefusedPayload("is nested deeper than 32 levels") }),
        undefined,
      ],
      violations: [decoderViolation],
    };

    const err = await pipeline.publish(request, caller).catch((e: unknown) => e);
    expect(violationKeys(err)).toEqual(["1:topic", "1:payload", "2:timestamp", "2:payload", "3:payload"]);
    expect((err as ValidationError).violations).toContainEqual(decoderViolation);
    expect((err as ValidationError).violations).toContainEqual({ index: 2, field: "payload", description: "is nested deeper than 32 levels" });
    expect(pipeline.rejectedInvalid).toBe(4); // every event of the batch, the valid one too
    expect(store.appends).toHaveLength(0);
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });

    // An empty batch is one refused request.
    await expect(pipeline.publish(batch(), caller)).rejects.toBeInstanceOf(ValidationError);
    expect(pipeline.rejectedInvalid).toBe(5);
    // Too many events: each counts.
    const tooMany = valid(...Array.from({ length: 11 }, (_, i) => `m${i}`));
    expect(violationKeys(await pipeline.publish(tooMany, caller).catch((e: unknown) => e))).toEqual(["-1:events"]);
    expect(pipeline.rejectedInvalid).toBe(16);
    expect(store.appends).toHaveLength(0);
  });

  it("a valid batch is queued as store records (fixed-width timestamp, canonical payload text) and its outcome counted (accepted/duplicates/conflicts)", async () => {
    const { store, queue, pipeline } = setup();
    const { caller } = fakeCaller();
    const request = batch(
      event("e0"),
      event("e1", { timestamp: { $typeName: "google.protobuf.Timestamp", seconds: 1761300001n, nanos: 5 } as never }),
      event("e2", { topic: "billing", source: "shop", payload: new CanonicalPayload('{"a":[true,null],"b":"x"}') }),
      event("e3", { timestamp: { $typeName: "google.protobuf.Timestamp", seconds: 1761300000n, nanos: 120_000_000 } as never }),
    );

    const published = pipeline.publish(request, caller);
    expect(store.batches).toEqual([["e0", "e1", "e2", "e3"]]);
    const stored = store.at(0).records;
    expect(stored).toEqual([
      { topic: "orders", eventId: "e0", ts: "2025-10-24T10:00:00.000000000Z", source: "test", payload: '{"a":1}' },
      { topic: "orders", eventId: "e1", ts: "2025-10-24T10:00:01.000000005Z", source: "test", payload: '{"a":1}' },
      { topic: "billing", eventId: "e2", ts: "2025-10-24T10:00:00.000000000Z", source: "shop", payload: '{"a":[true,null],"b":"x"}' },
      { topic: "orders", eventId: "e3", ts: "2025-10-24T10:00:00.120000000Z", source: "test", payload: '{"a":1}' },
    ]);
    // Queued with the memory the records hold: two bytes a character.
    const chars = stored.reduce((n, r) => n + r.topic.length + r.eventId.length + r.ts.length + r.source.length + r.payload.length, 0);
    expect(queue.depth).toEqual({ events: 4, bytes: 2 * chars });

    store.at(0).answer([AppendStatus.accepted, AppendStatus.duplicate, AppendStatus.accepted, AppendStatus.conflict], [41, 7, 42, 9]);
    const outcome = await published;
    expect(outcome).toEqual({
      statuses: new Uint8Array([1, 2, 1, 3]),
      seqs: new Float64Array([41, 7, 42, 9]),
      accepted: 2,
      duplicates: 1,
      conflicts: 1,
    });
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
    expect(pipeline.rejectedInvalid).toBe(0);
  });

  it("publish is refused at once with OverloadedError when the queue is full, and the store never sees the batch", async () => {
    const { store, queue, pipeline } = setup({ maxEvents: 2, maxBytes: 10_000_000 });
    const { caller } = fakeCaller();
    const first = pipeline.publish(valid("a", "b"), caller);

    await expect(pipeline.publish(valid("c"), caller)).rejects.toBeInstanceOf(OverloadedError);
    expect(queue.rejectedEvents).toBe(1);
    expect(pipeline.rejectedInvalid).toBe(0);
    expect(store.batches).toEqual([["a", "b"]]);

    store.acceptAll();
    await expect(first).resolves.toMatchObject({ accepted: 2 });
  });

  it("a failed commit fails the publish with the store's error", async () => {
    const { store, queue, pipeline } = setup();
    const { caller } = fakeCaller();
    const published = pipeline.publish(valid("a"), caller);
    const diskFull = new Error("disk full");
    store.at(0).fail(diskFull);
    await expect(published).rejects.toBe(diskFull);
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
  });
});

describe("PublishStream via PublishPipeline.openStream", () => {
  it("stream messages are authorized with their message index, and the totals add up over messages", async () => {
    const { store, pipeline } = setup();
    const { caller, authorizePublish } = fakeCaller();
    const stream = pipeline.openStream(caller, never);
    const messages = [valid("a0", "a1"), valid("b0"), valid("c0", "c1", "c2")];

    for (const m of messages) await stream.feed(m);
    expect(authorizePublish.mock.calls).toEqual([
      [messages[0]!.events, "stream message 0", "messages[0]."],
      [messages[1]!.events, "stream message 1", "messages[1]."],
      [messages[2]!.events, "stream message 2", "messages[2]."],
    ]);
    // feed resolves once a message is queued, not once it has committed.
    expect(store.batches).toEqual([["a0", "a1"], ["b0"], ["c0", "c1", "c2"]]);

    store.at(0).answer([AppendStatus.accepted, AppendStatus.duplicate]);
    store.at(1).answer([AppendStatus.conflict]);
    store.at(2).answer([AppendStatus.accepted, AppendStatus.accepted, AppendStatus.duplicate]);
    await stream.settle();
    expect(stream.result()).toEqual({ received: 6n, accepted: 3n, duplicates: 2n, conflicts: 1n, batches: 3n });
  });

  it("a refused stream message ends the stream with the caller's refusal, naming that message, and is never queued", async () => {
    const { store, pipeline } = setup();
    const { caller, authorizePublish } = fakeCaller(["secret"]);
    const stream = pipeline.openStream(caller, never);

    await stream.feed(valid("a0"));
    const forbidden = batch(event("b0", { topic: "secret" }));
    await expect(stream.feed(forbidden)).rejects.toThrow(new Refused("stream message 1 refused"));
    expect(authorizePublish.mock.calls[1]).toEqual([forbidden.events, "stream message 1", "messages[1]."]);
    expect(pipeline.rejectedInvalid).toBe(0);
    expect(store.batches).toEqual([["a0"]]);
  });

  it("settle waits until every queued message has committed or failed, and result then reports the first failure", async () => {
    const { store, pipeline } = setup();
    const { caller } = fakeCaller();
    const stream = pipeline.openStream(caller, never);
    await stream.feed(valid("a0"));
    await stream.feed(valid("b0"));

    const settled = watch(stream.settle());
    await drainMicrotasks();
    expect(settled.settled()).toBe(false);

    store.at(1).answer([AppendStatus.accepted]);
    await drainMicrotasks();
    expect(settled.settled()).toBe(false);

    const diskFull = new Error("disk full");
    store.at(0).fail(diskFull);
    await expect(settled.promise).resolves.toBeUndefined(); // settle itself never throws
    expect(() => stream.result()).toThrow(diskFull);
  });

  it("a commit failure of an earlier message is thrown by the next feed(), which queues nothing more, and by result()", async () => {
    const { store, pipeline } = setup();
    const { caller } = fakeCaller();
    const stream = pipeline.openStream(caller, never);
    await stream.feed(valid("a0"));
    await stream.feed(valid("b0"));

    const diskFull = new Error("disk full");
    store.at(0).fail(diskFull);
    store.at(1).answer([AppendStatus.accepted]);
    await stream.settle();

    await expect(stream.feed(valid("c0"))).rejects.toBe(diskFull);
    expect(store.appends).toHaveLength(2);
    expect(() => stream.result()).toThrow(diskFull);
  });

  it("reports the first commit failure, whatever fails later", async () => {
    const { store, pipeline } = setup();
    const { caller } = fakeCaller();
    const stream = pipeline.openStream(caller, never);
    await stream.feed(valid("a0"));
    await stream.feed(valid("b0"));
    const first = new Error("disk full");
    store.at(0).fail(first);
    store.at(1).fail(new Error("a later failure"));
    await stream.settle();
    expect(() => stream.result()).toThrow(first);
  });

  it("a validation error on message N leaves the messages before it queued, and they still commit", async () => {
    const { store, pipeline } = setup();
    const { caller, authorizePublish } = fakeCaller();
    const stream = pipeline.openStream(caller, never);
    await stream.feed(valid("a0", "a1"));
    await stream.feed(valid("b0"));

    const invalid = batch(event("c0"), event("", { source: "" }), event("c2"));
    const err = await stream.feed(invalid).catch((e: unknown) => e);
    // Indices are within the message, and the message is named, so a client can tell which of its batches.
    expect(violationKeys(err)).toEqual(["1:event_id", "1:source"]);
    expect((err as ValidationError).violations.map((v) => v.message)).toEqual([2, 2]);
    expect((err as ValidationError).message).toContain("messages[2].events[1].event_id");
    expect(authorizePublish.mock.calls[2]).toEqual([invalid.events, "stream message 2", "messages[2]."]);
    expect(pipeline.rejectedInvalid).toBe(3);
    expect(store.batches).toEqual([["a0", "a1"], ["b0"]]);

    // The stream is over, but what it queued before the error commits, and settle waits for it.
    const settled = watch(stream.settle());
    await drainMicrotasks();
    expect(settled.settled()).toBe(false);
    store.acceptAll();
    await settled.promise;
    expect(stream.result()).toMatchObject({ received: 3n, accepted: 3n, duplicates: 0n, conflicts: 0n });
  });

  it("a stream waits for room instead of being refused, and an abort of the stream ends the wait", async () => {
    const { store, queue, pipeline } = setup({ maxEvents: 2, maxBytes: 10_000_000 });
    const { caller } = fakeCaller();
    const unary = pipeline.publish(valid("u0", "u1"), caller);

    const controller = new AbortController();
    const stream = pipeline.openStream(caller, controller.signal);
    const first = watch(stream.feed(valid("a0")));
    await drainMicrotasks();
    expect(first.settled()).toBe(false);
    expect(queue.rejectedEvents).toBe(0);

    store.at(0).answer([AppendStatus.accepted, AppendStatus.accepted]);
    await unary;
    await first.promise;
    expect(store.batches).toEqual([["u0", "u1"], ["a0"]]);

    // a0 holds one event; two more do not fit, so the stream waits again until it is aborted.
    const second = stream.feed(valid("b0", "b1"));
    const cancelled = new Error("stream cancelled");
    controller.abort(cancelled);
    await expect(second).rejects.toBe(cancelled);
    expect(store.batches).toEqual([["u0", "u1"], ["a0"]]);

    store.at(1).answer([AppendStatus.duplicate]);
    await stream.settle();
    expect(stream.result()).toMatchObject({ received: 1n, accepted: 0n, duplicates: 1n });
  });
});
