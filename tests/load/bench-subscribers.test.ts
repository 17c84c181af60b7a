/**
 * The bench's subscribers (src/tools/bench/): their hand-written Subscribe
 * frames must mean what protobuf-es means, their check must catch every way
 * a subscriber can miss, and a real one must follow a real server exactly.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PublishStreamRequestSchema, SubscribeRequestSchema, SubscribeRequest_Start, SubscribeResponseSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { emptyReport, countSeq, type LatencySink } from "../../src/tools/bench/follower.js";
import { findSubscriberMiscounts, seqRange } from "../../src/tools/bench/subscriber-checks.js";
import { decodeSubscribeResponse, emptyItem, subscribeRequestFrame, subscribeStart } from "../../src/tools/bench/subscribe-frames.js";
import { connectSubscriberSession, followTally } from "../../src/tools/bench/tally-subscriber.js";
import { numberedTopics } from "../../src/tools/load/events.js";
import { LatencyRecorder } from "../../src/tools/load/latency.js";
import { grpcClient } from "../support/clients.js";
import { makeEvent } from "../support/events.js";
import { startServer, type TestServer } from "../support/server.js";

describe("bench subscribers: Subscribe frames", () => {
  it("a request frame is a gRPC-framed SubscribeRequest with the fields asked for", () => {
    const frame = subscribeRequestFrame({ topic: "t042", start: subscribeStart.new, heartbeatMs: 500, afterSeq: 2 ** 40 });
    expect(frame[0]).toBe(0);
    expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
    const request = fromBinary(SubscribeRequestSchema, frame.subarray(5));
    expect(request.topic).toBe("t042");
    expect(request.start).toBe(SubscribeRequest_Start.NEW);
    expect(request.heartbeatMs).toBe(500);
    expect(request.afterSeq).toBe(2n ** 40n);
  });

  it("reads an event's seq, topic and commit time, skipping its payload, and a heartbeat's fields", () => {
    const receivedAt = Date.parse("2026-12-07T14:00:00.123Z");
    const event = toBinary(
      SubscribeResponseSchema,
      create(SubscribeResponseSchema, {
        item: {
          case: "event",
          value: { seq: 123_456_789_012n, topic: "orders", eventId: "e-1", source: "s", payload: { nested: { list: [1, "two", null] } }, receivedAt: timestampFromMs(receivedAt) },
        },
      }),
    );
    const item = decodeSubscribeResponse(event, 0, event.length, emptyItem());
    expect(item.kind).toBe("event");
    expect(item.seq).toBe(123_456_789_012);
    expect(Buffer.from(event.subarray(item.topicStart, item.topicEnd)).toString()).toBe("orders");
    expect(item.receivedAtMs).toBe(receivedAt);
    const heartbeat = toBinary(SubscribeResponseSchema, create(SubscribeResponseSchema, { item: { case: "heartbeat", value: { headSeq: 99n, caughtUp: true, cursor: 98n } } }));
    expect(decodeSubscribeResponse(heartbeat, 0, heartbeat.length, item)).toMatchObject({ kind: "heartbeat", headSeq: 99, caughtUp: true, cursor: 98 });
  });
});

describe("bench subscribers: the check", () => {
  const received = (seqs: number[], topic = "") => {
    const r = emptyReport(topic);
    for (const seq of seqs) countSeq(r, seq, 0);
    return r;
  };
  const expected = seqRange(1, 5);

  it("passes a subscriber that got every seq once, in order", () => {
    expect(findSubscriberMiscounts([received([1, 2, 3, 4, 5])], () => expected)).toEqual([]);
  });

  it("fails a missing, a repeated, a reordered or an extra event", () => {
    for (const seqs of [
      [1, 2, 4, 5],
      [1, 2, 3, 3, 4, 5],
      [1, 3, 2, 4, 5],
      [1, 2, 3, 4, 5, 6],
      [2, 2, 3, 4, 5],
    ]) {
      expect(findSubscriberMiscounts([received(seqs)], () => expected), `seqs ${seqs.join(",")}`).not.toEqual([]);
    }
  });

  it("allows a topic's subscriber the gaps other topics leave, not an event of another topic", () => {
    const topic = received([2, 5, 9], "t001");
    expect(findSubscriberMiscounts([topic], () => ({ count: 3, min: 2, max: 9, sum: 16 }))).toEqual([]);
    topic.wrongTopic = 1;
    expect(findSubscriberMiscounts([topic], () => ({ count: 3, min: 2, max: 9, sum: 16 }))).toHaveLength(1);
  });

  it("names topics t000..t099 for the fan-out run", () => {
    const topics = numberedTopics(100);
    expect(topics[0]).toBe("t000");
    expect(topics[99]).toBe("t099");
  });
});

describe("bench subscribers: against a real server", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.stop();
  });

  it("a live subscriber and a topic's subscriber receive exactly the events committed after they subscribed", async () => {
    const client = grpcClient(server.url);
    await client.publish({ events: [makeEvent({ topic: "before", eventId: "b-0" })] });
    const session = await connectSubscriberSession(server.url);
    const sink: LatencySink = { recorder: new LatencyRecorder() };
    const all = followTally(session, { start: subscribeStart.new, heartbeatMs: 200 }, sink);
    const one = followTally(session, { topic: "t001", start: subscribeStart.new, heartbeatMs: 200 }, sink);
    await Promise.all([all.ready, one.ready]);
    async function* batches() {
      for (let b = 0; b < 10; b++) {
        yield create(PublishStreamRequestSchema, { events: Array.from({ length: 100 }, (_, i) => makeEvent({ topic: `t00${i % 3}`, eventId: `e-${b}-${i}` })) });
      }
    }
    expect((await client.publishStream(batches())).accepted).toBe(1000n);
    // Seq 1 is the event published before; the 1,000 after are 2..1001.
    await Promise.all([all.reach(1001), one.reach(1001)]);
    await Promise.all([all.close(), one.close()]);
    session.close();
    expect(findSubscriberMiscounts([all.report], () => seqRange(2, 1001))).toEqual([]);
    expect(one.report.received).toBe(330);
    expect(one.report.wrongTopic).toBe(0);
    expect(one.report.notAscending).toBe(0);
    expect(sink.recorder!.summary().count).toBe(1330);
  });
});
