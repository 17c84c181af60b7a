import { create, equals, fromBinary, fromJson, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  EventSchema,
  PublishRequestSchema,
  PublishResponseSchema,
  PublishStreamResponseSchema,
} from "../../gen/aggregator/v1/aggregator_pb.js";
import { summarize, type Measurement } from "../../src/tools/bench/measurement.js";
import { parseHostCpu, stealPercent } from "../../src/tools/bench/proc-usage.js";
import { toRow } from "../../src/tools/bench/report/rows.js";
import { allScenarios } from "../../src/tools/bench/scenarios.js";
import { makeBatches } from "../../src/tools/load/batches.js";
import { EventCache } from "../../src/tools/load/event-cache.js";
import { eventFields, protoEvent, topicNames } from "../../src/tools/load/events.js";
import { LatencyRecorder } from "../../src/tools/load/latency.js";
import { encodeEvent, readVarintFields } from "../../src/tools/load/proto-encode.js";
import { buildWorkload, DistinctCounter } from "../../src/tools/load/workload.js";
import { canonicalJson } from "../../src/codec/canonical-json.js";

const topics = topicNames(4);

describe("load generator: events", () => {
  it("the hand encoder's bytes decode, with protobuf-es, to the same event", () => {
    for (const index of [0, 1, 7, 12_345, 4_999_999]) {
      const fields = eventFields(42, index, topics);
      const decoded = fromBinary(EventSchema, encodeEvent(fields));
      expect(equals(EventSchema, decoded, protoEvent(fields))).toBe(true);
      expect(decoded.payload).toEqual(fields.payload);
    }
  });

  it("an event number always makes the same event, and ids never repeat within a seed", () => {
    expect(eventFields(7, 99, topics)).toEqual(eventFields(7, 99, topics));
    const ids = new Set(Array.from({ length: 20_000 }, (_, i) => eventFields(7, i, topics).eventId));
    expect(ids.size).toBe(20_000);
    expect(eventFields(7, 3, topics).eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it("events are seed-shaped: 4 topics, 4 sources, a payload of about 150 bytes", () => {
    const events = Array.from({ length: 64 }, (_, i) => eventFields(1, i, topics));
    expect(new Set(events.map((e) => e.topic)).size).toBe(4);
    expect(new Set(events.map((e) => e.source)).size).toBe(4);
    for (const e of events) expect(canonicalJson(e.payload).length).toBeGreaterThan(120);
    for (const e of events) expect(canonicalJson(e.payload).length).toBeLessThan(180);
  });
});

describe("load generator: workloads", () => {
  it("holds every distinct event at least once and the dup rate's share of re-sends", () => {
    const w = buildWorkload({ seed: 3, sends: 10_000, dupRate: 0.2, indexBase: 500 });
    expect(w.unique).toBe(8_000);
    const counter = new DistinctCounter(w);
    counter.mark(0, w.order.length);
    expect(counter.distinct).toBe(8_000);
    expect(Math.min(...w.order)).toBe(500);
    expect(Math.max(...w.order)).toBe(8_499);
  });

  it("re-sends only events already sent, and a cut-short run still re-sends its share", () => {
    const w = buildWorkload({ seed: 5, sends: 100_000, dupRate: 0.2, indexBase: 0 });
    // Events are first sent in number order, so a re-send is always of a number below the next new one.
    let nextNew = 0;
    let resendOfUnsent = 0;
    for (const event of w.order) {
      if (event === nextNew) nextNew++;
      else if (event > nextNew) resendOfUnsent++;
    }
    expect(resendOfUnsent).toBe(0);
    expect(nextNew).toBe(w.unique);
    const prefix = new DistinctCounter(w);
    prefix.mark(0, 10_000);
    expect(1 - prefix.distinct / prefix.sends).toBeGreaterThan(0.17);
    expect(1 - prefix.distinct / prefix.sends).toBeLessThan(0.23);
  });

  it("counts distinct events among the sends of a cut-short run", () => {
    const w = buildWorkload({ seed: 3, sends: 1_000, dupRate: 0.5, indexBase: 0 });
    const counter = new DistinctCounter(w);
    counter.mark(0, 100);
    expect(counter.distinct).toBe(new Set(w.order.subarray(0, 100)).size);
    expect(counter.sends).toBe(100);
  });
});

describe("load generator: request bodies", () => {
  const workload = buildWorkload({ seed: 11, sends: 25, dupRate: 0.2, indexBase: 0 });
  const cache = new EventCache(11, 4);

  it("a gRPC body is a framed PublishRequest of the batch's events, in send order", () => {
    const batches = makeBatches("grpc", workload, 10, cache);
    expect(batches.count).toBe(3);
    const frame = batches.body(2);
    expect(frame[0]).toBe(0);
    expect(frame.readUInt32BE(1)).toBe(frame.length - 5);
    const request = fromBinary(PublishRequestSchema, frame.subarray(5));
    expect(request.events.map((e) => e.eventId)).toEqual(Array.from(workload.order.subarray(20, 25), (i) => eventFields(11, i, topics).eventId));
  });

  it("a REST body is one event object for batch 1 and {events: [...]} otherwise", () => {
    const single = JSON.parse(makeBatches("rest", workload, 1, cache).body(0).toString()) as JsonValue;
    expect(fromJson(EventSchema, single).eventId).toBe(eventFields(11, workload.order[0]!, topics).eventId);
    const many = JSON.parse(makeBatches("rest", workload, 10, cache).body(0).toString()) as { events: JsonValue[] };
    expect(many.events).toHaveLength(10);
    const connect = JSON.parse(makeBatches("connect", workload, 10, cache).body(0).toString()) as JsonValue;
    expect(fromJson(PublishRequestSchema, connect).events).toHaveLength(10);
  });

  it("reads the counts of an answer without decoding its results", () => {
    const response = create(PublishResponseSchema, {
      accepted: 300,
      duplicates: 2,
      results: Array.from({ length: 302 }, (_, i) => ({ status: 1, seq: BigInt(1_000_000 + i) })),
    });
    expect(readVarintFields(toBinary(PublishResponseSchema, response), 3)).toEqual([0, 300, 2, 0]);
    const totals = create(PublishStreamResponseSchema, { received: 5_000_000n, accepted: 4_000_000n, duplicates: 1_000_000n, batches: 10_000n });
    expect(readVarintFields(toBinary(PublishStreamResponseSchema, totals), 4)).toEqual([0, 5_000_000, 4_000_000, 1_000_000, 0]);
  });
});

describe("load generator: latency", () => {
  it("ghz's histogram covers every call from the fastest to the slowest", () => {
    const recorder = new LatencyRecorder();
    for (let us = 100; us <= 10_000; us += 7) recorder.record(us);
    const summary = recorder.summary();
    expect(summary.buckets).toHaveLength(11);
    expect(summary.buckets.reduce((sum, b) => sum + b.count, 0)).toBe(summary.count);
    expect(summary.buckets[0]!.markUs).toBe(100);
    expect(summary.buckets[10]!.markUs).toBe(summary.maxUs);
    expect(summary.p50Us).toBeGreaterThan(4_900);
    expect(summary.p50Us).toBeLessThan(5_200);
  });
});

describe("bench: the reported run", () => {
  const run = (eventsPerSecond: number, p99Us: number): Measurement => {
    const latency = new LatencyRecorder().summary();
    return { eventsPerSecond, latency: { ...latency, p99Us }, problems: [] as string[] } as Measurement;
  };
  const scenarios = allScenarios(true);
  const byId = (id: string) => scenarios.find((s) => s.id === id)!;

  it("is the median by events/s for throughput runs, and by p99 for latency runs (their rate is fixed)", () => {
    const runs = [run(1_000, 30_000), run(3_000, 10_000), run(2_000, 90_000)];
    expect(summarize("full", byId("grpc-b1-c64"), runs).median).toBe(runs[2]);
    expect(summarize("full", byId("latency-grpc-b1"), runs).median).toBe(runs[0]);
  });
});

describe("bench: the host's share of the CPU", () => {
  // /proc/stat as read on the development VM, then 2,000 ticks later as a throttled host leaves it.
  const before = "cpu  3958900 0 629836 3775898 237040 0 115482 279808 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
  const after = "cpu  3959100 0 629886 3776148 237040 0 115482 281308 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";

  it("is the steal ticks over all ticks between two readings of the aggregate line", () => {
    // 200 user + 50 system + 250 idle + 1,500 steal ticks: 75% stolen.
    expect(stealPercent(parseHostCpu(before), parseHostCpu(after))).toBe(75);
  });

  it("is unknown without a steal column or without time between the readings", () => {
    expect(parseHostCpu("cpu  1 2 3 4\n")).toBeUndefined();
    expect(parseHostCpu("intr 1 2 3\n")).toBeUndefined();
    expect(stealPercent(parseHostCpu(before), parseHostCpu(before))).toBeUndefined();
  });

  it("gets a note naming every run's share once any run's is noticeable", () => {
    const scenario = allScenarios(true).find((s) => s.id === "grpc-b1-c64")!;
    const run = (eventsPerSecond: number, hostStealPercent: number): Measurement =>
      ({ eventsPerSecond, hostStealPercent, latency: new LatencyRecorder().summary(), problems: [] as string[], notes: [] as string[] }) as Measurement;
    const calm = toRow(summarize("full", scenario, [run(3_000, 2), run(3_100, 4), run(2_900, 3)]));
    expect(calm.hostStealPercent).toBe(2);
    expect(calm.notes).not.toMatch(/hypervisor/);
    const throttled = toRow(summarize("full", scenario, [run(3_000, 2), run(600, 78.4), run(2_900, 3)]));
    expect(throttled.notes).toMatch(/the hypervisor took 2 \/ 78 \/ 3% of the machine's CPU during these runs/);
  });
});
