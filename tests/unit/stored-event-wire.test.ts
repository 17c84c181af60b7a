import { fromBinary, toJson, type JsonObject } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { StoredEventSchema, SubscribeResponseSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { canonicalJson } from "../../src/codec/canonical-json.js";
import { ProtoWriter } from "../../src/codec/proto-writer.js";
import { writeStoredEvent, writeSubscribeEventFrames } from "../../src/codec/stored-event-wire.js";
import { storedEvent } from "../../src/rpc/stored-event.js";
import type { StoredEventRow } from "../../src/store/types.js";

const json = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small" },
    fc.constant(null),
    fc.boolean(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ unit: "grapheme" }),
    fc.array(tie("value"), { maxLength: 4 }),
    tie("object"),
  ),
  object: fc.dictionary(fc.string({ unit: "grapheme", maxLength: 8 }), tie("value"), { maxKeys: 5 }),
}));

const rows: fc.Arbitrary<StoredEventRow> = fc.record({
  seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  topic: fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  eventId: fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  ts: fc
    .tuple(fc.date({ min: new Date("0001-01-01T00:00:00Z"), max: new Date("9999-12-31T23:59:59Z"), noInvalidDate: true }), fc.integer({ min: 0, max: 999_999_999 }))
    .map(([date, nanos]) => `${date.toISOString().slice(0, 19)}.${String(nanos).padStart(9, "0")}Z`),
  source: fc.string({ unit: "grapheme", minLength: 1, maxLength: 20 }),
  payload: json.object.map((o) => canonicalJson(o as JsonObject)),
  receivedAt: fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }).map((d) => d.toISOString()),
});

describe("stored events written by hand", () => {
  it("decode to the same StoredEvent protobuf-es builds from the row", () => {
    fc.assert(
      fc.property(rows, (row) => {
        const w = new ProtoWriter(64);
        writeStoredEvent(w, row);
        const decoded = fromBinary(StoredEventSchema, w.buffer.subarray(0, w.length));
        expect(toJson(StoredEventSchema, decoded)).toEqual(toJson(StoredEventSchema, storedEvent(row)));
      }),
      { numRuns: 300 },
    );
  });

  it("frame each event as a gRPC message holding a SubscribeResponse", () => {
    const [a, b] = fc.sample(rows, 2) as [StoredEventRow, StoredEventRow];
    const w = new ProtoWriter(16);
    writeSubscribeEventFrames(w, [a, b]);
    const bytes = w.buffer.subarray(0, w.length);
    const seqs: bigint[] = [];
    for (let at = 0; at < bytes.length; ) {
      expect(bytes[at]).toBe(0);
      const length = bytes.readUInt32BE(at + 1);
      const message = fromBinary(SubscribeResponseSchema, bytes.subarray(at + 5, at + 5 + length));
      if (message.item.case !== "event") throw new Error("expected an event");
      seqs.push(message.item.value.seq);
      at += 5 + length;
    }
    expect(seqs).toEqual([BigInt(a.seq), BigInt(b.seq)]);
  });
});
