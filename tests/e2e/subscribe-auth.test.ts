/**
 * Subscribe, Ack, Consumers and DeleteConsumer against a real server started
 * with --auth-tokens, over gRPC (the lean Subscribe path) and gRPC-Web
 * (connect-es). The claims: subscribing needs the read role; a topic-limited
 * token subscribes only with a topic or prefix inside its own; it cannot
 * acknowledge, delete or list a durable consumer whose filter reaches
 * outside them, and a refused call changes nothing.
 */
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AggregatorService, SubscribeRequest_Start, type ConsumerInfo, type SubscribeRequest } from "../../gen/aggregator/v1/aggregator_pb.js";
import { makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";
import { bearer, secret, writeTokenFile } from "../support/tokens.js";
import { refusal } from "../support/promises.js";

type AggregatorClient = Client<typeof AggregatorService>;
type SubscribeInit = Partial<Omit<SubscribeRequest, "$typeName">>;

const tokens = { admin: secret(), ingest: secret(), teamA: secret() };
const limitation = 'token "team-a-reader" is limited to topics starting with "team-a."';

let server: TestServer;

beforeAll(async () => {
  const file = writeTokenFile([
      { name: "admin", token: tokens.admin, roles: ["publish", "read"] },
      { name: "ingest", token: tokens.ingest, roles: ["publish"] },
      { name: "team-a-reader", token: tokens.teamA, roles: ["read"], topics: ["team-a."] },
    ]);
  server = await startServer({ args: ["--auth-tokens", file] });
});

afterAll(async () => {
  expect(await server.stop()).toBe(0);
});

/** connect-node over gRPC: Subscribe takes the server's lean gRPC path. */
function grpcAs(token: string): AggregatorClient {
  return createClient(AggregatorService, createGrpcTransport({ baseUrl: server.url, interceptors: [bearer(token)] }));
}

/** connect-node over gRPC-Web: Subscribe goes through connect-es. */
function grpcWebAs(token: string): AggregatorClient {
  return createClient(AggregatorService, createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1", interceptors: [bearer(token)] }));
}

/** Opens a subscription and reads its first message: resolves once the server has accepted it, rejects with its refusal. */
async function firstMessage(client: AggregatorClient, request: SubscribeInit): Promise<void> {
  for await (const _ of client.subscribe(request)) return;
  throw new Error("the subscription ended without a message");
}

/** Reads a subscription until it is caught up, then `after()`, then until `count` events have arrived; answers their event ids. */
async function eventIds(client: AggregatorClient, request: SubscribeInit, count: number, after: () => Promise<unknown>): Promise<string[]> {
  const ids: string[] = [];
  let triggered = false;
  for await (const message of client.subscribe(request)) {
    if (message.item.case === "heartbeat" && message.item.value.caughtUp && !triggered) {
      triggered = true;
      await after();
    }
    if (message.item.case === "event") ids.push(message.item.value.eventId);
    if (ids.length === count) break;
  }
  return ids;
}

/** Every consumer as the admin sees it, by name. */
async function consumersAsAdmin(): Promise<Map<string, ConsumerInfo>> {
  const page = await grpcAs(tokens.admin).consumers({ limit: 500 });
  return new Map(page.consumers.map((c) => [c.name, c]));
}

describe.each([
  ["gRPC", grpcAs],
  ["gRPC-Web", grpcWebAs],
])("Subscribe over %s", (_, as) => {
  it("needs the read role: a publish-only token is refused with permission_denied", async () => {
    const err = await refusal(firstMessage(as(tokens.ingest), { topic: "team-a.x" }));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe('token "ingest" lacks the "read" role that Subscribe needs');
  });

  it.each([
    ["another team's topic", { topic: "team-b.x" }, 'asked for topic "team-b.x"'],
    ["a prefix wider than its own", { topicPrefix: "team-" }, 'asked for topic_prefix "team-"'],
    ["no topic filter", {}, "asked for every topic (no topic filter)"],
    ["only a source filter", { source: "test" }, "asked for every topic (no topic filter)"],
  ])("refuses a topic-limited token that asks for %s", async (_, request: SubscribeInit, asked) => {
    const err = await refusal(firstMessage(as(tokens.teamA), request));
    expect(err.code).toBe(Code.PermissionDenied);
    expect(err.rawMessage).toBe(`${limitation}; Subscribe ${asked}`);
  });

  it("lets a topic-limited token follow its own topic and its own prefix, delivering only those events", async () => {
    let round = 0;
    const publish = () => {
      const tag = `${as === grpcAs ? "grpc" : "web"}-${++round}`;
      return grpcAs(tokens.admin).publish({
        events: [
          makeEvent({ topic: "team-b.x", eventId: `${tag}-b` }),
          makeEvent({ topic: "team-a.y", eventId: `${tag}-ay` }),
          makeEvent({ topic: "team-ab", eventId: `${tag}-ab` }),
          makeEvent({ topic: "team-a.x", eventId: `${tag}-ax` }),
        ],
      });
    };
    const byTopic = await eventIds(as(tokens.teamA), { topic: "team-a.x", start: SubscribeRequest_Start.NEW }, 1, publish);
    const byPrefix = await eventIds(as(tokens.teamA), { topicPrefix: "team-a.", start: SubscribeRequest_Start.NEW }, 2, publish);
    const tag = as === grpcAs ? "grpc" : "web";
    expect(byTopic).toEqual([`${tag}-1-ax`]);
    expect(byPrefix).toEqual([`${tag}-2-ay`, `${tag}-2-ax`]);
  });
});

describe("durable consumers with a topic-limited token", () => {
  /** The admin's consumers: one the team-a token may read, one of another team's, one of every topic. */
  const consumers = {
    mine: { consumer: "team-a-orders", topicPrefix: "team-a." },
    mineToDelete: { consumer: "team-a-scratch", topic: "team-a.scratch" },
    theirs: { consumer: "team-b-orders", topic: "team-b.x" },
    everything: { consumer: "audit-all" },
  } satisfies Record<string, SubscribeInit>;
  let head = 0n;

  beforeAll(async () => {
    const admin = grpcAs(tokens.admin);
    const published = await admin.publish({
      events: [makeEvent({ topic: "team-a.x", eventId: "c-ax" }), makeEvent({ topic: "team-b.x", eventId: "c-bx-1" }), makeEvent({ topic: "team-b.x", eventId: "c-bx-2" })],
    });
    head = published.results.at(-1)!.seq;
    // Subscribing with a consumer name creates it; its first message means it exists.
    for (const request of Object.values(consumers)) await firstMessage(admin, request);
    // The other team's consumer has acknowledged its first event: a refused Ack or delete must leave that as it is.
    await admin.ack({ consumer: consumers.theirs.consumer, seq: published.results[1]!.seq });
  });

  it("cannot Ack or delete another team's consumer, nor one of every topic: permission_denied, and the consumer is unchanged", async () => {
    const before = await consumersAsAdmin();
    const teamA = grpcAs(tokens.teamA);
    for (const name of [consumers.theirs.consumer, consumers.everything.consumer]) {
      // The refusal names the consumer, never the topics it follows: they may be another team's.
      const ack = await refusal(teamA.ack({ consumer: name, seq: head }));
      expect(ack.code).toBe(Code.PermissionDenied);
      expect(ack.rawMessage).toContain(`${limitation}; consumer "${name}" follows topics outside them, so Ack may not use it`);
      const deletion = await refusal(teamA.deleteConsumer({ name }));
      expect(deletion.code).toBe(Code.PermissionDenied);
      expect(deletion.rawMessage).toContain(`consumer "${name}" follows topics outside them, so DeleteConsumer may not use it`);
    }
    // Nor take it over by subscribing with its name and filter.
    expect((await refusal(firstMessage(teamA, consumers.theirs))).code).toBe(Code.PermissionDenied);
    // Nor learn its filter by subscribing with its name and a filter of its own.
    const probe = await refusal(firstMessage(teamA, { consumer: consumers.theirs.consumer, topic: "team-a.x" }));
    expect(probe.code).toBe(Code.PermissionDenied);
    expect(probe.rawMessage).not.toContain("team-b.x");
    const after = await consumersAsAdmin();
    for (const name of [consumers.theirs.consumer, consumers.everything.consumer]) {
      expect(after.get(name), `${name} still exists`).toBeDefined();
      expect(after.get(name)!.ackedSeq).toBe(before.get(name)!.ackedSeq);
      expect(after.get(name)!.ackedAt).toEqual(before.get(name)!.ackedAt);
    }
    expect(after.get(consumers.theirs.consumer)!.ackedSeq).toBeGreaterThan(0n);
    expect(after.get(consumers.theirs.consumer)!.ackedSeq).toBeLessThan(head);
  });

  it("may Ack and delete a consumer inside its topics", async () => {
    const teamA = grpcAs(tokens.teamA);
    expect((await teamA.ack({ consumer: consumers.mine.consumer, seq: head })).ackedSeq).toBe(head);
    expect((await consumersAsAdmin()).get(consumers.mine.consumer)!.ackedSeq).toBe(head);
    await teamA.deleteConsumer({ name: consumers.mineToDelete.consumer });
    expect((await consumersAsAdmin()).has(consumers.mineToDelete.consumer)).toBe(false);
  });

  it("Consumers lists only the consumers the limited token may read", async () => {
    const adminNames = [...(await consumersAsAdmin()).keys()];
    expect(adminNames).toEqual(expect.arrayContaining([consumers.mine.consumer, consumers.theirs.consumer, consumers.everything.consumer]));
    // team-a-scratch is there too when the test before it did not run.
    const readable = adminNames.filter((name) => name === consumers.mine.consumer || name === consumers.mineToDelete.consumer);
    const page = await grpcAs(tokens.teamA).consumers({ limit: 500 });
    expect(page.consumers.map((c) => c.name)).toEqual(readable);
    expect(page.consumers.find((c) => c.name === consumers.mine.consumer)!.topicPrefix).toBe("team-a.");
  });
});
