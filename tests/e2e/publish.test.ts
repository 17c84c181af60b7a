import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishResult_Status as Status } from "../../gen/aggregator/v1/aggregator_pb.js";
import { connectBinaryClient, connectJsonClient, grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

let server: TestServer;

beforeAll(async () => {
  server = await startServer({ args: ["--max-batch", "100", "--max-message-bytes", "65536", "--max-payload-bytes", "1024"] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

async function refusal(call: Promise<unknown>): Promise<ConnectError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, "the call should have been refused").toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

const transports = [
  ["gRPC", grpcClient],
  ["Connect JSON", connectJsonClient],
  ["Connect binary", connectBinaryClient],
] as const;

describe.each(transports)("Publish over %s", (_name, makeClient) => {
  it("reports a new event as ACCEPTED, a re-send as DUPLICATE and a changed payload as CONFLICT", async () => {
    const client = makeClient(server.url);
    const event = makeEvent();
    const first = await client.publish({ events: [event] });
    expect(first.accepted).toBe(1);
    expect(first.results[0]!.status).toBe(Status.ACCEPTED);
    const seq = first.results[0]!.seq;
    expect(seq).toBeGreaterThan(0n);

    const again = await client.publish({ events: [event] });
    expect(again).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 0 });
    expect(again.results[0]).toMatchObject({ status: Status.DUPLICATE, seq });

    const changed = await client.publish({ events: [{ ...event, payload: { amount: 999 } }] });
    expect(changed).toMatchObject({ accepted: 0, duplicates: 0, conflicts: 1 });
    expect(changed.results[0]).toMatchObject({ status: Status.CONFLICT, seq });

    const stored = await client.events({ topic: event.topic, afterSeq: seq - 1n, limit: 1 });
    expect(stored.events[0]).toMatchObject({ seq, eventId: event.eventId, payload: { amount: 100, currency: "EUR" } });
  });

  it("answers one result per event in request order, including duplicates within the request", async () => {
    const client = makeClient(server.url);
    const [a, b] = [makeEvent(), makeEvent()];
    const response = await client.publish({ events: [a, b, a] });
    expect(response.results.map((r) => r.status)).toEqual([Status.ACCEPTED, Status.ACCEPTED, Status.DUPLICATE]);
    expect(response.results[1]!.seq).toBeGreaterThan(response.results[0]!.seq);
    expect(response.results[2]!.seq).toBe(response.results[0]!.seq);
  });

  it("treats a payload with its keys in another order as the same payload", async () => {
    const client = makeClient(server.url);
    const event = makeEvent({ payload: { a: 1, b: { c: 2, d: [1, 2] } } });
    await client.publish({ events: [event] });
    const again = await client.publish({ events: [{ ...event, payload: { b: { d: [1, 2], c: 2 }, a: 1 } }] });
    expect(again.results[0]!.status).toBe(Status.DUPLICATE);
  });

  it("refuses a request with an invalid event whole, naming every bad index and field", async () => {
    const client = makeClient(server.url);
    const before = await client.stats({});
    const good = makeEvent();
    const err = await refusal(client.publish({ events: [good, makeEvent({ topic: "" }), makeEvent({ source: "bad\u0000source", timestamp: undefined })] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("events[1].topic");
    expect(err.rawMessage).toContain("events[2].source");
    expect(err.rawMessage).toContain("events[2].timestamp");
    expect(err.rawMessage).not.toContain("events[0]");
    const after = await client.stats({});
    expect(after.received).toBe(before.received);
    const stored = await client.events({ topic: good.topic, afterSeq: 0n, limit: 1000 });
    expect(stored.events.map((e) => e.eventId)).not.toContain(good.eventId);
  });
});

describe("hostile but valid input", () => {
  it("stores a topic that looks like SQL as just a topic", async () => {
    const client = grpcClient(server.url);
    const topic = "'; DROP TABLE events; --";
    const event = makeEvent({ topic, eventId: "1' OR '1'='1" });
    expect((await client.publish({ events: [event] })).accepted).toBe(1);
    const page = await client.events({ topic });
    expect(page.events.map((e) => [e.topic, e.eventId])).toEqual([[topic, event.eventId]]);
    expect((await client.stats({})).topics.find((t) => t.name === topic)?.count).toBe(1n);
  });
});

describe("limits", () => {
  it("refuses a batch over --max-batch with invalid_argument", async () => {
    const err = await refusal(grpcClient(server.url).publish({ events: Array.from({ length: 101 }, () => makeEvent()) }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("at most 100");
  });

  it("refuses a payload over --max-payload-bytes, naming the field", async () => {
    const err = await refusal(grpcClient(server.url).publish({ events: [makeEvent({ payload: { blob: "x".repeat(2000) } })] }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("events[0].payload");
  });

  it("refuses a message over --max-message-bytes with resource_exhausted", async () => {
    const events = Array.from({ length: 100 }, () => makeEvent({ payload: { blob: "y".repeat(900) } }));
    const err = await refusal(grpcClient(server.url).publish({ events }));
    expect(err.code).toBe(Code.ResourceExhausted);
  });

  it("refuses an empty batch", async () => {
    const err = await refusal(connectJsonClient(server.url).publish({ events: [] }));
    expect(err.code).toBe(Code.InvalidArgument);
  });
});

describe("dedup under concurrency", () => {
  it("stores one event once when 50 clients publish it at the same time", async () => {
    const event = makeEvent({ topic: "race" });
    const client = grpcClient(server.url);
    const before = await client.stats({});
    const responses = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? client : connectJsonClient(server.url)).publish({ events: [event] })));
    const statuses = responses.map((r) => r.results[0]!.status);
    expect(statuses.filter((s) => s === Status.ACCEPTED)).toHaveLength(1);
    expect(statuses.filter((s) => s === Status.DUPLICATE)).toHaveLength(49);
    expect(new Set(responses.map((r) => r.results[0]!.seq)).size).toBe(1);
    const after = await client.stats({});
    expect(after.uniqueProcessed - before.uniqueProcessed).toBe(1n);
    expect(after.duplicateDropped - before.duplicateDropped).toBe(49n);
  });

  it("answers each of many concurrent batches with its own events' outcomes", async () => {
    // Concurrent batches share group commits and one answer from the writer;
    // each must still get exactly its own events' statuses and seqs.
    const topic = `split-${Date.now()}`;
    const client = grpcClient(server.url);
    const earlier = Array.from({ length: 20 }, () => makeEvent({ topic }));
    const earlierSeqs = (await client.publish({ events: earlier })).results.map((r) => r.seq);
    // Small batches travel to the writer together; one of the batch limit goes at once, after those before it.
    const batches = Array.from({ length: 40 }, (_, b) =>
      Array.from({ length: b === 20 ? 100 : 1 + (b % 7) }, (_, i) => ((b + i) % 3 === 0 ? earlier[(b * 7 + i) % earlier.length]! : makeEvent({ topic }))),
    );
    const responses = await Promise.all(batches.map((events, b) => (b % 2 ? client : connectJsonClient(server.url)).publish({ events })));

    const stored = await client.events({ topic, limit: 1000 });
    const seqOf = new Map(stored.events.map((e) => [e.eventId, e.seq]));
    expect(stored.events).toHaveLength(20 + batches.flat().filter((e) => !earlier.includes(e)).length);
    responses.forEach((response, b) => {
      const sent = batches[b]!;
      expect(response.results).toHaveLength(sent.length);
      sent.forEach((event, i) => {
        const isEarlier = earlier.includes(event);
        expect(response.results[i]).toMatchObject({ status: isEarlier ? Status.DUPLICATE : Status.ACCEPTED, seq: seqOf.get(event.eventId) });
        if (isEarlier) expect(response.results[i]!.seq).toBe(earlierSeqs[earlier.indexOf(event)]);
      });
    });
  });
});

describe("PublishStream", () => {
  it("commits batches in sending order, visible as strictly increasing seq", async () => {
    const client = grpcClient(server.url);
    const topic = `stream-${Date.now()}`;
    const sent = Array.from({ length: 20 }, () => Array.from({ length: 50 }, () => makeEvent({ topic })));
    async function* batches() {
      for (const events of sent) yield { events };
      yield { events: sent[3]!.slice(0, 10) };
    }
    const totals = await client.publishStream(batches());
    expect(totals).toMatchObject({ received: 1010n, accepted: 1000n, duplicates: 10n, conflicts: 0n, batches: 21n });

    const stored = [];
    let cursor = 0n;
    for (;;) {
      const page = await client.events({ topic, afterSeq: cursor, limit: 300 });
      stored.push(...page.events);
      cursor = page.nextCursor;
      if (!page.hasMore) break;
    }
    expect(stored.map((e) => e.eventId)).toEqual(sent.flat().map((e) => e.eventId));
    for (let i = 1; i < stored.length; i++) expect(stored[i]!.seq).toBeGreaterThan(stored[i - 1]!.seq);
  });

  it("ends the stream with invalid_argument at an invalid batch and keeps the batches before it", async () => {
    const client = grpcClient(server.url);
    const topic = `stream-bad-${Date.now()}`;
    const good = Array.from({ length: 5 }, () => makeEvent({ topic }));
    async function* batches() {
      yield { events: good };
      yield { events: [makeEvent({ topic, eventId: "" })] };
    }
    const err = await refusal(client.publishStream(batches()));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain("events[0].event_id");
    const stored = await client.events({ topic, afterSeq: 0n, limit: 100 });
    expect(stored.events).toHaveLength(5);
  });
});

describe("Stats and Events", () => {
  it("keeps received = unique_processed + duplicate_dropped + conflicts and counts per topic", async () => {
    const client = connectJsonClient(server.url);
    const topic = `stats-${Date.now()}`;
    const events = Array.from({ length: 7 }, () => makeEvent({ topic }));
    await client.publish({ events });
    await client.publish({ events: events.slice(0, 2) });
    const stats = await client.stats({});
    expect(stats.received).toBe(stats.uniqueProcessed + stats.duplicateDropped + stats.conflicts);
    expect(stats.topics.find((t) => t.name === topic)?.count).toBe(7n);
    expect(stats.uptimeSeconds).toBeGreaterThan(0);
  });

  it("filters by topic, source and time range, and pages with next_cursor", async () => {
    const client = grpcClient(server.url);
    const topic = `query-${Date.now()}`;
    const at = (iso: string) => ({ seconds: BigInt(Date.parse(iso) / 1000), nanos: 0 });
    await client.publish({
      events: [
        makeEvent({ topic, source: "a", timestamp: at("2025-01-01T00:00:00Z") }),
        makeEvent({ topic, source: "b", timestamp: at("2025-02-01T00:00:00Z") }),
        makeEvent({ topic, source: "a", timestamp: at("2025-03-01T00:00:00Z") }),
      ],
    });
    expect((await client.events({ topic, source: "a" })).events).toHaveLength(2);
    const range = await client.events({ topic, since: at("2025-01-15T00:00:00Z"), until: at("2025-03-01T00:00:00Z") });
    expect(range.events.map((e) => e.source)).toEqual(["b"]);
    const first = await client.events({ topic, limit: 2 });
    expect(first.hasMore).toBe(true);
    const rest = await client.events({ topic, afterSeq: first.nextCursor, limit: 2 });
    expect(rest.events).toHaveLength(1);
    expect(rest.hasMore).toBe(false);
    const empty = await client.events({ topic, afterSeq: rest.nextCursor });
    expect(empty.events).toHaveLength(0);
    expect(empty.nextCursor).toBe(rest.nextCursor);
  });
});
