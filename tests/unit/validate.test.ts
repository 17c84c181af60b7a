import type { Event } from "../../gen/aggregator/v1/aggregator_pb.js";
import { describe, expect, it } from "vitest";
import { decodeMessageEvents } from "../../src/codec/message-events.js";
import { validateBatch as validateDecoded, type ValidationLimits } from "../../src/codec/validate.js";
import { ValidationError } from "../../src/codec/violations.js";
import { makeEvent } from "../support/events.js";
import { violationsOf } from "../support/violations.js";

/** Events as protobuf-es decodes them, through the decoder that hands them to validation. */
function validateBatch(events: Event[], limits: ValidationLimits) {
  return validateDecoded(decodeMessageEvents(events), limits);
}

const limits = { maxBatch: 10, maxPayloadBytes: 100 };

describe("validateBatch", () => {
  it("converts valid events to store form with a fixed-width timestamp and canonical payload", () => {
    const { records, bytes } = validateBatch([makeEvent({ eventId: "e1", payload: { b: 1, a: [true, null, "x"] } })], limits);
    expect(records[0]).toEqual({
      topic: "orders",
      eventId: "e1",
      ts: "2025-10-24T10:00:00.000000000Z",
      source: "test",
      payload: '{"a":[true,null,"x"],"b":1}',
    });
    expect(bytes).toBeGreaterThan(0);
  });

  it("names each bad index and field", () => {
    const violations = violationsOf(() =>
      validateBatch(
        [
          makeEvent(),
          makeEvent({ topic: "", eventId: "x".repeat(256) }),
          makeEvent({ source: "tab\there", timestamp: undefined, payload: undefined }),
          makeEvent({ topic: "   " }),
        ],
        limits,
      ),
    );
    expect(violations.map((v) => `${v.index}.${v.field}`)).toEqual(["1.topic", "1.event_id", "2.source", "2.timestamp", "2.payload", "3.topic"]);
  });

  it("refuses an empty batch and one over the limit", () => {
    expect(violationsOf(() => validateBatch([], limits))[0]!.field).toBe("events");
    expect(violationsOf(() => validateBatch(Array.from({ length: 11 }, () => makeEvent()), limits))[0]!.description).toContain("at most 10");
  });

  it("refuses a payload over the byte limit, a non-finite number and deep nesting", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) deep = { d: deep };
    const violations = violationsOf(() =>
      validateBatch(
        [makeEvent({ payload: { s: "é".repeat(60) } }), makeEvent({ payload: { n: Number.NaN } }), makeEvent({ payload: deep as never })],
        { maxBatch: 10, maxPayloadBytes: 10_000 },
      ).records,
    );
    expect(violations.map((v) => v.index)).toEqual([1, 2]);
    expect(violations.map((v) => v.field)).toEqual(["payload", "payload"]);
    const small = violationsOf(() => validateBatch([makeEvent({ payload: { s: "é".repeat(60) } })], limits));
    expect(small[0]!.description).toMatch(/\d+ bytes/);
  });

  it("refuses out-of-range timestamps", () => {
    const violations = violationsOf(() => validateBatch([makeEvent({ timestamp: { seconds: 253_402_300_800n, nanos: 0 } })], limits));
    expect(violations[0]!.field).toBe("timestamp");
  });
});

