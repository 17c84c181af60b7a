/**
 * Subscribe end to end: a real server, real clients (connect-node over gRPC,
 * gRPC-Web and Connect), a real SQLite file. The claims: replay turns into
 * live with no gap and no duplicate while producers publish at full speed;
 * filters and start points deliver exactly what they name; many subscribers
 * share one server.
 */
import { create } from "@bufbuild/protobuf";
import { ConnectError, Code, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AggregatorService, PublishStreamRequestSchema, SubscribeRequest_Start, type SubscribeRequest, type SubscribeResponse } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

type AggregatorClient = Client<typeof AggregatorService>;
type SubscribeInit = Partial<Omit<SubscribeRequest, "$typeName">>;

/** Publishes `count` events of `topic` through one PublishStream, in batches; resolves with the stream's totals. */
async function publishStream(client: AggregatorClient, topic: string, count: number, batch = 500, prefix = topic): Promise<bigint> {
  async function* batches() {
    for (let sent = 0; sent < count; sent += batch) {
      const events = [];
      for (let i = sent; i < Math.min(count, sent + batch); i++) events.push(makeEvent({ topic, eventId: `${prefix}-${i}` }));
      yield create(PublishStreamRequestSchema, { events });
    }
  }
  return (await client.publishStream(batches())).accepted;
}

/** Reads a subscription into `seqs` until `done` says so, counting heartbeats; returns what it saw. */
async function collect(
  client: AggregatorClient,
  request: SubscribeInit,
  done: (seqs: number[], last: SubscribeResponse) => boolean,
  signal?: AbortSignal,
): Promise<{ seqs: number[]; topics: string[]; firstCaughtUp: number | undefined; heartbeats: number }> {
  const seqs: number[] = [];
  const topics: string[] = [];
  let firstCaughtUp: number | undefined;
  let heartbeats = 0;
  for await (const message of client.subscribe(request, signal === undefined ? {} : { signal })) {
    if (message.item.case === "event") {
      seqs.push(Number(message.item.value.seq));
      topics.push(message.item.value.topic);
    } else if (message.item.case === "heartbeat") {
      heartbeats++;
      if (message.item.value.caughtUp && firstCaughtUp === undefined) firstCaughtUp = Number(message.item.value.cursor);
    }
    if (done(seqs, message)) break;
  }
  return { seqs, topics, firstCaughtUp, heartbeats };
}

function gapsAndDuplicates(seqs: number[]): { gaps: number; duplicates: number; outOfOrder: number } {
  let gaps = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  for (let i = 1; i < seqs.length; i++) {
    const step = seqs[i]! - seqs[i - 1]!;
    if (step === 0) duplicates++;
    else if (step < 0) outOfOrder++;
    else gaps += step - 1;
  }
  return { gaps, duplicates, outOfOrder };
}

async function headOf(client: AggregatorClient): Promise<number> {
  return Number((await client.stats({})).uniqueProcessed);
}

describe("Subscribe", () => {
  let server: TestServer;
  let client: AggregatorClient;

  beforeAll(async () => {
    server = await startServer();
    client = grpcClient(server.url);
  });
  afterAll(async () => {
    await server.stop();
  });

  it("replays from the beginning and turns live with no gap and no duplicate while four producers publish at full speed", async () => {
    const history = 40_000;
    await publishStream(client, "switch.history", history);
    const perProducer = 15_000;
    // The subscriber starts first; the producers start at once, so they publish while it replays.
    const total = history + 4 * perProducer;
    // Read on until every event is in and the subscription says it is caught up.
    const subscribed = collect(
      client,
      { start: SubscribeRequest_Start.BEGINNING },
      (seqs, last) => seqs.length >= total && last.item.case === "heartbeat" && last.item.value.caughtUp,
    );
    const producers = [0, 1, 2, 3].map((p) => publishStream(grpcClient(server.url), `switch.p${p}`, perProducer));
    const accepted = await Promise.all(producers);
    expect(accepted.map(Number)).toEqual([perProducer, perProducer, perProducer, perProducer]);
    const { seqs, firstCaughtUp } = await subscribed;
    const head = await headOf(client);
    const faults = gapsAndDuplicates(seqs);
    // Events that committed after the subscription started and before it first caught up.
    const publishedDuringReplay = (firstCaughtUp ?? 0) - history;
    console.info(
      `switch-over: history ${history}, published by 4 producers ${4 * perProducer} (during replay: ${publishedDuringReplay}), received ${seqs.length}, gaps ${faults.gaps}, duplicates ${faults.duplicates}, out of order ${faults.outOfOrder}`,
    );
    expect(seqs.length).toBe(head);
    expect(seqs[0]).toBe(1);
    expect(seqs.at(-1)).toBe(head);
    expect(faults).toEqual({ gaps: 0, duplicates: 0, outOfOrder: 0 });
    expect(publishedDuringReplay, "producers committed events while the subscriber replayed").toBeGreaterThan(0);
  });

  it.each([
    ["gRPC-Web", () => createClient(AggregatorService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }))],
    ["Connect JSON", () => createClient(AggregatorService, createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: false }))],
    ["Connect binary over HTTP/2", () => createClient(AggregatorService, createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: true }))],
  ])("works over %s: replays a topic, then delivers what is published afterwards", async (protocol, makeClient) => {
    const topic = `proto.${protocol.replace(/\W+/g, "-")}`;
    await publishStream(client, topic, 30);
    const other = makeClient();
    let publishedLive = false;
    const seen: string[] = [];
    for await (const message of other.subscribe({ topic })) {
      if (message.item.case === "event") seen.push(message.item.value.eventId);
      if (message.item.case === "heartbeat" && message.item.value.caughtUp && !publishedLive) {
        publishedLive = true;
        await publishStream(client, topic, 5, 5, `${topic}-live`);
      }
      if (seen.length === 35) break;
    }
    expect(seen).toEqual([...Array.from({ length: 30 }, (_, i) => `${topic}-${i}`), ...Array.from({ length: 5 }, (_, i) => `${topic}-live-${i}`)]);
  });

  it("START_NEW delivers only what commits after it started; after_seq resumes right after a seq", async () => {
    const topic = "start.points";
    await publishStream(client, topic, 10);
    const firstTen = await collect(client, { topic }, (seqs) => seqs.length === 10);
    const live: string[] = [];
    for await (const message of client.subscribe({ topic, start: SubscribeRequest_Start.NEW })) {
      if (message.item.case === "heartbeat" && message.item.value.caughtUp && live.length === 0) await publishStream(client, topic, 3, 3, "start.points.new");
      if (message.item.case === "event") live.push(message.item.value.eventId);
      if (live.length === 3) break;
    }
    expect(live).toEqual(["start.points.new-0", "start.points.new-1", "start.points.new-2"]);
    const resumed = await collect(client, { topic, afterSeq: BigInt(firstTen.seqs[6]!) }, (seqs) => seqs.length === 6);
    expect(resumed.seqs).toEqual([...firstTen.seqs.slice(7), ...resumed.seqs.slice(3)]);
  });

  it("filters by topic prefix and source, and reports its cursor past what the filter skipped", async () => {
    await publishStream(client, "shop.orders", 5);
    await publishStream(client, "shop.refunds", 5);
    await publishStream(client, "shopping", 5);
    const byPrefix = await collect(client, { topicPrefix: "shop." }, (seqs, last) => last.item.case === "heartbeat" && last.item.value.caughtUp);
    expect(new Set(byPrefix.topics)).toEqual(new Set(["shop.orders", "shop.refunds"]));
    expect(byPrefix.seqs).toHaveLength(10);
    let cursor = 0n;
    for await (const message of client.subscribe({ source: "nobody-sends-this" })) {
      if (message.item.case === "event") throw new Error("no event has this source");
      if (message.item.case === "heartbeat" && message.item.value.caughtUp) {
        cursor = message.item.value.cursor;
        break;
      }
    }
    expect(Number(cursor)).toBe(await headOf(client));
  });

  it("refuses a bad request whole, naming the field", async () => {
    const refusal = async (request: SubscribeInit) => {
      try {
        for await (const _ of client.subscribe(request)) break;
      } catch (err) {
        return ConnectError.from(err);
      }
      throw new Error("expected a refusal");
    };
    const both = await refusal({ topic: "a", topicPrefix: "b" });
    expect(both.code).toBe(Code.InvalidArgument);
    expect(both.rawMessage).toContain("topic_prefix");
    expect((await refusal({ afterSeq: 5n, start: SubscribeRequest_Start.NEW })).rawMessage).toContain("after_seq");
    expect((await refusal({ heartbeatMs: 5 })).rawMessage).toContain("heartbeat_ms");
    expect((await refusal({ consumer: "has space" })).rawMessage).toContain("consumer");
    expect((await refusal({ maxUnacked: 10 })).rawMessage).toContain("max_unacked");
  });

  it("serves 100 concurrent subscribers, one per topic, each exactly its own topic's events in order", async () => {
    const topics = Array.from({ length: 100 }, (_, i) => `fan.t${String(i).padStart(3, "0")}`);
    const perTopic = 40;
    // Four connections, 25 subscriptions each, as a client multiplexing topics on a few channels would.
    const clients = [0, 1, 2, 3].map(() => grpcClient(server.url));
    const caughtUp: Promise<void>[] = [];
    const subscriptions = topics.map((topic, i) => {
      let markCaughtUp!: () => void;
      caughtUp.push(new Promise((resolve) => (markCaughtUp = resolve)));
      const ids: string[] = [];
      const done = (async () => {
        for await (const message of clients[i % 4]!.subscribe({ topic })) {
          if (message.item.case === "heartbeat" && message.item.value.caughtUp) markCaughtUp();
          if (message.item.case === "event") ids.push(message.item.value.eventId);
          if (ids.length === perTopic) return ids;
        }
        return ids;
      })();
      return done;
    });
    await Promise.all(caughtUp);
    // Publish every topic's events interleaved, from two streams.
    const events = topics.flatMap((topic) => Array.from({ length: perTopic }, (_, i) => makeEvent({ topic, eventId: `${topic}-${i}` })));
    const half = events.length / 2;
    await Promise.all(
      [events.slice(0, half), events.slice(half)].map((part) =>
        client.publishStream(
          (async function* () {
            for (let i = 0; i < part.length; i += 200) yield create(PublishStreamRequestSchema, { events: part.slice(i, i + 200) });
          })(),
        ),
      ),
    );
    const received = await Promise.all(subscriptions);
    for (const [i, ids] of received.entries()) {
      expect(ids).toEqual(Array.from({ length: perTopic }, (_, n) => `${topics[i]}-${n}`));
    }
  });
});
