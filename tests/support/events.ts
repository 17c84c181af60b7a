import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomUUID } from "node:crypto";
import { EventSchema, type Event } from "../../gen/aggregator/v1/aggregator_pb.js";

/** A valid event; override any field. */
export function makeEvent(overrides: Partial<MessageInitShape<typeof EventSchema>> = {}): Event {
  return create(EventSchema, {
    topic: "orders",
    eventId: randomUUID(),
    timestamp: timestampFromDate(new Date("2025-10-24T10:00:00Z")),
    source: "test",
    payload: { amount: 100, currency: "EUR" },
    ...overrides,
  });
}

/** The same event in the JSON shape REST and Connect JSON clients send. */
export function jsonEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    topic: "orders",
    event_id: randomUUID(),
    timestamp: "2025-10-24T10:00:00Z",
    source: "test",
    payload: { amount: 100, currency: "EUR" },
    ...overrides,
  };
}
