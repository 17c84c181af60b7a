/**
 * The store contract: the behaviour every EventStore (src/store/types.ts) must
 * have, written once against the interface. The rest of the server relies on
 * exactly this and knows nothing of the implementation, so every store must
 * pass all of it: the SQLite store today (sqlite.test.ts), a PostgreSQL store
 * later. A new store adds one file like sqlite.test.ts that calls
 * describeEventStoreContract with a function opening it.
 *
 * Each test opens a store of its own on a fresh directory, so no test sees
 * another's events; stores a test leaves open are closed after it.
 */
import { afterEach, describe, expect, it } from "vitest";
import { AppendStatus, type AppendResult, type EventQuery, type EventRecord, type EventStore, type StoreStats, type StoredEventRow } from "../../src/store/types.js";
import { tempDir } from "../support/server.js";

/** Opens (or re-opens) the store whose data lives in `dir`; the same `dir` must give back the same data. */
export type OpenEventStore = (dir: string) => Promise<EventStore>;

type StatusName = "ACCEPTED" | "DUPLICATE" | "CONFLICT";

/** One event's outcome, with the status by name so a failing comparison reads as the proto does. */
interface Outcome {
  status: StatusName | `unknown status ${number}`;
  seq: number;
}

const statusNames = new Map<number, StatusName>([
  [AppendStatus.accepted, "ACCEPTED"],
  [AppendStatus.duplicate, "DUPLICATE"],
  [AppendStatus.conflict, "CONFLICT"],
]);

function outcomes(result: AppendResult): Outcome[] {
  expect(result.seqs.length).toBe(result.statuses.length);
  return Array.from(result.statuses, (status, i) => ({ status: statusNames.get(status) ?? `unknown status ${status}`, seq: result.seqs[i]! }));
}

/** Seqs of a result that must be all ACCEPTED. */
function acceptedSeqs(result: AppendResult): number[] {
  const all = outcomes(result);
  expect(all.map((o) => o.status)).toEqual(all.map(() => "ACCEPTED"));
  return all.map((o) => o.seq);
}

function expectStrictlyIncreasingSeqs(seqs: number[]): void {
  for (const seq of seqs) {
    expect(Number.isSafeInteger(seq), `seq ${seq} is an integer`).toBe(true);
    expect(seq, "seqs start above 0, the cursor of the first page").toBeGreaterThan(0);
  }
  for (let i = 1; i < seqs.length; i++) expect(seqs[i]!, `seq at ${i} above the one before`).toBeGreaterThan(seqs[i - 1]!);
}

let eventNumber = 0;

/** A valid event in store form, unique by default; override any field. */
function event(overrides: Partial<EventRecord> = {}): EventRecord {
  eventNumber++;
  return {
    topic: "orders",
    eventId: `event-${eventNumber}`,
    ts: "2025-10-24T10:00:00.000000000Z",
    source: "test",
    payload: `{"amount":${eventNumber},"currency":"EUR"}`,
    ...overrides,
  };
}

/** The same event sent again: a new object with equal fields, as a producer's retry arrives. */
function resend(record: EventRecord, overrides: Partial<EventRecord> = {}): EventRecord {
  return { ...record, ...overrides };
}

/** Rows as the store should hand them back, for the events stored with these seqs. */
function rowsOf(records: EventRecord[], seqs: number[]): Omit<StoredEventRow, "receivedAt">[] {
  return records.map((r, i) => ({ seq: seqs[i]!, topic: r.topic, eventId: r.eventId, ts: r.ts, source: r.source, payload: r.payload }));
}

function withoutReceivedAt(rows: StoredEventRow[]): Omit<StoredEventRow, "receivedAt">[] {
  return rows.map(({ receivedAt: _receivedAt, ...rest }) => rest);
}

type Filters = Omit<EventQuery, "afterSeq" | "limit">;

/** Every event matching the filters, page after page from the start; checks the cursor moves and seqs rise. */
async function readAll(store: EventStore, filters: Filters = {}, limit = 1000): Promise<StoredEventRow[]> {
  const rows: StoredEventRow[] = [];
  let afterSeq = 0;
  for (;;) {
    const page = await store.page({ ...filters, afterSeq, limit });
    expect(page.events.length).toBeLessThanOrEqual(limit);
    rows.push(...page.events);
    if (!page.hasMore) break;
    expect(page.events.length, "a page with hasMore holds events").toBeGreaterThan(0);
    afterSeq = page.events.at(-1)!.seq;
  }
  expectStrictlyIncreasingSeqs(rows.map((r) => r.seq));
  return rows;
}

/** The rows a query must return, from the events stored with these seqs: a model of the filters. */
function expectedMatches(stored: StoredEventRow[], filters: Filters): number[] {
  return stored
    .filter(
      (r) =>
        (filters.topic === undefined || r.topic === filters.topic) &&
        (filters.source === undefined || r.source === filters.source) &&
        (filters.since === undefined || r.ts >= filters.since) &&
        (filters.until === undefined || r.ts < filters.until),
    )
    .map((r) => r.seq);
}

/** Per-topic counts of stored rows, sorted by name in code-unit order (the order every store must list them in). */
function topicCounts(rows: StoredEventRow[]): StoreStats["topics"] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.topic, (counts.get(r.topic) ?? 0) + 1);
  return [...counts.keys()].sort().map((name) => ({ name, count: counts.get(name)! }));
}

function expectCountersBalanced(stats: StoreStats): void {
  expect(stats.received, "received = unique_processed + duplicate_dropped + conflicts").toBe(stats.uniqueProcessed + stats.duplicateDropped + stats.conflicts);
  expect(
    stats.topics.reduce((sum, t) => sum + t.count, 0),
    "per-topic counts add up to unique_processed",
  ).toBe(stats.uniqueProcessed);
}

/** RFC 3339 in UTC, as REST hands receivedAt on unchanged and gRPC parses it. */
const utcRfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** Registers the contract suite for one store implementation. */
export function describeEventStoreContract(name: string, open: OpenEventStore): void {
  describe(`${name}: EventStore contract`, () => {
    const openStores = new Set<EventStore>();

    /** Opens the store on `dir` and remembers it, so it is closed after the test even if the test fails first. */
    async function openAt(dir: string): Promise<EventStore> {
      const store = await open(dir);
      let closing: Promise<void> | undefined;
      const tracked: EventStore = {
        append: (records) => store.append(records),
        page: (query) => store.page(query),
        stats: () => store.stats(),
        close: () => {
          openStores.delete(tracked);
          return (closing ??= store.close());
        },
      };
      openStores.add(tracked);
      return tracked;
    }

    /** A store of the test's own on a fresh directory. */
    async function freshStore(): Promise<{ dir: string; store: EventStore }> {
      const dir = tempDir("tally-store-");
      return { dir, store: await openAt(dir) };
    }

    afterEach(async () => {
      const stores = [...openStores];
      openStores.clear();
      await Promise.all(stores.map((s) => s.close()));
    });

    describe("append", () => {
      it("accepts new events with one result per event in batch order, each with a new seq above every earlier one", async () => {
        const { store } = await freshStore();
        const first = [event(), event({ topic: "payments" }), event()];
        const second = [event(), event()];
        const firstSeqs = acceptedSeqs(await store.append(first));
        const secondSeqs = acceptedSeqs(await store.append(second));
        expect(firstSeqs).toHaveLength(3);
        expect(secondSeqs).toHaveLength(2);
        expectStrictlyIncreasingSeqs([...firstSeqs, ...secondSeqs]);
        // Each seq names the event at its place in the batch.
        expect(withoutReceivedAt(await readAll(store))).toEqual(rowsOf([...first, ...second], [...firstSeqs, ...secondSeqs]));
      });

      it("reports a re-sent event as DUPLICATE with the seq of the stored one, and stores nothing new for it", async () => {
        const { store } = await freshStore();
        const a = event();
        const b = event();
        const [seqA, seqB] = acceptedSeqs(await store.append([a, b]));
        const c = event();
        const again = outcomes(await store.append([resend(b), c, resend(a)]));
        expect(again[0]).toEqual({ status: "DUPLICATE", seq: seqB });
        expect(again[1]!.status).toBe("ACCEPTED");
        expect(again[1]!.seq).toBeGreaterThan(seqB!);
        expect(again[2]).toEqual({ status: "DUPLICATE", seq: seqA });
        expect((await readAll(store)).map((r) => r.eventId)).toEqual([a.eventId, b.eventId, c.eventId]);
      });

      it("reports the same topic and event_id with a different payload as CONFLICT with the seq of the stored one, and keeps the first payload", async () => {
        const { store } = await freshStore();
        const original = event({ payload: '{"amount":100,"currency":"EUR"}' });
        const [seq] = acceptedSeqs(await store.append([original]));
        const changed = resend(original, { payload: '{"amount":999,"currency":"EUR"}' });
        expect(outcomes(await store.append([changed]))).toEqual([{ status: "CONFLICT", seq }]);
        expect(withoutReceivedAt(await readAll(store))).toEqual(rowsOf([original], [seq!]));
      });

      it("resolves a duplicate or conflict inside one batch against the event earlier in that batch", async () => {
        const { store } = await freshStore();
        const a = event();
        const b = event();
        const result = outcomes(await store.append([a, b, resend(a), resend(a, { payload: '{"other":true}' }), resend(b)]));
        const [seqA, seqB] = [result[0]!.seq, result[1]!.seq];
        expect(result).toEqual([
          { status: "ACCEPTED", seq: seqA },
          { status: "ACCEPTED", seq: seqB },
          { status: "DUPLICATE", seq: seqA },
          { status: "CONFLICT", seq: seqA },
          { status: "DUPLICATE", seq: seqB },
        ]);
        expectStrictlyIncreasingSeqs([seqA, seqB]);
        expect(withoutReceivedAt(await readAll(store))).toEqual(rowsOf([a, b], [seqA, seqB]));
      });

      it("stores the same event_id in two topics as two events", async () => {
        const { store } = await freshStore();
        const inOrders = event({ topic: "orders", eventId: "shared-id" });
        const inPayments = event({ topic: "payments", eventId: "shared-id" });
        const [seqOrders, seqPayments] = acceptedSeqs(await store.append([inOrders, inPayments]));
        expect(seqPayments).not.toBe(seqOrders);
        // Each re-send is the duplicate of the one in its own topic.
        expect(outcomes(await store.append([resend(inPayments), resend(inOrders)]))).toEqual([
          { status: "DUPLICATE", seq: seqPayments },
          { status: "DUPLICATE", seq: seqOrders },
        ]);
        expect(withoutReceivedAt(await readAll(store))).toEqual(rowsOf([inOrders, inPayments], [seqOrders!, seqPayments!]));
        expect((await store.stats()).topics).toEqual([
          { name: "orders", count: 1 },
          { name: "payments", count: 1 },
        ]);
      });

      it("keeps the payload text byte for byte and compares payloads as text", async () => {
        const { store } = await freshStore();
        // Text a JSON column would rewrite: number spellings, escapes, non-ASCII, key order.
        const payload =
          '{"z":1,"big":12345678901234567890123,"exp":1.50e+3,"neg":-0,"s":"caf\u00e9 \ud83d\ude00 \\"q\\" \\u0000 \\n","nested":{"b":[],"a":[null,true,{}]}}';
        const original = event({ payload });
        const [seq] = acceptedSeqs(await store.append([original]));
        const [row] = await readAll(store);
        expect(row!.payload).toBe(payload);
        // The same JSON value in other text is another payload: the codec hands stores canonical text, and stores compare that text.
        const respaced = resend(original, { payload: payload.replace('"z":1', '"z": 1') });
        expect(outcomes(await store.append([resend(original), respaced]))).toEqual([
          { status: "DUPLICATE", seq },
          { status: "CONFLICT", seq },
        ]);
      });

      it("hands back every field as appended: the timestamp to the nanosecond, and receivedAt as the UTC time of the commit", async () => {
        const { store } = await freshStore();
        const record = event({
          topic: "user.login",
          eventId: "id with spaces/and:colons",
          ts: "2020-02-29T23:59:59.123456789Z",
          source: "auth-service",
          payload: '{"user":"u1"}',
        });
        const before = Date.now();
        const [seq] = acceptedSeqs(await store.append([record]));
        const after = Date.now();
        const page = await store.page({ afterSeq: 0, limit: 10 });
        expect(page.hasMore).toBe(false);
        expect(page.events).toEqual([{ ...rowsOf([record], [seq!])[0], receivedAt: expect.any(String) }]);
        const receivedAt = page.events[0]!.receivedAt;
        expect(receivedAt).toMatch(utcRfc3339);
        expect(Date.parse(receivedAt)).toBeGreaterThanOrEqual(before);
        expect(Date.parse(receivedAt)).toBeLessThanOrEqual(after);
      });
    });

    describe("counters", () => {
      it("starts empty: zero counters, no topics, an empty first page", async () => {
        const { store } = await freshStore();
        expect(await store.stats()).toEqual({ received: 0, uniqueProcessed: 0, duplicateDropped: 0, conflicts: 0, topics: [] });
        expect(await store.page({ afterSeq: 0, limit: 10 })).toEqual({ events: [], hasMore: false });
      });

      it("keeps received = unique_processed + duplicate_dropped + conflicts, with unique_processed the number of events that can be paged through", async () => {
        const { store } = await freshStore();
        const events = Array.from({ length: 7 }, () => event());
        await store.append(events.slice(0, 4)); // 4 accepted
        await store.append([resend(events[0]!), events[4]!, resend(events[1]!, { payload: '{"changed":1}' })]); // 1 duplicate, 1 accepted, 1 conflict
        // 2 accepted, 2 duplicates (one inside the batch), 1 conflict
        await store.append([events[5]!, resend(events[5]!), events[6]!, resend(events[2]!), resend(events[3]!, { payload: "{}" })]);
        const stats = await store.stats();
        expect(stats).toMatchObject({ received: 12, uniqueProcessed: 7, duplicateDropped: 3, conflicts: 2 });
        expectCountersBalanced(stats);
        expect(await readAll(store, {}, 3)).toHaveLength(stats.uniqueProcessed);
      });

      it("counts stored events per topic, listed by name in code-unit order, duplicates and conflicts not counted", async () => {
        const { store } = await freshStore();
        // Mixed case: a store sorting by a locale collation would put "alpha" before "Zulu".
        const names = ["zeta", "alpha", "Zulu", "alpha.sub", "mid"];
        const batch = names.flatMap((topic, i) => Array.from({ length: i + 1 }, () => event({ topic })));
        await store.append(batch);
        await store.append([resend(batch[0]!), resend(batch[1]!, { payload: '{"x":1}' }), event({ topic: "alpha" })]);
        const stats = await store.stats();
        expect(stats.topics).toEqual([
          { name: "Zulu", count: 3 },
          { name: "alpha", count: 3 },
          { name: "alpha.sub", count: 4 },
          { name: "mid", count: 5 },
          { name: "zeta", count: 1 },
        ]);
        expect(stats.topics).toEqual(topicCounts(await readAll(store)));
        expectCountersBalanced(stats);
      });

      it("never shows counters out of step with each other while appends commit", async () => {
        const { store } = await freshStore();
        const pending = Array.from({ length: 30 }, (_, i) => {
          const fresh = event({ topic: `topic-${i % 3}` });
          return store.append(i > 0 ? [fresh, event({ topic: `topic-${(i + 1) % 3}` }), resend(fresh)] : [fresh]);
        });
        let done = false;
        const all = Promise.all(pending).finally(() => (done = true));
        let snapshots = 0;
        let lastReceived = 0;
        while (!done || snapshots === 0) {
          const stats = await store.stats();
          expectCountersBalanced(stats);
          expect(stats.received).toBeGreaterThanOrEqual(lastReceived);
          lastReceived = stats.received;
          snapshots++;
          // A macrotask turn, so the commits' answers can arrive between snapshots.
          await new Promise((resolve) => setImmediate(resolve));
        }
        await all;
        const stats = await store.stats();
        expectCountersBalanced(stats);
        expect(stats).toMatchObject({ received: 88, uniqueProcessed: 59, duplicateDropped: 29, conflicts: 0 });
      });
    });

    describe("paging", () => {
      it("pages in seq order with afterSeq as the cursor and limit as the page size, hasMore on every page but the last", async () => {
        const { store } = await freshStore();
        const events = Array.from({ length: 5 }, () => event());
        const seqs = acceptedSeqs(await store.append(events));
        const first = await store.page({ afterSeq: 0, limit: 2 });
        expect(first.hasMore).toBe(true);
        expect(first.events.map((e) => e.seq)).toEqual(seqs.slice(0, 2));
        const second = await store.page({ afterSeq: first.events[1]!.seq, limit: 2 });
        expect(second.hasMore).toBe(true);
        expect(second.events.map((e) => e.seq)).toEqual(seqs.slice(2, 4));
        const last = await store.page({ afterSeq: second.events[1]!.seq, limit: 2 });
        expect(last.hasMore).toBe(false);
        expect(withoutReceivedAt(last.events)).toEqual(rowsOf(events.slice(4), seqs.slice(4)));
        expect(await store.page({ afterSeq: seqs[4]!, limit: 2 })).toEqual({ events: [], hasMore: false });
      });

      it("says hasMore is false when the last page is exactly full", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(await store.append(Array.from({ length: 4 }, () => event())));
        const whole = await store.page({ afterSeq: 0, limit: 4 });
        expect(whole.events.map((e) => e.seq)).toEqual(seqs);
        expect(whole.hasMore).toBe(false);
        const second = await store.page({ afterSeq: seqs[1]!, limit: 2 });
        expect(second.events.map((e) => e.seq)).toEqual(seqs.slice(2));
        expect(second.hasMore).toBe(false);
        const single = await store.page({ afterSeq: seqs[2]!, limit: 1 });
        expect(single.events.map((e) => e.seq)).toEqual([seqs[3]]);
        expect(single.hasMore).toBe(false);
      });

      it("returns only events with a seq above afterSeq, whatever afterSeq is", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(await store.append(Array.from({ length: 6 }, () => event())));
        for (let i = 0; i < seqs.length; i++) {
          const page = await store.page({ afterSeq: seqs[i]!, limit: 100 });
          expect(page.events.map((e) => e.seq)).toEqual(seqs.slice(i + 1));
          expect(page.hasMore).toBe(false);
        }
        expect((await store.page({ afterSeq: 0, limit: 100 })).events.map((e) => e.seq)).toEqual(seqs);
        expect(await store.page({ afterSeq: seqs[5]! + 1_000_000, limit: 100 })).toEqual({ events: [], hasMore: false });
      });

      it("filters by topic and by source, each alone and both together", async () => {
        const { store } = await freshStore();
        const events = ["orders", "payments", "orders", "payments", "orders", "orders.eu"].map((topic, i) => event({ topic, source: i % 2 === 0 ? "api" : "batch-job" }));
        await store.append(events);
        const stored = await readAll(store);
        expect(stored).toHaveLength(events.length);
        const queries: Filters[] = [
          { topic: "orders" },
          { topic: "payments" },
          { topic: "orders.eu" },
          { topic: "absent" },
          { source: "api" },
          { source: "batch-job" },
          { source: "absent" },
          { topic: "orders", source: "api" },
          { topic: "payments", source: "api" },
          { topic: "orders.eu", source: "batch-job" },
        ];
        for (const filters of queries) {
          expect((await readAll(store, filters)).map((r) => r.seq), JSON.stringify(filters)).toEqual(expectedMatches(stored, filters));
        }
        // A sanity check on the model itself: the filters do select something.
        expect(expectedMatches(stored, { topic: "orders", source: "api" })).toHaveLength(3);
      });

      it("filters on the event timestamp with since inclusive and until exclusive, to the nanosecond", async () => {
        const { store } = await freshStore();
        // Appended out of timestamp order: results still come in seq order.
        const times = [
          "2025-10-24T10:00:01.000000000Z",
          "2025-10-24T10:00:00.000000000Z",
          "2025-10-24T10:00:00.000000001Z",
          "2025-10-24T10:00:00.999999999Z",
          "2024-12-31T23:59:59.999999999Z",
          "2025-10-25T00:00:00.000000000Z",
        ];
        const seqs = acceptedSeqs(await store.append(times.map((ts) => event({ ts }))));
        const seqsAt = (...ts: string[]) => seqs.filter((_, i) => ts.includes(times[i]!));
        const ids = async (filters: Filters) => (await readAll(store, filters)).map((r) => r.seq);

        expect(await ids({ since: "2025-10-24T10:00:00.000000001Z" })).toEqual(
          seqsAt("2025-10-24T10:00:01.000000000Z", "2025-10-24T10:00:00.000000001Z", "2025-10-24T10:00:00.999999999Z", "2025-10-25T00:00:00.000000000Z"),
        );
        expect(await ids({ until: "2025-10-24T10:00:00.000000001Z" })).toEqual(seqsAt("2025-10-24T10:00:00.000000000Z", "2024-12-31T23:59:59.999999999Z"));
        expect(await ids({ since: "2025-10-24T10:00:00.000000000Z", until: "2025-10-24T10:00:01.000000000Z" })).toEqual(
          seqsAt("2025-10-24T10:00:00.000000000Z", "2025-10-24T10:00:00.000000001Z", "2025-10-24T10:00:00.999999999Z"),
        );
        expect(await ids({ since: "2025-01-01T00:00:00.000000000Z", until: "2025-10-25T00:00:00.000000000Z" })).toEqual(seqs.slice(0, 4));
        expect(await ids({ until: "2025-01-01T00:00:00.000000000Z" })).toEqual([seqs[4]]);
        expect(await ids({ since: "2025-10-25T00:00:00.000000000Z" })).toEqual([seqs[5]]);
        expect(await ids({ since: "2025-10-24T10:00:00.500000000Z", until: "2025-10-24T10:00:00.500000000Z" })).toEqual([]);
        expect(await ids({ since: "2026-01-01T00:00:00.000000000Z" })).toEqual([]);
      });

      it("combines topic, source, since and until in every way, paging only through matching events, in seq order", async () => {
        const { store } = await freshStore();
        const topics = ["orders", "payments"];
        const sources = ["api", "batch-job", "cron"];
        const events = Array.from({ length: 36 }, (_, i) =>
          event({
            topic: topics[i % 2]!,
            source: sources[i % 3]!,
            // Timestamps not in append order: each second from 0 to 35 once, shuffled.
            ts: `2025-10-24T10:00:${String((i * 7) % 36).padStart(2, "0")}.000000000Z`,
          }),
        );
        await store.append(events.slice(0, 20));
        await store.append(events.slice(20));
        const stored = await readAll(store);
        expect(stored).toHaveLength(events.length);
        const since = "2025-10-24T10:00:07.000000000Z";
        const until = "2025-10-24T10:00:28.000000000Z";
        for (let mask = 0; mask < 16; mask++) {
          const filters: Filters = {};
          if (mask & 1) filters.topic = "payments";
          if (mask & 2) filters.source = "batch-job";
          if (mask & 4) filters.since = since;
          if (mask & 8) filters.until = until;
          const expected = expectedMatches(stored, filters);
          if (mask === 15) expect(expected.length, "the model selects something with all four filters").toBeGreaterThan(0);
          // Small pages: the cursor and hasMore must follow the filtered events only.
          expect((await readAll(store, filters, 2)).map((r) => r.seq), JSON.stringify(filters)).toEqual(expected);
          expect((await readAll(store, filters, 1000)).map((r) => r.seq), JSON.stringify(filters)).toEqual(expected);
        }
      });

      it("sets hasMore only when another event matching the filters follows", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(
          await store.append([event({ topic: "orders" }), event({ topic: "orders" }), event({ topic: "payments" }), event({ topic: "orders", source: "other" })]),
        );
        expect(await store.page({ topic: "orders", source: "test", afterSeq: 0, limit: 2 }).then((p) => [p.events.map((e) => e.seq), p.hasMore])).toEqual([
          seqs.slice(0, 2),
          false,
        ]);
        expect(await store.page({ topic: "orders", afterSeq: 0, limit: 2 }).then((p) => [p.events.map((e) => e.seq), p.hasMore])).toEqual([
          seqs.slice(0, 2),
          true,
        ]);
        expect(await store.page({ until: "2025-10-24T10:00:00.000000000Z", afterSeq: 0, limit: 2 })).toEqual({ events: [], hasMore: false });
      });
    });

    describe("concurrent appends", () => {
      it("resolves every append issued without awaiting in between, with seqs in the order append() was called", async () => {
        const { store } = await freshStore();
        const batches = Array.from({ length: 25 }, (_, i) => Array.from({ length: (i % 4) + 1 }, () => event({ topic: `topic-${i % 3}` })));
        const results = await Promise.all(batches.map((batch) => store.append(batch)));
        const seqs = results.flatMap((r, i) => {
          const batchSeqs = acceptedSeqs(r);
          expect(batchSeqs).toHaveLength(batches[i]!.length);
          return batchSeqs;
        });
        expectStrictlyIncreasingSeqs(seqs);
        expect(withoutReceivedAt(await readAll(store, {}, 7))).toEqual(rowsOf(batches.flat(), seqs));
        expect((await store.stats()).uniqueProcessed).toBe(seqs.length);
      });

      it("applies concurrent appends in call order, so a later batch finds an event of an earlier one as DUPLICATE or CONFLICT", async () => {
        const { store } = await freshStore();
        const firsts = Array.from({ length: 20 }, () => event());
        // Batch i brings event i and re-sends event i - 1 (changed in every third batch).
        const pending = firsts.map((e, i) => {
          const previous = firsts[i - 1];
          if (previous === undefined) return store.append([e]);
          return store.append([e, i % 3 === 0 ? resend(previous, { payload: '{"changed":true}' }) : resend(previous)]);
        });
        const results = (await Promise.all(pending)).map(outcomes);
        for (let i = 1; i < results.length; i++) {
          expect(results[i]![0]!.status, `batch ${i}`).toBe("ACCEPTED");
          expect(results[i]![1], `batch ${i}`).toEqual({ status: i % 3 === 0 ? "CONFLICT" : "DUPLICATE", seq: results[i - 1]![0]!.seq });
        }
        expect(await store.stats()).toMatchObject({ received: 39, uniqueProcessed: 20, duplicateDropped: 13, conflicts: 6 });
      });
    });

    describe("restart", () => {
      it("keeps events, counters and topic counts after close() and a reopen of the same data", async () => {
        const { dir, store } = await freshStore();
        const events = [event(), event({ topic: "payments" }), event({ source: "cron" }), event({ topic: "audit", ts: "2025-10-24T10:00:00.000000042Z" })];
        const seqs = acceptedSeqs(await store.append(events));
        await store.append([resend(events[0]!), resend(events[1]!, { payload: '{"changed":1}' })]);
        const rowsBefore = await readAll(store);
        const statsBefore = await store.stats();
        await store.close();

        const reopened = await openAt(dir);
        expect(await readAll(reopened)).toEqual(rowsBefore);
        expect(await reopened.stats()).toEqual(statsBefore);
        expect(statsBefore).toMatchObject({ received: 6, uniqueProcessed: 4, duplicateDropped: 1, conflicts: 1 });
        // Dedup still knows the events stored before the restart.
        expect(outcomes(await reopened.append([resend(events[2]!), resend(events[3]!, { payload: "{}" })]))).toEqual([
          { status: "DUPLICATE", seq: seqs[2] },
          { status: "CONFLICT", seq: seqs[3] },
        ]);
      });

      it("gives events appended after a reopen seqs above every earlier one", async () => {
        const { dir, store } = await freshStore();
        const before = acceptedSeqs(await store.append(Array.from({ length: 5 }, () => event())));
        await store.close();

        const reopened = await openAt(dir);
        const after = acceptedSeqs(await reopened.append([event(), event()]));
        expectStrictlyIncreasingSeqs([...before, ...after]);
        expect((await readAll(reopened)).map((r) => r.seq)).toEqual([...before, ...after]);
        // A cursor from before the restart still reads on from where it was.
        expect((await reopened.page({ afterSeq: before.at(-1)!, limit: 10 })).events.map((e) => e.seq)).toEqual(after);
      });

      it("commits on close() every append already handed to it, even those not yet awaited", async () => {
        const { dir, store } = await freshStore();
        const batches = Array.from({ length: 10 }, (_, i) => [event({ topic: `t${i % 2}` }), event({ topic: `t${i % 2}` })]);
        const pending = batches.map((batch) => store.append(batch));
        // Settled handlers attached at once, so a rejection shows up here rather than as an unhandled one.
        const settled = Promise.allSettled(pending);
        await store.close();
        const results = await settled;
        const seqs = results.flatMap((r, i) => {
          expect(r.status, `append ${i} resolved`).toBe("fulfilled");
          return r.status === "fulfilled" ? acceptedSeqs(r.value) : [];
        });
        expectStrictlyIncreasingSeqs(seqs);

        const reopened = await openAt(dir);
        expect(withoutReceivedAt(await readAll(reopened))).toEqual(rowsOf(batches.flat(), seqs));
        expect(await reopened.stats()).toEqual({
          received: 20,
          uniqueProcessed: 20,
          duplicateDropped: 0,
          conflicts: 0,
          topics: [
            { name: "t0", count: 10 },
            { name: "t1", count: 10 },
          ],
        });
      });
    });
  });
}
