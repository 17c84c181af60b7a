/**
 * Drives the real server with @grpc/grpc-js and @grpc/proto-loader: an
 * independent gRPC implementation that only shares the .proto files with the
 * server, so wire-level mistakes that connect-es would hide on both ends show up.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { randomUUID } from "node:crypto";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type TestServer } from "../support/server.js";

const protoDir = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "proto");

// ---------------------------------------------------------------------------
// Message shapes as proto-loader presents them (keepCase, longs: String,
// enums: String, defaults, oneofs).
// ---------------------------------------------------------------------------

type JsonPrimitive = string | number | boolean | null;
type JsonValue = JsonPrimitive | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

/** google.protobuf.Value as proto-loader reads and writes it. */
interface PbValue {
  nullValue?: "NULL_VALUE" | 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: PbStruct;
  listValue?: { values: PbValue[] };
  /** Set on decoded messages (oneofs: true): which member is present. */
  kind?: "nullValue" | "numberValue" | "stringValue" | "boolValue" | "structValue" | "listValue";
}
interface PbStruct {
  fields: Record<string, PbValue>;
}
interface PbTimestamp {
  seconds: string | number;
  nanos: number;
}

interface PbEvent {
  topic: string;
  event_id: string;
  timestamp: PbTimestamp | null;
  source: string;
  payload: PbStruct | null;
}

type PublishStatus = "STATUS_UNSPECIFIED" | "STATUS_ACCEPTED" | "STATUS_DUPLICATE" | "STATUS_CONFLICT";

interface PublishResponse {
  accepted: number;
  duplicates: number;
  conflicts: number;
  results: { status: PublishStatus; seq: string }[];
}
interface PublishStreamResponse {
  received: string;
  accepted: string;
  duplicates: string;
  conflicts: string;
  batches: string;
}
interface EventsRequest {
  topic?: string;
  source?: string;
  after_seq?: string | number;
  limit?: number;
}
interface StoredEvent {
  seq: string;
  topic: string;
  event_id: string;
  timestamp: PbTimestamp;
  source: string;
  payload: PbStruct;
  received_at: PbTimestamp;
}
interface EventsResponse {
  events: StoredEvent[];
  next_cursor: string;
  has_more: boolean;
}
interface StatsResponse {
  received: string;
  unique_processed: string;
  duplicate_dropped: string;
  conflicts: string;
  topics: { name: string; count: string }[];
  topic_count: string;
  uptime_seconds: number;
  queue_events: number;
  queue_bytes: string;
  rejected_invalid: string;
  rejected_overload: string;
}
type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN";
interface HealthCheckResponse {
  status: ServingStatus;
}

type Unary<Req, Res> = (req: Req, options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

interface AggregatorClient extends grpc.Client {
  Publish: Unary<{ events: PbEvent[] }, PublishResponse>;
  PublishStream(callback: grpc.requestCallback<PublishStreamResponse>): grpc.ClientWritableStream<{ events: PbEvent[] }>;
  Events: Unary<EventsRequest, EventsResponse>;
  Stats: Unary<Record<string, never>, StatsResponse>;
}
interface HealthClient extends grpc.Client {
  Check: Unary<{ service: string }, HealthCheckResponse>;
  Watch(req: { service: string }): grpc.ClientReadableStream<HealthCheckResponse>;
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** A plain JS value as google.protobuf.Value. */
function toValue(value: JsonValue): PbValue {
  if (value === null) return { nullValue: "NULL_VALUE" };
  if (typeof value === "number") return { numberValue: value };
  if (typeof value === "string") return { stringValue: value };
  if (typeof value === "boolean") return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

/** A plain JS object as google.protobuf.Struct. */
function toStruct(object: JsonObject): PbStruct {
  return { fields: Object.fromEntries(Object.entries(object).map(([key, value]) => [key, toValue(value)])) };
}

/** A decoded google.protobuf.Value back to plain JS. */
function fromValue(value: PbValue): JsonValue {
  switch (value.kind) {
    case "nullValue":
      return null;
    case "numberValue":
      return value.numberValue!;
    case "stringValue":
      return value.stringValue!;
    case "boolValue":
      return value.boolValue!;
    case "listValue":
      return value.listValue!.values.map(fromValue);
    case "structValue":
      return fromStruct(value.structValue!);
    default:
      throw new Error(`google.protobuf.Value without a kind: ${JSON.stringify(value)}`);
  }
}

/** A decoded google.protobuf.Struct back to a plain JS object. */
function fromStruct(struct: PbStruct): JsonObject {
  return Object.fromEntries(Object.entries(struct.fields).map(([key, value]) => [key, fromValue(value)]));
}

/** 2025-10-24T10:00:00Z */
const baseSeconds = 1_761_300_000;

/** A valid event in proto-loader's shape. */
function event(topic: string, eventId: string = randomUUID(), payload: JsonObject = { amount: 100, currency: "EUR" }): PbEvent {
  return {
    topic,
    event_id: eventId,
    timestamp: { seconds: baseSeconds, nanos: 0 },
    source: "grpc-js",
    payload: toStruct(payload),
  };
}

/** A topic no other test uses, so tests on the shared server do not see each other's events. */
function freshTopic(name: string): string {
  return `grpc-js.${name}.${randomUUID()}`;
}

/** Unary calls get a deadline so a hung server fails the test with DEADLINE_EXCEEDED rather than a timeout. */
function callOptions(): grpc.CallOptions {
  return { deadline: Date.now() + 30_000 };
}

function unary<Req, Res>(client: grpc.Client, method: Unary<Req, Res>, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(client, req, callOptions(), (err, res) => {
      if (err) reject(err);
      else if (res === undefined) reject(new Error("no response and no error"));
      else resolve(res);
    });
  });
}

// ---------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------

let server: TestServer;
let aggregator: AggregatorClient;
let health: HealthClient;

const publish = (events: PbEvent[]) => unary(aggregator, aggregator.Publish, { events });
const eventsPage = (req: EventsRequest) => unary(aggregator, aggregator.Events, req);
const stats = () => unary(aggregator, aggregator.Stats, {});

/** Every stored event of a topic, paging with after_seq = next_cursor until has_more is false. */
async function allEvents(topic: string): Promise<{ events: StoredEvent[]; pages: EventsResponse[] }> {
  const events: StoredEvent[] = [];
  const pages: EventsResponse[] = [];
  let cursor = "0";
  for (;;) {
    const page = await eventsPage({ topic, after_seq: cursor, limit: 1000 });
    pages.push(page);
    events.push(...page.events);
    if (page.events.length > 0) expect(page.next_cursor).toBe(page.events.at(-1)!.seq);
    cursor = page.next_cursor;
    if (!page.has_more) return { events, pages };
    expect(page.events.length, "a topic page is cut short only by the byte limit, never empty").toBeGreaterThan(0);
  }
}

beforeAll(async () => {
  server = await startServer();
  const definition = protoLoader.loadSync(["aggregator/v1/aggregator.proto", "grpc/health/v1/health.proto"], {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [protoDir],
  });
  const loaded = grpc.loadPackageDefinition(definition);
  const aggregatorV1 = (loaded.aggregator as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const healthV1 = ((loaded.grpc as grpc.GrpcObject).health as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const target = `127.0.0.1:${server.port}`;
  const AggregatorService = aggregatorV1.AggregatorService as grpc.ServiceClientConstructor;
  const Health = healthV1.Health as grpc.ServiceClientConstructor;
  aggregator = new AggregatorService(target, grpc.credentials.createInsecure()) as unknown as AggregatorClient;
  health = new Health(target, grpc.credentials.createInsecure()) as unknown as HealthClient;
});

afterAll(async () => {
  aggregator?.close();
  health?.close();
  await server?.stop();
});

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

describe("AggregatorService over grpc-js", () => {
  it("Publish accepts a new event with a seq, answers a re-send as DUPLICATE with the same seq, and a changed payload as CONFLICT", async () => {
    const topic = freshTopic("unary");
    const id = randomUUID();
    const original = event(topic, id, { amount: 100, currency: "EUR", tags: ["a", "b"], nested: { ok: true, nothing: null } });

    const first = await publish([original]);
    expect(first).toMatchObject({ accepted: 1, duplicates: 0, conflicts: 0 });
    expect(first.results).toHaveLength(1);
    expect(first.results[0]!.status).toBe("STATUS_ACCEPTED");
    const seq = first.results[0]!.seq;
    expect(BigInt(seq)).toBeGreaterThan(0n);

    const again = await publish([original]);
    expect(again).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 0 });
    expect(again.results).toEqual([{ status: "STATUS_DUPLICATE", seq }]);

    const changed = await publish([event(topic, id, { amount: 999, currency: "EUR" })]);
    expect(changed).toMatchObject({ accepted: 0, duplicates: 0, conflicts: 1 });
    expect(changed.results).toEqual([{ status: "STATUS_CONFLICT", seq }]);

    // One batch mixing all three outcomes: counts and per-event results in request order.
    const fresh = event(topic);
    const mixed = await publish([original, fresh, event(topic, id, { amount: 1 })]);
    expect(mixed).toMatchObject({ accepted: 1, duplicates: 1, conflicts: 1 });
    expect(mixed.results.map((r) => r.status)).toEqual(["STATUS_DUPLICATE", "STATUS_ACCEPTED", "STATUS_CONFLICT"]);
    expect(mixed.results[0]!.seq).toBe(seq);
    expect(mixed.results[2]!.seq).toBe(seq);
    expect(BigInt(mixed.results[1]!.seq)).toBeGreaterThan(BigInt(seq));

    // The first payload won, and it reads back exactly as sent over Struct.
    const { events } = await allEvents(topic);
    expect(events.map((e) => [e.seq, e.event_id])).toEqual([
      [seq, id],
      [mixed.results[1]!.seq, fresh.event_id],
    ]);
    expect(fromStruct(events[0]!.payload)).toEqual({ amount: 100, currency: "EUR", tags: ["a", "b"], nested: { ok: true, nothing: null } });
    expect(events[0]).toMatchObject({ topic, source: "grpc-js", timestamp: { seconds: String(baseSeconds), nanos: 0 } });
  });

  it("PublishStream totals 1,200 received as 1,000 accepted and 200 duplicates, and Events pages them back in send order", async () => {
    const topic = freshTopic("stream");
    const batches: PbEvent[][] = [];
    for (let b = 0; b < 10; b++) {
      batches.push(Array.from({ length: 100 }, (_, i) => event(topic, `e-${String(b * 100 + i).padStart(4, "0")}-${randomUUID()}`, { b, i })));
    }
    const sent = batches.flat();
    // 200 re-sends of already-sent events (every fifth one), in two further messages.
    const resends = sent.filter((_, i) => i % 5 === 0);
    expect(resends).toHaveLength(200);
    batches.push(resends.slice(0, 100), resends.slice(100));

    const totals = await new Promise<PublishStreamResponse>((resolve, reject) => {
      const call = aggregator.PublishStream((err, res) => {
        if (err) reject(err);
        else if (res === undefined) reject(new Error("no response and no error"));
        else resolve(res);
      });
      for (const events of batches) call.write({ events });
      call.end();
    });
    expect(totals).toEqual({ received: "1200", accepted: "1000", duplicates: "200", conflicts: "0", batches: "12" });

    const { events, pages } = await allEvents(topic);
    expect(events.map((e) => e.event_id)).toEqual(sent.map((e) => e.event_id));
    for (let i = 1; i < events.length; i++) expect(BigInt(events[i]!.seq)).toBeGreaterThan(BigInt(events[i - 1]!.seq));
    expect(fromStruct(events[123]!.payload)).toEqual({ b: 1, i: 23 });

    // A page after the last cursor is empty and hands the cursor back, so a follower can poll with it.
    const last = pages.at(-1)!.next_cursor;
    expect(last).toBe(events.at(-1)!.seq);
    const empty = await eventsPage({ topic, after_seq: last, limit: 1000 });
    expect(empty).toEqual({ events: [], next_cursor: last, has_more: false });

    // Smaller pages walk the same events in the same order.
    const firstPage = await eventsPage({ topic, limit: 300 });
    expect(firstPage.has_more).toBe(true);
    expect(firstPage.events.map((e) => e.event_id)).toEqual(sent.slice(0, 300).map((e) => e.event_id));
    const secondPage = await eventsPage({ topic, after_seq: firstPage.next_cursor, limit: 300 });
    expect(secondPage.events.map((e) => e.event_id)).toEqual(sent.slice(300, 600).map((e) => e.event_id));
  });

  it("an event repeated inside one batch is ACCEPTED once and DUPLICATE after, with the same seq", async () => {
    const topic = freshTopic("same-batch");
    const once = event(topic);
    const res = await publish([once, event(topic), once]);
    expect(res).toMatchObject({ accepted: 2, duplicates: 1, conflicts: 0 });
    expect(res.results.map((r) => r.status)).toEqual(["STATUS_ACCEPTED", "STATUS_ACCEPTED", "STATUS_DUPLICATE"]);
    expect(res.results[2]!.seq).toBe(res.results[0]!.seq);
    expect((await allEvents(topic)).events).toHaveLength(2);
  });

  it("PublishStream ends with INVALID_ARGUMENT at an invalid batch, and the batches before it stay committed", async () => {
    const topic = freshTopic("stream-invalid");
    const good = [event(topic), event(topic)];
    const err = await new Promise<grpc.ServiceError | undefined>((resolve) => {
      const call = aggregator.PublishStream((e) => resolve(e ?? undefined));
      call.write({ events: good });
      call.write({ events: [event(topic), { ...event(topic), topic: "" }] });
      call.end();
    });
    expect(err, "a stream with an invalid batch must fail").toBeDefined();
    expect(err!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(decodeURIComponent(err!.details)).toContain("events[1].topic");
    const { events } = await allEvents(topic);
    expect(events.map((e) => e.event_id)).toEqual(good.map((e) => e.event_id));
  });

  it("Stats: received equals unique_processed + duplicate_dropped + conflicts, and topics count what each stored", async () => {
    const before = await stats();
    const topic = freshTopic("stats");
    const id = randomUUID();
    await publish([event(topic, id), event(topic), event(topic)]);
    await publish([event(topic, id)]); // duplicate
    await publish([event(topic, id, { different: true })]); // conflict

    const after = await stats();
    const n = (s: string) => BigInt(s);
    expect(n(after.received)).toBe(n(after.unique_processed) + n(after.duplicate_dropped) + n(after.conflicts));
    expect(n(after.received) - n(before.received)).toBe(5n);
    expect(n(after.unique_processed) - n(before.unique_processed)).toBe(3n);
    expect(n(after.duplicate_dropped) - n(before.duplicate_dropped)).toBe(1n);
    expect(n(after.conflicts) - n(before.conflicts)).toBe(1n);

    expect(after.topics).toContainEqual({ name: topic, count: "3" });
    // unique_processed equals the number of stored events, which the topic counts add up to.
    expect(after.topics.reduce((sum, t) => sum + n(t.count), 0n)).toBe(n(after.unique_processed));
    // The largest topics come first, ties by name; every topic of this server is listed (fewer than the default 100).
    const order = after.topics.map((t) => [-Number(t.count), t.name] as const);
    expect(order).toEqual([...order].sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0)));
    expect(n(after.topic_count)).toBe(BigInt(after.topics.length));
    expect(after.uptime_seconds).toBeGreaterThan(0);
    expect(after.queue_events).toBe(0);
  });

  it("Events pages of large events fit grpc-js's default 4 MiB receive limit, and paging reads every event once", async () => {
    const topic = freshTopic("large");
    // 80 events of ~60 KiB: 4.8 MB stored, more than one 4 MiB message can carry.
    const big = "x".repeat(60_000);
    for (let i = 0; i < 8; i++) await publish(Array.from({ length: 10 }, (_, j) => event(topic, `e-${i}-${j}`, { big, i, j })));
    const { events, pages } = await allEvents(topic);
    expect(events.map((e) => e.event_id).sort()).toEqual(Array.from({ length: 80 }, (_, k) => `e-${Math.floor(k / 10)}-${k % 10}`).sort());
    expect(pages.length, "the byte limit (1 MiB of stored events) cuts pages of 1000").toBeGreaterThan(3);
    for (const page of pages.slice(0, -1)) expect(page.has_more).toBe(true);
  });

  it("an event with an empty topic refuses the whole request with INVALID_ARGUMENT naming events[0].topic, and stores nothing", async () => {
    const before = await stats();
    const topic = freshTopic("invalid");
    const bad = { ...event(topic), topic: "" };

    const err = await publish([bad, event(topic)]).then(
      () => undefined,
      (e: unknown) => e as grpc.ServiceError,
    );
    expect(err, "Publish with an invalid event must fail").toBeDefined();
    expect(err!.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err!.code).toBe(3);
    // connect-es percent-encodes grpc-message with encodeURIComponent and grpc-js decodes it with
    // decodeURI, which leaves reserved characters (",", ":") encoded; decode the rest here.
    const details = decodeURIComponent(err!.details);
    expect(details).toContain("events[0].topic: is required");
    expect(details).toContain("none of its events stored");
    expect(details).not.toContain("events[1]");

    const after = await stats();
    expect({ ...after, uptime_seconds: 0 }).toEqual({
      ...before,
      uptime_seconds: 0,
      // The refused events are counted as invalid, and only there.
      rejected_invalid: String(BigInt(before.rejected_invalid) + 2n),
    });
    expect(after.topics.map((t) => t.name)).not.toContain(topic);
    const { events } = await allEvents(topic);
    expect(events).toEqual([]);
  });
});

describe("answers given before any handler runs", () => {
  it("a method the server does not have is UNIMPLEMENTED, its trailers-only answer read as such", async () => {
    const identity = (bytes: Buffer) => bytes;
    const Unknown = grpc.makeGenericClientConstructor(
      { Nope: { path: "/aggregator.v1.AggregatorService/Nope", requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity } },
      "Unknown",
    );
    const client = new Unknown(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Nope: Unary<Buffer, Buffer> };
    try {
      await expect(unary(client, client.Nope, Buffer.alloc(0))).rejects.toMatchObject({ code: grpc.status.UNIMPLEMENTED });
    } finally {
      client.close();
    }
  });
});

describe("grpc.health.v1.Health over grpc-js", () => {
  it("Check answers SERVING for the server and for AggregatorService, NOT_FOUND for an unknown service", async () => {
    expect(await unary(health, health.Check, { service: "" })).toEqual({ status: "SERVING" });
    expect(await unary(health, health.Check, { service: "aggregator.v1.AggregatorService" })).toEqual({ status: "SERVING" });
    await expect(unary(health, health.Check, { service: "no.such.Service" })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("Watch streams SERVING first and ends as CANCELLED when the client cancels", async () => {
    const call = health.Watch({ service: "" });
    const first = await new Promise<HealthCheckResponse>((resolve, reject) => {
      call.once("data", resolve);
      call.once("error", reject);
      call.once("end", () => reject(new Error("Watch ended before its first message")));
    });
    expect(first).toEqual({ status: "SERVING" });

    const ended = new Promise<grpc.ServiceError>((resolve) => call.once("error", resolve));
    call.on("data", () => undefined); // keep the stream flowing until it ends
    call.cancel();
    expect((await ended).code).toBe(grpc.status.CANCELLED);
  });
});
