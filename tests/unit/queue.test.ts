import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { IngestQueue } from "../../src/ingest/queue.js";
import { OverloadedError, ShuttingDownError } from "../../src/ingest/refusals.js";
import type { EventRecord } from "../../src/store/types.js";
import { ScriptedStore, type PendingAppend } from "../support/scripted-store.js";
import { drainMicrotasks, never, watch } from "../support/promises.js";

/** `n` distinct store records, tagged so a batch can be recognized in the store. */
function records(n: number, tag = "b"): EventRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    topic: "orders",
    eventId: `${tag}-${i}`,
    ts: "2025-10-24T10:00:00.000000000Z",
    source: "test",
    payload: "{}",
  }));
}

/** The tag of each batch the store received, in order. */
function tagsOf(store: ScriptedStore): string[] {
  return store.appends.map((a) => a.records[0]!.eventId.split("-")[0]!);
}

describe("IngestQueue", () => {
  it("refuses a batch at once when it would exceed the event bound, and counts the refused events", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 5, maxBytes: 1_000_000 });
    void queue.submit(records(3, "first"), 10);

    const refused = queue.submit(records(3, "over"), 10);
    await expect(refused).rejects.toBeInstanceOf(OverloadedError);
    await expect(refused).rejects.toMatchObject({ retryAfterSeconds: 1 });
    expect(queue.rejectedEvents).toBe(3);
    expect(tagsOf(store)).toEqual(["first"]);
    expect(queue.depth).toEqual({ events: 3, bytes: 10 });

    // Exactly reaching the bound is allowed.
    void queue.submit(records(2, "fits"), 10);
    expect(tagsOf(store)).toEqual(["first", "fits"]);
    expect(queue.depth).toEqual({ events: 5, bytes: 20 });
    expect(queue.rejectedEvents).toBe(3);
  });

  it("refuses a batch at once when it would exceed the byte bound, and counts the refused events", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 1_000, maxBytes: 100 });
    void queue.submit(records(1, "first"), 60);

    await expect(queue.submit(records(4, "over"), 41)).rejects.toBeInstanceOf(OverloadedError);
    expect(queue.rejectedEvents).toBe(4);
    expect(tagsOf(store)).toEqual(["first"]);
    expect(queue.depth).toEqual({ events: 1, bytes: 60 });

    // Exactly reaching the bound is allowed.
    void queue.submit(records(4, "fits"), 40);
    expect(tagsOf(store)).toEqual(["first", "fits"]);
    expect(queue.depth).toEqual({ events: 5, bytes: 100 });
  });

  it("an empty queue takes any one batch, however large, from a unary caller or a stream", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 2, maxBytes: 10 });

    const huge = queue.submit(records(50, "unary"), 10_000);
    expect(queue.depth).toEqual({ events: 50, bytes: 10_000 });
    expect(tagsOf(store)).toEqual(["unary"]);
    // But only while it is alone.
    await expect(queue.submit(records(1, "small"), 1)).rejects.toBeInstanceOf(OverloadedError);

    store.at(0).commit();
    await huge;
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });

    const { committed } = await queue.submitWhenRoom(records(30, "stream"), 5_000, never);
    expect(tagsOf(store)).toEqual(["unary", "stream"]);
    expect(queue.depth).toEqual({ events: 30, bytes: 5_000 });
    store.at(1).commit();
    await committed;
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
  });

  it("room is given back when a batch commits, and when its commit fails", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 2, maxBytes: 100 });

    const first = queue.submit(records(2, "a"), 100);
    await expect(queue.submit(records(1, "x"), 1)).rejects.toBeInstanceOf(OverloadedError);
    store.at(0).commit();
    await expect(first).resolves.toMatchObject({ statuses: new Uint8Array([1, 1]) });
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });

    const second = queue.submit(records(2, "b"), 100);
    await expect(queue.submit(records(1, "x"), 1)).rejects.toBeInstanceOf(OverloadedError);
    const diskFull = new Error("disk full");
    store.at(1).fail(diskFull);
    await expect(second).rejects.toBe(diskFull);
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });

    void queue.submit(records(2, "c"), 100);
    expect(tagsOf(store)).toEqual(["a", "b", "c"]);
    expect(queue.rejectedEvents).toBe(2);
  });

  it("waiting streams are granted room in the order they asked, a later one never overtaking an earlier one that does not fit yet", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 2, maxBytes: 1_000 });
    void queue.submit(records(2, "full"), 10);

    const granted: string[] = [];
    const wait = (n: number, tag: string) =>
      queue.submitWhenRoom(records(n, tag), n, never).then((r) => {
        granted.push(tag);
        return r;
      });
    const a = wait(1, "a");
    const b = wait(2, "b");
    const c = wait(1, "c"); // would fit beside a, but b asked first
    expect(queue.depth).toEqual({ events: 2, bytes: 10 });

    store.at(0).commit();
    await a;
    // Grants reserve room synchronously: only a holds room now.
    expect(queue.depth).toEqual({ events: 1, bytes: 1 });
    expect(tagsOf(store)).toEqual(["full", "a"]);

    store.at(1).commit();
    await b;
    expect(queue.depth).toEqual({ events: 2, bytes: 2 });
    expect(tagsOf(store)).toEqual(["full", "a", "b"]);

    store.at(2).commit();
    await c;
    expect(tagsOf(store)).toEqual(["full", "a", "b", "c"]);
    expect(granted).toEqual(["a", "b", "c"]);
  });

  it("a unary submit is refused while streams wait, so it cannot overtake them", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 3, maxBytes: 1_000 });
    void queue.submit(records(2, "first"), 10);
    const waiting = queue.submitWhenRoom(records(2, "stream"), 10, never);

    // One event would fit beside the first batch, but a stream is waiting.
    await expect(queue.submit(records(1, "unary"), 1)).rejects.toBeInstanceOf(OverloadedError);
    expect(queue.rejectedEvents).toBe(1);

    store.at(0).commit();
    await waiting;
    expect(tagsOf(store)).toEqual(["first", "stream"]);
  });

  it("a stream that asks for room while others wait queues behind them even when its batch would fit", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 3, maxBytes: 1_000 });
    void queue.submit(records(2, "first"), 10);
    const big = watch(queue.submitWhenRoom(records(2, "big"), 10, never));
    const small = watch(queue.submitWhenRoom(records(1, "small"), 1, never));

    await drainMicrotasks();
    expect(small.settled()).toBe(false);
    expect(tagsOf(store)).toEqual(["first"]);

    store.at(0).commit();
    await big.promise;
    await small.promise;
    expect(tagsOf(store)).toEqual(["first", "big", "small"]);
  });

  it("an aborted wait gives up its place and lets the next waiter in", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 2, maxBytes: 1_000 });
    void queue.submit(records(1, "first"), 10);

    const leaving = new AbortController();
    const blocked = queue.submitWhenRoom(records(2, "gone"), 10, leaving.signal); // does not fit yet
    const next = watch(queue.submitWhenRoom(records(1, "next"), 10, never)); // fits, but waits its turn
    await drainMicrotasks();
    expect(next.settled()).toBe(false);

    const wentAway = new Error("client went away");
    leaving.abort(wentAway);
    await expect(blocked).rejects.toBe(wentAway);
    // No commit happened: the abort alone let the next waiter in.
    await next.promise;
    expect(tagsOf(store)).toEqual(["first", "next"]);
    expect(queue.depth).toEqual({ events: 2, bytes: 20 });

    // The aborted batch never reaches the store, even once there is room again.
    store.at(0).commit();
    store.at(1).commit();
    await (await next.promise).committed;
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
    expect(tagsOf(store)).toEqual(["first", "next"]);
  });

  it("an abort without a reason fails the wait with the signal's AbortError", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 1, maxBytes: 1_000 });
    void queue.submit(records(1, "first"), 10);
    const leaving = new AbortController();
    const blocked = queue.submitWhenRoom(records(1, "gone"), 10, leaving.signal);
    leaving.abort();
    await expect(blocked).rejects.toMatchObject({ name: "AbortError" });
    expect(queue.depth).toEqual({ events: 1, bytes: 10 });
  });

  it("close refuses new work, fails the waiters with ShuttingDownError, and resolves only when accepted batches have answered", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 3, maxBytes: 1_000 });
    const committing = queue.submit(records(2, "a"), 10);
    const failing = queue.submit(records(1, "b"), 10);
    const waiter = queue.submitWhenRoom(records(1, "w"), 10, never);

    const closed = watch(queue.close());
    await expect(waiter).rejects.toBeInstanceOf(ShuttingDownError);
    await expect(queue.submit(records(1, "late"), 1)).rejects.toBeInstanceOf(ShuttingDownError);
    await expect(queue.submitWhenRoom(records(1, "late"), 1, never)).rejects.toBeInstanceOf(ShuttingDownError);
    expect(queue.rejectedEvents).toBe(0); // shutting down is not overload
    expect(tagsOf(store)).toEqual(["a", "b"]);

    await drainMicrotasks();
    expect(closed.settled()).toBe(false);

    store.at(0).commit();
    await committing;
    await drainMicrotasks();
    expect(closed.settled()).toBe(false);

    // A failed commit is an answer too.
    store.at(1).fail(new Error("disk full"));
    await expect(failing).rejects.toThrow("disk full");
    await closed.promise;
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
    expect(tagsOf(store)).toEqual(["a", "b"]);
  });

  it("a stream whose signal is already aborted is refused at once, takes no place in line and never reaches the store", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 1, maxBytes: 1_000 });
    void queue.submit(records(1, "first"), 10);
    const over = new AbortController();
    const gone = new Error("client went away");
    over.abort(gone);
    await expect(queue.submitWhenRoom(records(1, "late"), 10, over.signal)).rejects.toBe(gone);
    // Nobody waits: a unary submit is refused for lack of room only, and room goes to the next caller.
    store.at(0).commit();
    await drainMicrotasks();
    void queue.submit(records(1, "after"), 10);
    expect(tagsOf(store)).toEqual(["first", "after"]);
  });

  it("close answers the same promise however often it is called, and every caller hears the drain", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 3, maxBytes: 1_000 });
    void queue.submit(records(1, "a"), 10);
    const first = watch(queue.close());
    const second = watch(queue.close());
    store.at(0).commit();
    await Promise.all([first.promise, second.promise]);
    expect(first.settled() && second.settled()).toBe(true);
  });

  it("close of an idle queue resolves at once and still refuses new work", async () => {
    const queue = new IngestQueue(new ScriptedStore(), { maxEvents: 3, maxBytes: 1_000 });
    await queue.close();
    await expect(queue.submit(records(1), 1)).rejects.toBeInstanceOf(ShuttingDownError);
  });

  it("depth reports the events and bytes accepted but not yet committed, counting a waiter only once it is granted", async () => {
    const store = new ScriptedStore();
    const queue = new IngestQueue(store, { maxEvents: 4, maxBytes: 1_000 });
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });

    const first = queue.submit(records(3, "a"), 30);
    const { committed: second } = await queue.submitWhenRoom(records(1, "b"), 5, never);
    expect(queue.depth).toEqual({ events: 4, bytes: 35 });

    const waiting = queue.submitWhenRoom(records(2, "c"), 7, never);
    expect(queue.depth).toEqual({ events: 4, bytes: 35 });

    store.at(0).commit();
    await first;
    const { committed: third } = await waiting;
    expect(queue.depth).toEqual({ events: 3, bytes: 12 });

    store.at(1).commit();
    await second;
    expect(queue.depth).toEqual({ events: 2, bytes: 7 });
    store.at(2).commit();
    await third;
    expect(queue.depth).toEqual({ events: 0, bytes: 0 });
  });

  it("whatever the order of submits and answers, unary admission matches the bounds and depth returns to zero", async () => {
    type Op = { kind: "submit"; events: number; bytes: number } | { kind: "answer"; pick: number; ok: boolean };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant("submit" as const), events: fc.integer({ min: 1, max: 6 }), bytes: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ kind: fc.constant("answer" as const), pick: fc.nat(), ok: fc.boolean() }),
    );
    const limits = { maxEvents: 8, maxBytes: 80 };

    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const store = new ScriptedStore();
        const queue = new IngestQueue(store, limits);
        const outstanding: { append: PendingAppend; result: Promise<unknown>; events: number; bytes: number }[] = [];
        let events = 0;
        let bytes = 0;
        let refused = 0;
        let accepted = 0;
        for (const o of ops) {
          if (o.kind === "submit") {
            const fits = events === 0 || (events + o.events <= limits.maxEvents && bytes + o.bytes <= limits.maxBytes);
            const result = queue.submit(records(o.events), o.bytes);
            if (fits) {
              outstanding.push({ append: store.at(store.appends.length - 1), result, events: o.events, bytes: o.bytes });
              events += o.events;
              bytes += o.bytes;
              accepted++;
            } else {
              await expect(result).rejects.toBeInstanceOf(OverloadedError);
              refused += o.events;
            }
          } else if (outstanding.length > 0) {
            const [done] = outstanding.splice(o.pick % outstanding.length, 1);
            if (o.ok) done!.append.commit();
            else done!.append.fail(new Error("commit failed"));
            await done!.result.catch(() => undefined);
            events -= done!.events;
            bytes -= done!.bytes;
          }
          expect(queue.depth).toEqual({ events, bytes });
          expect(queue.rejectedEvents).toBe(refused);
          expect(store.appends.length).toBe(accepted);
        }
        for (const done of outstanding) {
          done.append.commit();
          await done.result;
        }
        expect(queue.depth).toEqual({ events: 0, bytes: 0 });
        await queue.close();
      }),
      { numRuns: 200 },
    );
  });
});
