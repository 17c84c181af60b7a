import { describe, expect, it } from "vitest";
import { CanonicalPayload } from "../../src/codec/canonical-json.js";
import { RefusedPayload, type DecodedEvent } from "../../src/codec/decoded-batch.js";
import { decodeJsonBody } from "../../src/codec/json-events.js";
import { ValidationError, type Violation } from "../../src/codec/violations.js";
import { violationsOf } from "../support/violations.js";

/** 2025-10-24T10:00:00Z in seconds since the epoch. */
const tenOClock = 1_761_300_000n;

function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    topic: "orders",
    event_id: "e-1",
    timestamp: "2025-10-24T10:00:00Z",
    source: "checkout",
    payload: { amount: 100, currency: "EUR" },
    ...overrides,
  };
}

/** An event's fields in a comparable form: the payload as its canonical text or refusal. */
function plain(decoded: DecodedEvent | undefined) {
  if (decoded === undefined) return undefined;
  const { payload, timestamp, ...rest } = decoded;
  return {
    ...rest,
    timestamp: timestamp === undefined ? undefined : { seconds: timestamp.seconds, nanos: timestamp.nanos },
    payload: payload instanceof CanonicalPayload ? { json: payload.json } : payload instanceof RefusedPayload ? { refused: payload.description } : undefined,
  };
}

describe("decodeJsonBody", () => {
  it("decodes a single object, an array and an {events: [...]} wrapper alike", () => {
    const one = decodeJsonBody(event(), 10);
    const array = decodeJsonBody([event()], 10);
    const wrapped = decodeJsonBody({ events: [event()] }, 10);
    for (const batch of [one, array, wrapped]) {
      expect(batch.violations).toEqual([]);
      expect(batch.events.map(plain)).toEqual([
        {
          topic: "orders",
          eventId: "e-1",
          timestamp: { seconds: tenOClock, nanos: 0 },
          source: "checkout",
          payload: { json: '{"amount":100,"currency":"EUR"}' },
        },
      ]);
    }
  });

  it("keeps the events of an array in request order", () => {
    const batch = decodeJsonBody([event({ event_id: "a" }), event({ event_id: "b" }), event({ event_id: "c" })], 10);
    expect(batch.events.map((e) => e?.eventId)).toEqual(["a", "b", "c"]);
  });

  it("refuses an events field that is not an array, as a violation of the request (index -1)", () => {
    for (const events of [{}, "e-1", 3, null]) {
      expect(violationsOf(() => decodeJsonBody({ events }, 10))).toEqual([{ index: -1, field: "events", description: "must be an array of events" }]);
    }
  });

  it("refuses a body that is no object or array, as a violation of the request (index -1)", () => {
    for (const body of [42, "an event", true, null]) {
      expect(violationsOf(() => decodeJsonBody(body, 10))).toEqual([
        { index: -1, field: "body", description: 'must be an event object, an array of events, or {"events": [...]}' },
      ]);
    }
  });

  it("refuses a batch over maxBatch before decoding any of its events", () => {
    let reads = 0;
    const untouchable = () =>
      new Proxy(
        {},
        {
          get: () => {
            reads++;
            throw new Error("an event was read");
          },
        },
      );
    const items = [untouchable(), untouchable(), untouchable()];
    expect(violationsOf(() => decodeJsonBody(items, 2))).toEqual([{ index: -1, field: "events", description: "has 3 events, at most 2 allowed per request" }]);
    expect(violationsOf(() => decodeJsonBody({ events: items }, 2))[0]?.field).toBe("events");
    expect(reads).toBe(0);
  });

  it("accepts a batch of exactly maxBatch events", () => {
    expect(decodeJsonBody([event(), event()], 2).events).toHaveLength(2);
  });

  it("reports an item that is not an object at its index and leaves that event undefined", () => {
    const batch = decodeJsonBody([event(), 42, [event()], null, event()], 10);
    expect(batch.violations).toEqual([
      { index: 1, field: "event", description: "must be a JSON object" },
      { index: 2, field: "event", description: "must be a JSON object" },
      { index: 3, field: "event", description: "must be a JSON object" },
    ]);
    expect(batch.events.map((e) => e !== undefined)).toEqual([true, false, false, false, true]);
  });

  it("reports each field of the wrong JSON type at its index, naming the type it got, and leaves that event undefined", () => {
    const batch = decodeJsonBody([event(), event({ topic: 5, event_id: true, source: ["a"], payload: "text", timestamp: 1_761_300_000 })], 10);
    expect(batch.events[0]).toBeDefined();
    expect(batch.events[1]).toBeUndefined();
    expect(batch.violations).toEqual([
      { index: 1, field: "topic", description: "must be a string, got a number" },
      { index: 1, field: "event_id", description: "must be a string, got a boolean" },
      { index: 1, field: "timestamp", description: "must be a string, got a number" },
      { index: 1, field: "source", description: "must be a string, got an array" },
      { index: 1, field: "payload", description: "must be a JSON object, got a string" },
    ]);
  });

  it("refuses a payload that is an array, since a payload must be a JSON object", () => {
    const batch = decodeJsonBody(event({ payload: [1, 2] }), 10);
    expect(batch.violations).toEqual([{ index: 0, field: "payload", description: "must be a JSON object, got an array" }]);
  });

  it("reports a camelCase eventId of the wrong type under its proto name event_id", () => {
    const { event_id: _snake, ...fields } = event({ eventId: 7 });
    expect(decodeJsonBody(fields, 10).violations).toEqual([{ index: 0, field: "event_id", description: "must be a string, got a number" }]);
  });

  it("reports a timestamp that is not RFC 3339 at its index, quoting it, and leaves that event undefined", () => {
    for (const timestamp of ["yesterday", "2025-10-24 10:00:00Z", "2025-10-24T10:00:00", "2025-02-30T10:00:00Z", "2025-10-24t10:00:00z"]) {
      const batch = decodeJsonBody([event(), event({ timestamp })], 10);
      expect(batch.events[1], timestamp).toBeUndefined();
      expect(batch.violations, timestamp).toEqual([
        { index: 1, field: "timestamp", description: `"${timestamp}" is not an RFC 3339 timestamp (e.g. 2025-10-24T10:00:00Z)` },
      ]);
    }
  });

  it("quotes at most 64 characters of a bad timestamp, saying how long it was", () => {
    const timestamp = "x".repeat(1000);
    const [violation] = decodeJsonBody(event({ timestamp }), 10).violations;
    expect(violation?.description).toBe(`"${"x".repeat(64)}"… (1000 characters) is not an RFC 3339 timestamp (e.g. 2025-10-24T10:00:00Z)`);
  });

  it("reports a wrong type and a bad timestamp of the same event together", () => {
    const batch = decodeJsonBody(event({ topic: 1, timestamp: "soon" }), 10);
    expect(batch.violations.map((v) => v.field)).toEqual(["topic", "timestamp"]);
  });

  it("reads RFC 3339 offsets and fractions of a second", () => {
    const [decoded] = decodeJsonBody(event({ timestamp: "2025-10-24T12:00:00.25+02:00" }), 10).events;
    expect(decoded?.timestamp?.seconds).toBe(tenOClock);
    expect(decoded?.timestamp?.nanos).toBe(250_000_000);
  });

  it("accepts protobuf JSON's camelCase eventId", () => {
    const { event_id: _snake, ...fields } = event({ eventId: "camel-1" });
    const batch = decodeJsonBody(fields, 10);
    expect(batch.violations).toEqual([]);
    expect(batch.events[0]?.eventId).toBe("camel-1");
  });

  it("prefers event_id when both spellings are sent", () => {
    const batch = decodeJsonBody(event({ event_id: "snake", eventId: "camel" }), 10);
    expect(batch.events[0]?.eventId).toBe("snake");
  });

  it("leaves missing and null fields empty for validation to report", () => {
    const batch = decodeJsonBody([{}, { topic: null, event_id: null, timestamp: null, source: null, payload: null }], 10);
    expect(batch.violations).toEqual([]);
    const empty = { topic: "", eventId: "", timestamp: undefined, source: "", payload: undefined };
    expect(batch.events.map(plain)).toEqual([empty, empty]);
  });

  it("turns a payload breaking a payload rule into a RefusedPayload with the rule's description, keeping the other fields", () => {
    const batch = decodeJsonBody(event({ payload: { ok: 1, note: "broken \ud800 surrogate" } }), 10);
    expect(batch.violations).toEqual([]);
    expect(plain(batch.events[0])).toEqual({
      topic: "orders",
      eventId: "e-1",
      timestamp: { seconds: tenOClock, nanos: 0 },
      source: "checkout",
      payload: { refused: "has a string that is not valid UTF-8 text (it holds an unpaired surrogate, or bytes that are not UTF-8) at payload.note" },
    });
  });

  it("refuses a payload nested deeper than the limit, naming the rule", () => {
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 40; i++) deep = { d: deep };
    const payload = decodeJsonBody(event({ payload: deep }), 10).events[0]?.payload;
    expect(payload).toBeInstanceOf(RefusedPayload);
    expect((payload as RefusedPayload).description).toBe("is nested deeper than 32 levels");
  });

  it("turns a valid payload into a CanonicalPayload with the keys of every object sorted", () => {
    const payload = decodeJsonBody(event({ payload: { b: 1, a: { d: [{ z: true, y: null }], c: "x" }, "10": 0, "9": 1 } }), 10).events[0]?.payload;
    expect(payload).toBeInstanceOf(CanonicalPayload);
    expect((payload as CanonicalPayload).json).toBe('{"10":0,"9":1,"a":{"c":"x","d":[{"y":null,"z":true}]},"b":1}');
  });

  it("gives the same canonical payload whatever order the keys were sent in", () => {
    const first = decodeJsonBody(event({ payload: { a: 1, b: { c: 2, d: 3 } } }), 10).events[0]?.payload as CanonicalPayload;
    const second = decodeJsonBody(event({ payload: { b: { d: 3, c: 2 }, a: 1 } }), 10).events[0]?.payload as CanonicalPayload;
    expect(first.json).toBe(second.json);
  });
  it("names an object in a string field plainly", () => {
    const { violations } = decodeJsonBody([{ topic: {} }], 10);
    expect(violations).toEqual([{ index: 0, field: "topic", description: "must be a string, got an object" }]);
  });
});
