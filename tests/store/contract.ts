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
import {
  AppendStatus,
  eventBytes,
  maxRowsExamined,
  type AppendResult,
  type EventPage,
  type EventQuery,
  type EventRecord,
  type EventStore,
  type StoreStats,
  type StoredEventRow,
  type TopicCount,
} from "../../src/store/types.js";
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

/** Events per append when a test stores more than maxRowsExamined of them. */
const bulkBatch = 3_000;

/** Appends `count` events, the i-th made by `make(i)`, in batches of bulkBatch; all must be accepted. Returns their seqs. */
async function appendMany(store: EventStore, count: number, make: (i: number) => EventRecord): Promise<number[]> {
  const seqs: number[] = [];
  for (let start = 0; start < count; start += bulkBatch) {
    const batch = Array.from({ length: Math.min(bulkBatch, count - start) }, (_, j) => make(start + j));
    seqs.push(...acceptedSeqs(await store.append(batch)));
  }
  return seqs;
}

/** Rows as the store should hand them back, for the events stored with these seqs. */
function rowsOf(records: EventRecord[], seqs: number[]): Omit<StoredEventRow, "receivedAt">[] {
  return records.map((r, i) => ({ seq: seqs[i]!, topic: r.topic, eventId: r.eventId, ts: r.ts, source: r.source, payload: r.payload }));
}

function withoutReceivedAt(rows: StoredEventRow[]): Omit<StoredEventRow, "receivedAt">[] {
  return rows.map(({ receivedAt: _receivedAt, ...rest }) => rest);
}

/** A page byte limit no page of these tests reaches: pages end at their row limit or at the last match. */
const ampleBytes = 1 << 30;

/** What stats() is asked for wherever every topic must be listed: more topics than any test stores. */
const everyTopic = 1_000;

type Filters = Omit<EventQuery, "afterSeq" | "limit" | "maxBytes">;

/** Whether a filter no index serves is set, so that pages are bounded by maxRowsExamined and may come back short, even empty, with hasMore. */
function windowed(filters: Filters): boolean {
  return filters.source !== undefined || filters.since !== undefined || filters.until !== undefined;
}

function pageBytes(rows: StoredEventRow[]): number {
  return rows.reduce((sum, r) => sum + eventBytes(r), 0);
}

/**
 * What every page must keep: events after the cursor and up to nextCursor,
 * within the row limit, within maxBytes unless it holds a single event, and
 * without an index-less filter nextCursor is the last event's seq (the cursor
 * itself when there is none).
 */
function expectPageBounds(page: EventPage, query: EventQuery): void {
  const where = JSON.stringify(query);
  expect(page.events.length, where).toBeLessThanOrEqual(query.limit);
  if (page.events.length > 1) expect(pageBytes(page.events), `a page of several events holds at most maxBytes: ${where}`).toBeLessThanOrEqual(query.maxBytes);
  expect(page.nextCursor, `nextCursor never goes back: ${where}`).toBeGreaterThanOrEqual(query.afterSeq);
  for (const e of page.events) {
    if (e.seq <= query.afterSeq || e.seq > page.nextCursor) {
      expect.fail(`event ${e.seq} outside (afterSeq, nextCursor] = (${query.afterSeq}, ${page.nextCursor}]: ${where}`);
    }
  }
  if (!windowed(query)) expect(page.nextCursor, `nextCursor is the last event's seq: ${where}`).toBe(page.events.at(-1)?.seq ?? query.afterSeq);
}

/** One page as the paging tests compare it: the seqs it holds, and where it leaves the cursor. */
interface PageShape {
  seqs: number[];
  nextCursor: number;
  hasMore: boolean;
}

/** Every page of the filters from `afterSeq` on, each read from the nextCursor of the one before while hasMore, each checked against expectPageBounds. */
async function pagesOf(store: EventStore, filters: Filters, limit: number, maxBytes = ampleBytes, afterSeq = 0): Promise<PageShape[]> {
  const pages: PageShape[] = [];
  for (;;) {
    const query: EventQuery = { ...filters, afterSeq, limit, maxBytes };
    const page = await store.page(query);
    expectPageBounds(page, query);
    if (pages.length > 0 && !windowed(filters)) expect(page.events.length, `hasMore, but no event after ${afterSeq}`).toBeGreaterThan(0);
    pages.push({ seqs: page.events.map((e) => e.seq), nextCursor: page.nextCursor, hasMore: page.hasMore });
    if (!page.hasMore) return pages;
    if (!windowed(filters)) expect(page.events.length, "a page with hasMore and no index-less filter holds events").toBeGreaterThan(0);
    expect(page.nextCursor, `a page with hasMore moves the cursor on: ${JSON.stringify(query)}`).toBeGreaterThan(afterSeq);
    afterSeq = page.nextCursor;
  }
}

/**
 * Every event matching the filters, page after page from the start, reading
 * on from each page's nextCursor while hasMore; checks every page's bounds,
 * that the cursor moves and that seqs rise. Exported for the tests of one
 * store's own behaviour.
 */
export async function readAll(store: EventStore, filters: Filters = {}, limit = 1000, maxBytes = ampleBytes): Promise<StoredEventRow[]> {
  const rows: StoredEventRow[] = [];
  let afterSeq = 0;
  for (let more = false; ; more = true) {
    const query: EventQuery = { ...filters, afterSeq, limit, maxBytes };
    const page = await store.page(query);
    expectPageBounds(page, query);
    if (more && !windowed(filters)) expect(page.events.length, `hasMore, but no event after ${afterSeq}`).toBeGreaterThan(0);
    rows.push(...page.events);
    if (!page.hasMore) break;
    if (!windowed(filters)) expect(page.events.length, "a page with hasMore and no index-less filter holds events").toBeGreaterThan(0);
    expect(page.nextCursor, `a page with hasMore moves the cursor on: ${JSON.stringify(query)}`).toBeGreaterThan(afterSeq);
    afterSeq = page.nextCursor;
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

/**
 * The seqs of each page the matching rows must be cut into: a model of the
 * page bounds. A page takes rows while it holds fewer than `limit` and the
 * next row keeps it within maxBytes; its first row it takes whatever its size.
 */
function expectedPageSeqs(matching: StoredEventRow[], limit: number, maxBytes: number): number[][] {
  const pages: number[][] = [];
  let current: number[] = [];
  let bytes = 0;
  for (const row of matching) {
    const size = eventBytes(row);
    if (current.length > 0 && (current.length === limit || bytes + size > maxBytes)) {
      pages.push(current);
      current = [];
      bytes = 0;
    }
    current.push(row.seq);
    bytes += size;
  }
  if (current.length > 0) pages.push(current);
  return pages;
}

/** Code-unit order, as Array.prototype.sort compares strings. */
function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Per-topic counts of stored rows, sorted by name in code-unit order (the order every store must list them in). */
function topicCounts(rows: StoredEventRow[]): TopicCount[] {
  const counts = new Map<string, number>();
  for (const r of rows) counts.set(r.topic, (counts.get(r.topic) ?? 0) + 1);
  return [...counts.keys()].sort(byName).map((name) => ({ name, count: counts.get(name)! }));
}

/** The `n` topics with the most events, most first, ties by name in code-unit order: what stats(n) must list. */
function largestTopics(counts: TopicCount[], n: number): TopicCount[] {
  return [...counts].sort((a, b) => b.count - a.count || byName(a.name, b.name)).slice(0, n);
}

/** Every topic, page after page of topics(after, limit) from the start; checks each page's bounds, the name order and hasMore. */
async function allTopics(store: EventStore, limit = 2): Promise<TopicCount[]> {
  const topics: TopicCount[] = [];
  let after = "";
  for (let more = false; ; more = true) {
    const page = await store.topics(after, limit);
    expect(page.topics.length, `topics after ${JSON.stringify(after)}`).toBeLessThanOrEqual(limit);
    if (more) expect(page.topics.length, `hasMore, but no topic after ${JSON.stringify(after)}`).toBeGreaterThan(0);
    for (const t of page.topics) {
      if (byName(t.name, after) <= 0) expect.fail(`topic ${JSON.stringify(t.name)} does not sort after ${JSON.stringify(after)}`);
      after = t.name;
    }
    topics.push(...page.topics);
    if (!page.hasMore) break;
    expect(page.topics.length, "a topics page with hasMore is full").toBe(limit);
  }
  return topics;
}

/** For stats(everyTopic): received is the sum of the outcomes, and the topics listed are all topicCount of them, their counts adding up to unique_processed. */
function expectCountersBalanced(stats: StoreStats): void {
  expect(stats.received, "received = unique_processed + duplicate_dropped + conflicts").toBe(stats.uniqueProcessed + stats.duplicateDropped + stats.conflicts);
  expect(stats.topicCount, "fewer topics than stats() was asked for, so it lists them all").toBeLessThan(everyTopic);
  expect(stats.topTopics.length, "stats(everyTopic) lists topicCount topics").toBe(stats.topicCount);
  expect(
    stats.topTopics.reduce((sum, t) => sum + t.count, 0),
    "per-topic counts add up to unique_processed",
  ).toBe(stats.uniqueProcessed);
}

/** When no append is running: stats, the topic pages and the stored rows all agree. */
async function expectTopicsAgree(store: EventStore): Promise<void> {
  const stats = await store.stats(everyTopic);
  expectCountersBalanced(stats);
  const counted = topicCounts(await readAll(store));
  expect(await allTopics(store), "topics() pages through the topics of the stored rows").toEqual(counted);
  expect(stats.topTopics, "stats lists the stored rows' topics, largest first").toEqual(largestTopics(counted, everyTopic));
}

/** RFC 3339 in UTC, as REST hands receivedAt on unchanged and gRPC parses it. */
const utcRfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;

/** The store's operations bound to it, so a wrapper can replace some of them. */
function bound(store: EventStore): EventStore {
  return {
    append: (records) => store.append(records),
    page: (query) => store.page(query),
    stats: (topTopics) => store.stats(topTopics),
    topics: (after, limit) => store.topics(after, limit),
    head: () => store.head(),
    onCommit: (listener) => store.onCommit(listener),
    countAfter: (filter, afterSeq, cap) => store.countAfter(filter, afterSeq, cap),
    consumer: (name) => store.consumer(name),
    consumers: (after, limit) => store.consumers(after, limit),
    createConsumer: (record) => store.createConsumer(record),
    ack: (name, seq) => store.ack(name, seq),
    deleteConsumer: (name) => store.deleteConsumer(name),
    close: () => store.close(),
  };
}

/** Registers the contract suite for one store implementation. */
export function describeEventStoreContract(name: string, open: OpenEventStore): void {
  describe(`${name}: EventStore contract`, () => {
    const openStores = new Set<EventStore>();

    /** Opens the store on `dir` and remembers it, so it is closed after the test even if the test fails first. */
    async function openAt(dir: string): Promise<EventStore> {
      const store = await open(dir);
      let closing: Promise<void> | undefined;
      const tracked: EventStore = {
        ...bound(store),
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
        expect(await allTopics(store)).toEqual([
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
        const page = await store.page({ afterSeq: 0, limit: 10, maxBytes: ampleBytes });
        expect(page.hasMore).toBe(false);
        expect(page.nextCursor).toBe(seq);
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
        expect(await store.stats(10)).toEqual({ received: 0, uniqueProcessed: 0, duplicateDropped: 0, conflicts: 0, topicCount: 0, topTopics: [] });
        expect(await store.topics("", 10)).toEqual({ topics: [], hasMore: false });
        expect(await store.page({ afterSeq: 0, limit: 10, maxBytes: ampleBytes })).toEqual({ events: [], nextCursor: 0, hasMore: false });
        expect(await store.page({ source: "test", afterSeq: 0, limit: 10, maxBytes: ampleBytes })).toEqual({ events: [], nextCursor: 0, hasMore: false });
      });

      it("keeps received = unique_processed + duplicate_dropped + conflicts, with unique_processed the number of events that can be paged through", async () => {
        const { store } = await freshStore();
        const events = Array.from({ length: 7 }, () => event());
        await store.append(events.slice(0, 4)); // 4 accepted
        await store.append([resend(events[0]!), events[4]!, resend(events[1]!, { payload: '{"changed":1}' })]); // 1 duplicate, 1 accepted, 1 conflict
        // 2 accepted, 2 duplicates (one inside the batch), 1 conflict
        await store.append([events[5]!, resend(events[5]!), events[6]!, resend(events[2]!), resend(events[3]!, { payload: "{}" })]);
        const stats = await store.stats(everyTopic);
        expect(stats).toMatchObject({ received: 12, uniqueProcessed: 7, duplicateDropped: 3, conflicts: 2, topicCount: 1 });
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
        const expected = [
          { name: "Zulu", count: 3 },
          { name: "alpha", count: 3 },
          { name: "alpha.sub", count: 4 },
          { name: "mid", count: 5 },
          { name: "zeta", count: 1 },
        ];
        // Pages of 1, 2 and 5 topics (the last one exactly full) and one page of all.
        for (const limit of [1, 2, 5, 100]) expect(await allTopics(store, limit), `pages of ${limit}`).toEqual(expected);
        expect(topicCounts(await readAll(store))).toEqual(expected);
        const stats = await store.stats(everyTopic);
        expect(stats.topicCount).toBe(5);
        expectCountersBalanced(stats);
        await expectTopicsAgree(store);
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
          // One call, so one snapshot: topicCount and the topics listed must agree with the counters.
          const stats = await store.stats(everyTopic);
          expectCountersBalanced(stats);
          expect(stats.received).toBeGreaterThanOrEqual(lastReceived);
          lastReceived = stats.received;
          snapshots++;
          // A macrotask turn, so the commits' answers can arrive between snapshots.
          await new Promise((resolve) => setImmediate(resolve));
        }
        await all;
        const stats = await store.stats(everyTopic);
        expectCountersBalanced(stats);
        expect(stats).toMatchObject({ received: 88, uniqueProcessed: 59, duplicateDropped: 29, conflicts: 0, topicCount: 3 });
        await expectTopicsAgree(store);
      });
    });

    describe("paging", () => {
      it("pages in seq order with afterSeq as the cursor, nextCursor as the next page's cursor and limit as the page size, hasMore on every page but the last", async () => {
        const { store } = await freshStore();
        const events = Array.from({ length: 5 }, () => event());
        const seqs = acceptedSeqs(await store.append(events));
        const first = await store.page({ afterSeq: 0, limit: 2, maxBytes: ampleBytes });
        expect(first.hasMore).toBe(true);
        expect(first.events.map((e) => e.seq)).toEqual(seqs.slice(0, 2));
        expect(first.nextCursor).toBe(seqs[1]);
        const second = await store.page({ afterSeq: first.nextCursor, limit: 2, maxBytes: ampleBytes });
        expect(second.hasMore).toBe(true);
        expect(second.events.map((e) => e.seq)).toEqual(seqs.slice(2, 4));
        expect(second.nextCursor).toBe(seqs[3]);
        const last = await store.page({ afterSeq: second.nextCursor, limit: 2, maxBytes: ampleBytes });
        expect(last.hasMore).toBe(false);
        expect(last.nextCursor).toBe(seqs[4]);
        expect(withoutReceivedAt(last.events)).toEqual(rowsOf(events.slice(4), seqs.slice(4)));
        expect(await store.page({ afterSeq: seqs[4]!, limit: 2, maxBytes: ampleBytes })).toEqual({ events: [], nextCursor: seqs[4], hasMore: false });
      });

      it("says hasMore is false when the last page is exactly full", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(await store.append(Array.from({ length: 4 }, () => event())));
        const whole = await store.page({ afterSeq: 0, limit: 4, maxBytes: ampleBytes });
        expect(whole.events.map((e) => e.seq)).toEqual(seqs);
        expect(whole.hasMore).toBe(false);
        const second = await store.page({ afterSeq: seqs[1]!, limit: 2, maxBytes: ampleBytes });
        expect(second.events.map((e) => e.seq)).toEqual(seqs.slice(2));
        expect(second.hasMore).toBe(false);
        const single = await store.page({ afterSeq: seqs[2]!, limit: 1, maxBytes: ampleBytes });
        expect(single.events.map((e) => e.seq)).toEqual([seqs[3]]);
        expect(single.hasMore).toBe(false);
      });

      it("returns only events with a seq above afterSeq, whatever afterSeq is", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(await store.append(Array.from({ length: 6 }, () => event())));
        for (let i = 0; i < seqs.length; i++) {
          for (const filters of [{}, { topic: "orders" }, { source: "test" }] satisfies Filters[]) {
            const page = await store.page({ ...filters, afterSeq: seqs[i]!, limit: 100, maxBytes: ampleBytes });
            expect(page.events.map((e) => e.seq), JSON.stringify(filters)).toEqual(seqs.slice(i + 1));
            expect(page.hasMore, JSON.stringify(filters)).toBe(false);
            expect(page.nextCursor, JSON.stringify(filters)).toBe(seqs[5]);
          }
        }
        expect((await store.page({ afterSeq: 0, limit: 100, maxBytes: ampleBytes })).events.map((e) => e.seq)).toEqual(seqs);
        const beyond = seqs[5]! + 1_000_000;
        expect(await store.page({ afterSeq: beyond, limit: 100, maxBytes: ampleBytes })).toEqual({ events: [], nextCursor: beyond, hasMore: false });
        expect(await store.page({ source: "test", afterSeq: beyond, limit: 100, maxBytes: ampleBytes })).toEqual({ events: [], nextCursor: beyond, hasMore: false });
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

      it("sets hasMore only when another event matching the filters follows, while fewer than maxRowsExamined events follow the cursor", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(
          await store.append([event({ topic: "orders" }), event({ topic: "orders" }), event({ topic: "payments" }), event({ topic: "orders", source: "other" })]),
        );
        expect(
          await store.page({ topic: "orders", source: "test", afterSeq: 0, limit: 2, maxBytes: ampleBytes }).then((p) => [p.events.map((e) => e.seq), p.hasMore]),
        ).toEqual([seqs.slice(0, 2), false]);
        expect(await store.page({ topic: "orders", afterSeq: 0, limit: 2, maxBytes: ampleBytes }).then((p) => [p.events.map((e) => e.seq), p.hasMore])).toEqual([
          seqs.slice(0, 2),
          true,
        ]);
        const none = await store.page({ until: "2025-10-24T10:00:00.000000000Z", afterSeq: 0, limit: 2, maxBytes: ampleBytes });
        expect([none.events, none.hasMore]).toEqual([[], false]);
        // Nothing left to examine: the cursor has moved past what the scan read, but not past the newest event.
        expect(none.nextCursor).toBeLessThanOrEqual(seqs[3]!);
      });
      it("stops a page before the event that would take it past maxBytes, but always returns at least one event", async () => {
        const { store } = await freshStore();
        // About 10 KiB each: two fit in 25,000 bytes, three do not.
        const events = Array.from({ length: 5 }, (_, i) => event({ payload: `{"blob":"${"x".repeat(10 * 1024)}","n":${i}}` }));
        const seqs = acceptedSeqs(await store.append(events));
        const rows = await readAll(store);
        const sizes = rows.map(eventBytes);
        for (const size of sizes) expect(2 * size <= 25_000 && 3 * size > 25_000, `an event of ${size} bytes`).toBe(true);

        expect(await pagesOf(store, {}, 100, 25_000)).toEqual([
          { seqs: seqs.slice(0, 2), nextCursor: seqs[1], hasMore: true },
          { seqs: seqs.slice(2, 4), nextCursor: seqs[3], hasMore: true },
          { seqs: seqs.slice(4), nextCursor: seqs[4], hasMore: false },
        ]);
        // maxBytes is inclusive: a page may hold exactly maxBytes, not one byte more.
        const exact = await store.page({ afterSeq: 0, limit: 100, maxBytes: sizes[0]! + sizes[1]! });
        expect(exact.events.map((e) => e.seq)).toEqual(seqs.slice(0, 2));
        const short = await store.page({ afterSeq: 0, limit: 100, maxBytes: sizes[0]! + sizes[1]! - 1 });
        expect([short.events.map((e) => e.seq), short.nextCursor, short.hasMore]).toEqual([seqs.slice(0, 1), seqs[0], true]);
        // A limit below any event's size: every page holds one event, and paging on from nextCursor reads each exactly once.
        expect(await pagesOf(store, {}, 100, 1)).toEqual(seqs.map((seq, i) => ({ seqs: [seq], nextCursor: seq, hasMore: i < seqs.length - 1 })));
        expect(withoutReceivedAt(await readAll(store, {}, 100, 1))).toEqual(rowsOf(events, seqs));
        expect(withoutReceivedAt(await readAll(store, { topic: "orders" }, 100, 1))).toEqual(rowsOf(events, seqs));
        expect(withoutReceivedAt(await readAll(store, { source: "test" }, 100, 1))).toEqual(rowsOf(events, seqs));
      });

      it("cuts the matching events into pages by row limit and byte limit together, with every filter, one event larger than maxBytes making a page of its own", async () => {
        const { store } = await freshStore();
        const small = (topic: string, source: string) => event({ topic, source });
        const big = (topic: string, source: string) => event({ topic, source, payload: `{"blob":"${"y".repeat(4000)}"}` });
        const events = [
          small("orders", "api"),
          big("orders", "api"),
          small("payments", "api"),
          small("orders", "cron"),
          small("orders", "api"),
          small("orders", "api"),
          big("orders", "cron"),
          big("orders", "api"),
          small("orders", "api"),
          small("payments", "cron"),
          small("orders", "api"),
        ];
        await store.append(events.slice(0, 6));
        await store.append(events.slice(6));
        const stored = await readAll(store);
        const smallest = Math.min(...stored.map(eventBytes));
        const largest = Math.max(...stored.map(eventBytes));
        expect(largest, "the big events are more than twice the small ones").toBeGreaterThan(3 * smallest);
        const byteLimits = [1, smallest, 2 * smallest + 10, largest - 1, largest, largest + smallest, 3 * largest, ampleBytes];
        const filterSets: Filters[] = [{}, { topic: "orders" }, { source: "api" }, { topic: "orders", source: "api" }, { since: "2025-01-01T00:00:00.000000000Z" }];
        for (const filters of filterSets) {
          const matching = stored.filter((r) => expectedMatches(stored, filters).includes(r.seq));
          for (const limit of [1, 2, 3, 100]) {
            for (const maxBytes of byteLimits) {
              const where = JSON.stringify({ ...filters, limit, maxBytes });
              const pages = await pagesOf(store, filters, limit, maxBytes);
              // Fewer events than maxRowsExamined: with any filter, pages are cut only by their bounds.
              expect(
                pages.map((p) => p.seqs),
                where,
              ).toEqual(expectedPageSeqs(matching, limit, maxBytes));
              expect(
                pages.map((p) => p.hasMore),
                where,
              ).toEqual(pages.map((_, i) => i < pages.length - 1));
            }
          }
        }
      });

      it("gives on the last page a nextCursor from which a later page finds the events appended since", async () => {
        const { store } = await freshStore();
        acceptedSeqs(await store.append([event(), event({ topic: "payments", source: "cron" }), event()]));
        const filterSets: Filters[] = [{}, { topic: "orders" }, { source: "test" }, { topic: "payments", source: "cron" }, { until: "2026-01-01T00:00:00.000000000Z" }];
        const cursors: number[] = [];
        for (const filters of filterSets) {
          const pages = await pagesOf(store, filters, 2);
          cursors.push(pages.at(-1)!.nextCursor);
        }
        const later = [event({ topic: "payments", source: "cron" }), event()];
        const laterSeqs = acceptedSeqs(await store.append(later));
        const laterRows = await readAll(store);
        for (const [i, filters] of filterSets.entries()) {
          const pages = await pagesOf(store, filters, 100, ampleBytes, cursors[i]);
          expect(
            pages.flatMap((p) => p.seqs),
            JSON.stringify(filters),
          ).toEqual(expectedMatches(laterRows, filters).filter((seq) => laterSeqs.includes(seq)));
        }
      });
    });

    describe("bounded scans", () => {
      // Filters no index serves (source, since, until) examine at most maxRowsExamined stored events after the cursor, whichever topic:
      // the window of seqs from afterSeq to the seq of the maxRowsExamined-th event after it. Each test stores more than one window.
      const stored = maxRowsExamined + 500;

      it("examines at most maxRowsExamined events for a source filter: a page comes back empty with hasMore and nextCursor at the window's end, and reading on finds the match", async () => {
        const { store } = await freshStore();
        const seqs = await appendMany(store, stored, (i) => event({ source: i === stored - 1 ? "rare" : "test" }));
        expect(await pagesOf(store, { source: "rare" }, 10)).toEqual([
          { seqs: [], nextCursor: seqs[maxRowsExamined - 1], hasMore: true },
          { seqs: [seqs.at(-1)], nextCursor: seqs.at(-1), hasMore: false },
        ]);
        // The window starts at the cursor.
        expect(await pagesOf(store, { source: "rare" }, 10, ampleBytes, seqs[99])).toEqual([
          { seqs: [], nextCursor: seqs[99 + maxRowsExamined], hasMore: true },
          { seqs: [seqs.at(-1)], nextCursor: seqs.at(-1), hasMore: false },
        ]);
        expect((await readAll(store, { source: "rare" }, 10)).map((r) => r.seq)).toEqual([seqs.at(-1)]);
        // A source matching many events fills its pages as before.
        expect((await store.page({ source: "test", afterSeq: 0, limit: 1000, maxBytes: ampleBytes })).events.map((e) => e.seq)).toEqual(seqs.slice(0, 1000));
      });

      it("ends a source filter that matches nothing with hasMore false once its windows reach the newest event, and its cursor then finds later events", async () => {
        const { store } = await freshStore();
        const seqs = await appendMany(store, stored, () => event());
        expect(await pagesOf(store, { source: "absent" }, 10)).toEqual([
          { seqs: [], nextCursor: seqs[maxRowsExamined - 1], hasMore: true },
          { seqs: [], nextCursor: seqs.at(-1), hasMore: false },
        ]);
        const [later] = acceptedSeqs(await store.append([event({ source: "absent" })]));
        expect(await pagesOf(store, { source: "absent" }, 10, ampleBytes, seqs.at(-1))).toEqual([{ seqs: [later], nextCursor: later, hasMore: false }]);
      });

      it("bounds a topic filter combined with a time filter the same way, and never windows a topic filter alone, whose pages fill however far apart its events are", async () => {
        const { store } = await freshStore();
        const early = "2025-10-24T10:00:00.000000000Z";
        const late = "2025-10-25T10:00:00.000000000Z";
        // "audit" has three events more than a window apart; the last two events alone are late.
        const auditAt = new Set([0, maxRowsExamined + 200, stored - 1]);
        const seqs = await appendMany(store, stored, (i) => event({ topic: auditAt.has(i) ? "audit" : "orders", ts: i >= stored - 2 ? late : early }));
        const [a0, a1, a2] = [...auditAt].map((i) => seqs[i]!);
        const window = seqs[maxRowsExamined - 1];

        // Topic alone: not windowed, pages fill.
        expect(await pagesOf(store, { topic: "audit" }, 2)).toEqual([
          { seqs: [a0, a1], nextCursor: a1, hasMore: true },
          { seqs: [a2], nextCursor: a2, hasMore: false },
        ]);
        expect(await pagesOf(store, { topic: "audit" }, 10)).toEqual([{ seqs: [a0, a1, a2], nextCursor: a2, hasMore: false }]);

        // Topic and time: windowed, by all the events stored, whichever topic.
        expect(await pagesOf(store, { topic: "orders", since: late }, 10)).toEqual([
          { seqs: [], nextCursor: window, hasMore: true },
          { seqs: [seqs.at(-2)], nextCursor: seqs.at(-1), hasMore: false },
        ]);
        expect(await pagesOf(store, { topic: "audit", until: late }, 10)).toEqual([
          { seqs: [a0], nextCursor: window, hasMore: true },
          { seqs: [a1], nextCursor: seqs.at(-1), hasMore: false },
        ]);

        const rows = await readAll(store);
        const filterSets: Filters[] = [
          { topic: "audit", since: late },
          { topic: "audit", since: early, until: late },
          { topic: "orders", since: late },
          { topic: "absent", until: late },
          { topic: "audit" },
        ];
        for (const filters of filterSets) {
          for (const limit of [1, 10]) {
            expect((await readAll(store, filters, limit)).map((r) => r.seq), JSON.stringify({ ...filters, limit })).toEqual(expectedMatches(rows, filters));
          }
        }
      });
    });

    describe("topics", () => {
      it("lists in stats(topTopics) the topTopics topics with the most events, most first with ties by name in code-unit order, and counts the distinct topics in topicCount", async () => {
        const { store } = await freshStore();
        const counts: [string, number][] = [
          ["zeta", 2],
          ["alpha.sub", 3],
          ["mid", 5],
          ["beta", 1],
          ["alpha", 3],
          ["Zulu", 3],
        ];
        // Interleaved, so no topic's events come together.
        const batch: EventRecord[] = [];
        for (let round = 0; round < 5; round++) for (const [topic, n] of counts) if (round < n) batch.push(event({ topic }));
        await store.append(batch);
        // Duplicates and conflicts count for no topic.
        await store.append([resend(batch[0]!), resend(batch[1]!, { payload: '{"changed":1}' })]);
        const everyOne = [
          { name: "mid", count: 5 },
          { name: "Zulu", count: 3 },
          { name: "alpha", count: 3 },
          { name: "alpha.sub", count: 3 },
          { name: "zeta", count: 2 },
          { name: "beta", count: 1 },
        ];
        for (const n of [1, 2, 3, 4, 6, 7, everyTopic]) {
          const stats = await store.stats(n);
          expect(stats.topTopics, `stats(${n})`).toEqual(everyOne.slice(0, n));
          expect(stats.topicCount, `stats(${n})`).toBe(6);
        }
        expect(await store.stats(2)).toEqual({ received: 19, uniqueProcessed: 17, duplicateDropped: 1, conflicts: 1, topicCount: 6, topTopics: everyOne.slice(0, 2) });
        await expectTopicsAgree(store);
      });

      it("keeps topicCount and topTopics right across appends to new and existing topics and across a restart", async () => {
        const { dir, store } = await freshStore();
        const of = (topic: string, n: number) => Array.from({ length: n }, () => event({ topic }));
        await store.append([...of("a", 3), ...of("b", 2)]);
        expect(await store.stats(10)).toMatchObject({ topicCount: 2, topTopics: [{ name: "a", count: 3 }, { name: "b", count: 2 }] });

        // Existing topics only: the count of topics stays, the order changes.
        await store.append(of("b", 2));
        expect(await store.stats(10)).toMatchObject({ topicCount: 2, topTopics: [{ name: "b", count: 4 }, { name: "a", count: 3 }] });

        // New and existing topics in one batch, and several batches before one await.
        await Promise.all([store.append([...of("c", 4), ...of("a", 1)]), store.append(of("d", 1)), store.append([...of("d", 1), ...of("e", 5)])]);
        const beforeRestart = [
          { name: "e", count: 5 },
          { name: "a", count: 4 },
          { name: "b", count: 4 },
          { name: "c", count: 4 },
          { name: "d", count: 2 },
        ];
        expect(await store.stats(3)).toMatchObject({ topicCount: 5, topTopics: beforeRestart.slice(0, 3) });
        await expectTopicsAgree(store);
        const statsBefore = await store.stats(everyTopic);
        await store.close();

        const reopened = await openAt(dir);
        expect(await reopened.stats(everyTopic)).toEqual(statsBefore);
        expect(statsBefore.topTopics).toEqual(beforeRestart);
        await reopened.append([...of("d", 4), ...of("f", 1), event({ topic: "g" })]);
        expect(await reopened.stats(everyTopic)).toMatchObject({
          topicCount: 7,
          topTopics: [
            { name: "d", count: 6 },
            { name: "e", count: 5 },
            { name: "a", count: 4 },
            { name: "b", count: 4 },
            { name: "c", count: 4 },
            { name: "f", count: 1 },
            { name: "g", count: 1 },
          ],
        });
        await expectTopicsAgree(reopened);
      });

      it("pages through every topic by name in code-unit order with topics(after, limit), each exactly once, hasMore on every page but the last", async () => {
        const { store } = await freshStore();
        const names = ["zeta", "alpha", "Zulu", "alpha.sub", "mid", "a", "b-1", "b", "alpha-1"];
        await store.append(names.flatMap((topic, i) => Array.from({ length: (i % 3) + 1 }, () => event({ topic }))));
        const sorted = [...names].sort(byName);
        expect(sorted).toEqual(["Zulu", "a", "alpha", "alpha-1", "alpha.sub", "b", "b-1", "mid", "zeta"]);
        const expected = sorted.map((name) => ({ name, count: (names.indexOf(name) % 3) + 1 }));

        // 9 topics: pages of 2 end with a short page, pages of 3 with an exactly full one.
        for (const limit of [1, 2, 3, 4, 8, 9, 10, 1000]) expect(await allTopics(store, limit), `pages of ${limit}`).toEqual(expected);
        expect(await store.topics("", 3)).toEqual({ topics: expected.slice(0, 3), hasMore: true });
        expect(await store.topics("alpha.sub", 3)).toEqual({ topics: expected.slice(5, 8), hasMore: true });
        expect(await store.topics("mid", 3)).toEqual({ topics: expected.slice(8), hasMore: false });
        expect(await store.topics("b", 4)).toEqual({ topics: expected.slice(6), hasMore: false });
        // A page that takes exactly the last topics is the last page.
        expect(await store.topics("alpha.sub", 4)).toEqual({ topics: expected.slice(5), hasMore: false });
        expect(await store.topics("", 9)).toEqual({ topics: expected, hasMore: false });
        // `after` need not be a stored topic: the page starts at the next name.
        expect(await store.topics("alpha.", 2)).toEqual({ topics: expected.slice(4, 6), hasMore: true });
        expect(await store.topics("Zz", 1)).toEqual({ topics: [expected[1]], hasMore: true });
        expect(await store.topics("zeta", 10)).toEqual({ topics: [], hasMore: false });
        expect(await store.topics("\uffff", 10)).toEqual({ topics: [], hasMore: false });
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
        expect((await store.stats(everyTopic)).uniqueProcessed).toBe(seqs.length);
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
        expect(await store.stats(everyTopic)).toMatchObject({ received: 39, uniqueProcessed: 20, duplicateDropped: 13, conflicts: 6, topicCount: 1 });
      });
    });

    describe("commits and heads", () => {
      it("answers head() as the newest committed seq, 0 when empty", async () => {
        const { store } = await freshStore();
        expect(await store.head()).toBe(0);
        const seqs = acceptedSeqs(await store.append([event(), event()]));
        expect(await store.head()).toBe(seqs[1]);
      });

      it("tells the commit listener of each commit that stored events, before append() resolves, with the stored rows in seq order and nothing for re-sends", async () => {
        const { store } = await freshStore();
        const told: { head: number; rows: StoredEventRow[] }[] = [];
        store.onCommit((head, rows) => told.push({ head, rows: rows() }));
        const first = [event(), event({ topic: "payments" })];
        const appended = store.append(first);
        const seqs = acceptedSeqs(await appended);
        expect(told).toHaveLength(1);
        expect(told[0]!.head).toBe(seqs[1]);
        expect(told[0]!.rows).toEqual(await readAll(store));
        await store.append([resend(first[0]!)]);
        expect(told, "a commit of re-sends only stores nothing and tells nothing").toHaveLength(1);
      });

      it("counts the matching events after a seq, through the topic alone or a bounded window otherwise", async () => {
        const { store } = await freshStore();
        const seqs = acceptedSeqs(await store.append([event({ topic: "a.x" }), event({ topic: "a.y", source: "cron" }), event({ topic: "b" }), event({ topic: "a.x" })]));
        expect(await store.countAfter({ topic: "a.x" }, 0, 100)).toEqual({ count: 2, capped: false });
        expect(await store.countAfter({ topic: "a.x" }, seqs[0]!, 100)).toEqual({ count: 1, capped: false });
        expect(await store.countAfter({ topicPrefix: "a." }, 0, 100)).toEqual({ count: 3, capped: false });
        expect(await store.countAfter({ source: "cron" }, 0, 100)).toEqual({ count: 1, capped: false });
        expect(await store.countAfter({}, 0, 2)).toEqual({ count: 2, capped: true });
        expect(await store.countAfter({ topic: "a.x" }, 0, 1)).toEqual({ count: 1, capped: true });
      });

      it("pages by topic prefix, comparing the topic's first characters only", async () => {
        const { store } = await freshStore();
        await store.append([event({ topic: "orders.eu" }), event({ topic: "orders" }), event({ topic: "orders.us" }), event({ topic: "ordersx" })]);
        const page = await store.page({ topicPrefix: "orders.", afterSeq: 0, limit: 10, maxBytes: 1 << 20 });
        expect(page.events.map((e) => e.topic)).toEqual(["orders.eu", "orders.us"]);
      });
    });

    describe("consumers", () => {
      const consumer = (name: string, ackedSeq = 0) => ({ name, filter: { topic: "orders" }, ackedSeq, createdAt: "2026-01-01T00:00:00.000Z" });

      it("creates a consumer once, answering the stored one to a second create whatever it asks", async () => {
        const { store } = await freshStore();
        expect(await store.createConsumer(consumer("c1", 5))).toEqual({ record: consumer("c1", 5), created: true });
        const again = await store.createConsumer({ ...consumer("c1", 9), filter: { topicPrefix: "x" } });
        expect(again).toEqual({ record: consumer("c1", 5), created: false });
        expect(await store.consumer("c1")).toEqual(consumer("c1", 5));
        expect(await store.consumer("c2")).toBeUndefined();
      });

      it("moves the acked seq forward only, keeps every filter, and forgets a deleted consumer", async () => {
        const { store } = await freshStore();
        await store.createConsumer({ name: "c", filter: { topicPrefix: "a.", source: "s", since: "2025-01-01T00:00:00.000000000Z" }, ackedSeq: 0, createdAt: "2026-01-01T00:00:00.000Z" });
        expect((await store.ack("c", 7))?.ackedSeq).toBe(7);
        expect((await store.ack("c", 3))?.ackedSeq).toBe(7);
        const record = await store.consumer("c");
        expect(record).toMatchObject({ ackedSeq: 7, filter: { topicPrefix: "a.", source: "s", since: "2025-01-01T00:00:00.000000000Z" } });
        expect(record?.ackedAt).toMatch(/^\d{4}-/);
        expect(await store.ack("nobody", 1)).toBeUndefined();
        expect((await store.deleteConsumer("c"))?.ackedSeq).toBe(7);
        expect(await store.deleteConsumer("c")).toBeUndefined();
        expect(await store.consumer("c")).toBeUndefined();
      });

      it("pages through consumers by name, and keeps them across a restart", async () => {
        const { dir, store } = await freshStore();
        for (const name of ["b", "a", "c"]) await store.createConsumer(consumer(name));
        await store.ack("b", 4);
        const first = await store.consumers("", 2);
        expect(first.consumers.map((c) => c.name)).toEqual(["a", "b"]);
        expect(first.hasMore).toBe(true);
        expect((await store.consumers("b", 2)).consumers.map((c) => c.name)).toEqual(["c"]);
        await store.close();
        const reopened = await openAt(dir);
        expect((await reopened.consumer("b"))?.ackedSeq).toBe(4);
      });
    });

    describe("restart", () => {
      it("keeps events, counters and topic counts after close() and a reopen of the same data", async () => {
        const { dir, store } = await freshStore();
        const events = [event(), event({ topic: "payments" }), event({ source: "cron" }), event({ topic: "audit", ts: "2025-10-24T10:00:00.000000042Z" })];
        const seqs = acceptedSeqs(await store.append(events));
        await store.append([resend(events[0]!), resend(events[1]!, { payload: '{"changed":1}' })]);
        const rowsBefore = await readAll(store);
        const statsBefore = await store.stats(everyTopic);
        const topicsBefore = await allTopics(store);
        await store.close();

        const reopened = await openAt(dir);
        expect(await readAll(reopened)).toEqual(rowsBefore);
        expect(await reopened.stats(everyTopic)).toEqual(statsBefore);
        expect(await allTopics(reopened)).toEqual(topicsBefore);
        expect(statsBefore).toMatchObject({ received: 6, uniqueProcessed: 4, duplicateDropped: 1, conflicts: 1, topicCount: 3 });
        await expectTopicsAgree(reopened);
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
        expect((await reopened.page({ afterSeq: before.at(-1)!, limit: 10, maxBytes: ampleBytes })).events.map((e) => e.seq)).toEqual(after);
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
        expect(await reopened.stats(everyTopic)).toEqual({
          received: 20,
          uniqueProcessed: 20,
          duplicateDropped: 0,
          conflicts: 0,
          topicCount: 2,
          topTopics: [
            { name: "t0", count: 10 },
            { name: "t1", count: 10 },
          ],
        });
      });
    });
  });
}
