/**
 * Subscribe end to end: a real server, real clients (connect-node over gRPC,
 * gRPC-Web and Connect), a real SQLite file. The claims: replay turns into
 * live with no gap and no duplicate while producers publish at full speed;
 * filters and start points deliver exactly what they name; many subscribers
 * share one server.
 */
import { create } from "@bufbuild/protobuf";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AggregatorService, PublishStreamRequestSchema, SubscribeRequest_Start, type SubscribeRequest, type SubscribeResponse } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { rawSubscribe } from "../support/raw-subscriber.js";
import { streamEnd } from "../support/promises.js";
import { startServer, type TestServer } from "../support/server.js";

type AggregatorClient = Client<typeof AggregatorService>;

/** The compiled publisher tool; tests/global-setup.ts builds it. */
const publisherEntry = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "dist", "tools", "src", "tools", "publisher.js");
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

/**
 * The publisher tool (src/tools/publisher.ts) as a process of its own:
 * distinct events, PublishStream batches of 500. Resolves with the events
 * the server acknowledged as accepted (its exit code also checks the
 * server's counters, which concurrent publishers move for each other).
 */
function runPublisher(url: string, events: number, seed: number, shape: string[] = ["--batch", "500"]): Promise<number> {
  const child = spawn(process.execPath, [publisherEntry, "--target", url, "--events", String(events), "--dup-rate", "0", "--concurrency", "1", "--seed", String(seed), ...shape], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve, reject) =>
    child.once("exit", () => {
      const accepted = /answers: (\d+) accepted/.exec(output);
      if (accepted === null || /given up/.test(output)) reject(new Error(`publisher failed:\n${output}`));
      else resolve(Number(accepted[1]));
    }),
  );
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

  it("replays from the beginning and turns live with no gap and no duplicate while four producer processes publish at full speed", async () => {
    // The history: enough that replaying it takes a while.
    expect(await runPublisher(server.url, 100_000, 1)).toBe(100_000);
    const history = await headOf(client);
    const seqs: number[] = [];
    let firstCaughtUp: number | undefined;
    let producing = true;
    let caughtUpWhileProducing = false;
    let reachedHead: (() => void) | undefined;
    let target = Infinity;
    const subscription = rawSubscribe(server.url, { start: SubscribeRequest_Start.BEGINNING, heartbeatMs: 200 }, (item) => {
      if (item.kind === "event") seqs.push(item.seq);
      else if (item.heartbeat.caughtUp) {
        firstCaughtUp ??= Number(item.heartbeat.cursor);
        if (producing) caughtUpWhileProducing = true;
      }
      if (seqs.at(-1) === target) reachedHead?.();
    });
    // Four producer processes start with the subscription and publish at full speed while it replays. A server saturated by
    // four producers ingests faster than it can also replay, so each producer then goes on at 200 events/s, in rounds, until
    // the subscription has caught up: it turns live while commits still arrive, which is the switch this test is about.
    const fullSpeed = 50_000;
    const perRound = 1_000;
    const maxRounds = 20;
    const published = await Promise.all(
      [2, 3, 4, 5].map(async (producer) => {
        let stored = await runPublisher(server.url, fullSpeed, producer);
        for (let round = 1; round <= maxRounds && !caughtUpWhileProducing; round++) {
          stored += await runPublisher(server.url, perRound, producer * 1000 + round, ["--batch", "10", "--rate", "200"]);
        }
        return stored;
      }),
    );
    producing = false;
    expect(caughtUpWhileProducing, "the subscription turned live while the producers were still publishing").toBe(true);
    const total = published.reduce((a, b) => a + b, 0);
    const head = await headOf(client);
    target = head;
    if (seqs.at(-1) !== head) await new Promise<void>((resolve) => (reachedHead = resolve));
    subscription.close();
    const faults = gapsAndDuplicates(seqs);
    const duringReplay = (firstCaughtUp ?? head) - history;
    console.info(
      `switch-over: history ${history}; 4 producer processes stored ${head - history} more (${duringReplay} while the subscriber replayed, ${head - history - duringReplay} after it turned live); received ${seqs.length} of ${head}: gaps ${faults.gaps}, duplicates ${faults.duplicates}, out of order ${faults.outOfOrder}`,
    );
    expect(seqs[0]).toBe(1);
    expect(seqs.length).toBe(head);
    expect(faults).toEqual({ gaps: 0, duplicates: 0, outOfOrder: 0 });
    expect(head - history, "every event the producers had acknowledged is stored").toBe(total);
    expect(duringReplay, "producers committed events while the subscriber replayed").toBeGreaterThan(0);
    expect(head - firstCaughtUp!, "producers committed events after the subscriber turned live").toBeGreaterThan(0);
  }, 240_000);

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

  it("ends a subscription that caught up and then fell more than max_lag behind with resource_exhausted and the seq to resume from", async () => {
    const topic = "lagging";
    const iterator = client.subscribe({ topic, maxLag: 100n, start: SubscribeRequest_Start.NEW })[Symbol.asyncIterator]();
    const first = (await iterator.next()).value;
    expect(first.item.case === "heartbeat" && first.item.value.caughtUp).toBe(true);
    // The client stops reading while far more than max_lag commits, with payloads large enough to fill the stream's windows.
    const big = { blob: "x".repeat(8_000) };
    for (let i = 0; i < 20; i++) {
      await client.publish({ events: Array.from({ length: 100 }, (_, n) => makeEvent({ topic, eventId: `lag-${i}-${n}`, payload: big })) });
    }
    const ended = await streamEnd(iterator);
    expect(ended?.code).toBe(Code.ResourceExhausted);
    expect(ended?.rawMessage).toMatch(/max_lag of 100; subscribe again with after_seq \d+/);
  });

  it("refuses a bad request whole, naming the field", async () => {
    const refusal = async (request: SubscribeInit) => {
      const refused = await streamEnd(client.subscribe(request)[Symbol.asyncIterator]());
      if (refused === undefined) throw new Error("expected a refusal");
      return refused;
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
