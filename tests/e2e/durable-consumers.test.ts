/**
 * Durable consumers end to end: a real server (killed with SIGKILL once), a
 * real SQLite file, connect-node over gRPC. The claims: a consumer resumes
 * after what it acknowledged, across its own crashes and the server's, so it
 * receives every event at least once and again only what it had not
 * acknowledged; max_unacked pauses delivery without ending it; one
 * subscription per consumer is live; Consumers and DeleteConsumer say and do
 * what they should.
 */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { AggregatorService, PublishStreamRequestSchema, type SubscribeRequestSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { failureOf, streamEnd } from "../support/promises.js";
import { startServer, type TestServer } from "../support/server.js";

type AggregatorClient = Client<typeof AggregatorService>;

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

async function serve(dbPath?: string): Promise<{ server: TestServer; client: AggregatorClient }> {
  const server = await startServer(dbPath === undefined ? {} : { dbPath });
  servers.push(server);
  return { server, client: grpcClient(server.url) };
}

async function publish(client: AggregatorClient, topic: string, from: number, count: number): Promise<void> {
  const events = Array.from({ length: count }, (_, i) => makeEvent({ topic, eventId: `${topic}-${from + i}` }));
  await client.publishStream(
    (async function* () {
      for (let i = 0; i < events.length; i += 250) yield create(PublishStreamRequestSchema, { events: events.slice(i, i + 250) });
    })(),
  );
}

/** Seqs of every stored event of `topic`, paging through Events. */
async function storedSeqs(client: AggregatorClient, topic: string): Promise<number[]> {
  const seqs: number[] = [];
  let after = 0n;
  for (;;) {
    const page = await client.events({ topic, afterSeq: after, limit: 1000 });
    seqs.push(...page.events.map((e) => Number(e.seq)));
    after = page.nextCursor;
    if (!page.hasMore) return seqs;
  }
}

interface Incarnation {
  delivered: number[];
  /** The consumer's acknowledged seq as the last answered Ack said. */
  acked: number;
  /** How it ended. */
  end: "killed" | "server died" | "caught up";
}

/**
 * One life of a consumer process: subscribe, ack every `ackEvery` events,
 * and die without a word after `dieAfter` deliveries (the stream is reset,
 * nothing more is acked), or when the server dies, or once caught up.
 */
async function consumerLife(client: AggregatorClient, request: MessageInitShape<typeof SubscribeRequestSchema> & { consumer: string }, ackEvery: number, dieAfter: number, onDelivered?: (count: number) => Promise<void>): Promise<Incarnation> {
  const life: Incarnation = { delivered: [], acked: 0, end: "caught up" };
  const kill = new AbortController();
  try {
    for await (const message of client.subscribe(request, { signal: kill.signal })) {
      if (message.item.case === "heartbeat") {
        if (message.item.value.caughtUp && life.delivered.length > 0 && dieAfter === Infinity) break;
        continue;
      }
      if (message.item.case !== "event") continue;
      life.delivered.push(Number(message.item.value.seq));
      await onDelivered?.(life.delivered.length);
      if (life.delivered.length === dieAfter) {
        life.end = "killed";
        kill.abort();
        break;
      }
      if (life.delivered.length % ackEvery === 0) {
        life.acked = Number((await client.ack({ consumer: request.consumer, seq: message.item.value.seq })).ackedSeq);
      }
    }
  } catch (err) {
    if (kill.signal.aborted) return life;
    const code = ConnectError.from(err).code;
    if (code !== Code.Unavailable && code !== Code.Internal && code !== Code.Canceled) throw err;
    life.end = "server died";
  }
  return life;
}

describe("durable consumers", () => {
  it("receive every event at least once, and again only what was not acknowledged, across three consumer kills and a server SIGKILL", async () => {
    const topic = "billing.in";
    let { server, client } = await serve();
    await publish(client, topic, 0, 2_000);
    await publish(client, "noise", 0, 500);
    const consumer = "billing";
    const request = { topic, consumer };
    const lives: Incarnation[] = [];
    let published = 2_000;

    // Three kills of the consumer at deliveries that are not ack boundaries, more events published between lives.
    for (const dieAfter of [337, 421, 290]) {
      lives.push(await consumerLife(client, request, 50, dieAfter));
      await publish(client, topic, published, 300);
      published += 300;
    }
    // The server dies mid-delivery (SIGKILL: no shutdown, no flush beyond what was committed), and comes back on the same file.
    lives.push(
      await consumerLife(client, request, 50, Infinity, async (count) => {
        if (count === 260) await server.stop("SIGKILL");
      }),
    );
    ({ server, client } = await serve(server.dbPath));
    await publish(client, topic, published, 300);
    published += 300;
    lives.push(await consumerLife(client, request, 50, Infinity));

    const stored = await storedSeqs(client, topic);
    expect(stored).toHaveLength(published);
    const everything = lives.flatMap((l) => l.delivered);
    expect(new Set(everything), "every stored event was delivered at least once").toEqual(new Set(stored));
    expect(lives.map((l) => l.end)).toEqual(["killed", "killed", "killed", "server died", "caught up"]);

    let redelivered = 0;
    for (let k = 1; k < lives.length; k++) {
      const before = lives[k - 1]!;
      const acked = before.acked;
      // The next life starts right after the acknowledged seq: what was acknowledged never comes again, and nothing after it is skipped.
      const firstExpected = stored.find((seq) => seq > acked);
      expect(lives[k]!.delivered[0], `life ${k + 1} starts after the acknowledged seq ${acked}`).toBe(firstExpected);
      const unacked = before.delivered.filter((seq) => seq > acked);
      const again = lives[k]!.delivered.filter((seq) => before.delivered.includes(seq));
      expect(again, `life ${k + 1} re-receives exactly what life ${k} had not acknowledged`).toEqual(unacked);
      redelivered += again.length;
    }
    for (const life of lives) {
      for (let i = 1; i < life.delivered.length; i++) expect(life.delivered[i]!).toBeGreaterThan(life.delivered[i - 1]!);
    }
    console.info(
      `durable consumer: ${published} events in 5 lives (3 consumer kills, 1 server SIGKILL): delivered ${everything.length}, distinct ${new Set(everything).size}, missed 0, re-delivered ${redelivered} (each unacknowledged when its life ended); acked seqs ${lives.map((l) => l.acked).join(", ")}`,
    );
  });

  it("pauses delivery at max_unacked with heartbeats, and goes on after an Ack", async () => {
    const { client } = await serve();
    await publish(client, "paced", 0, 50);
    const seen: number[] = [];
    let pausedHeartbeats = 0;
    for await (const message of client.subscribe({ topic: "paced", consumer: "pacer", maxUnacked: 10, heartbeatMs: 150 })) {
      if (message.item.case === "event") seen.push(Number(message.item.value.seq));
      if (message.item.case === "heartbeat" && !message.item.value.caughtUp) {
        pausedHeartbeats++;
        expect(seen, "nothing beyond max_unacked was delivered while paused").toHaveLength(10);
        if (pausedHeartbeats === 2) await client.ack({ consumer: "pacer", seq: BigInt(seen[4]!) });
      }
      if (seen.length === 15) break;
    }
    expect(pausedHeartbeats).toBeGreaterThanOrEqual(2);
    const consumers = await client.consumers({});
    expect(consumers.consumers.map((c) => ({ name: c.name, acked: Number(c.ackedSeq), lag: Number(c.lag) }))).toEqual([{ name: "pacer", acked: seen[4], lag: 45 }]);
  });

  it("lets a newer subscription take a consumer over, and refuses one with other filters", async () => {
    const { client } = await serve();
    await publish(client, "t", 0, 5);
    const first = client.subscribe({ topic: "t", consumer: "c1" })[Symbol.asyncIterator]();
    expect((await first.next()).value.item.case).toBe("event");
    const second = client.subscribe({ topic: "t", consumer: "c1" })[Symbol.asyncIterator]();
    expect((await second.next()).value.item.case).toBe("event");
    const ended = await streamEnd(first);
    expect(ended?.code).toBe(Code.Aborted);
    expect(ended?.rawMessage).toContain("taken over");
    await second.return?.();

    const other = await streamEnd(client.subscribe({ topic: "u", consumer: "c1" })[Symbol.asyncIterator]());
    expect(other?.code).toBe(Code.FailedPrecondition);
    expect(other?.rawMessage).toContain('topic "t"');
  });

  it("lists consumers with their acked seq and lag, refuses bad acks, and deletes, ending the live subscription", async () => {
    const { client } = await serve();
    await publish(client, "orders", 0, 30);
    await publish(client, "users", 0, 10);
    const live = client.subscribe({ topic: "orders", consumer: "audit" })[Symbol.asyncIterator]();
    const firstEvent = (await live.next()).value;
    expect(firstEvent.item.case).toBe("event");
    await client.ack({ consumer: "audit", seq: 10n });
    const listed = (await client.consumers({})).consumers;
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ name: "audit", topic: "orders", ackedSeq: 10n, lag: 20n, lagCapped: false, subscribers: 1 });
    expect(listed[0]!.ackedAt).toBeDefined();

    const ackError = (consumer: string, seq: bigint) => failureOf(() => client.ack({ consumer, seq }));
    expect((await ackError("audit", 10_000n))?.code).toBe(Code.InvalidArgument);
    expect((await ackError("nobody", 1n))?.code).toBe(Code.NotFound);
    expect((await ackError("bad name!", 1n))?.code).toBe(Code.InvalidArgument);
    // An ack below the acknowledged seq changes nothing (AckAll: the cursor only moves forward).
    expect((await client.ack({ consumer: "audit", seq: 3n })).ackedSeq).toBe(10n);

    expect((await client.deleteConsumer({ name: "audit" })).ackedSeq).toBe(10n);
    const ended = await streamEnd(live);
    expect(ended?.code).toBe(Code.Aborted);
    expect((await client.consumers({})).consumers).toEqual([]);
    const again = await failureOf(() => client.deleteConsumer({ name: "audit" }));
    expect(again?.code).toBe(Code.NotFound);
  });
});
