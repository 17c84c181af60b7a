import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { HeartbeatSchema, SubscribeRequestSchema, type Heartbeat } from "../../gen/aggregator/v1/aggregator_pb.js";

/** What a raw subscription hands its reader: an event's seq, or a heartbeat. */
export type RawItem = { kind: "event"; seq: number } | { kind: "heartbeat"; heartbeat: Heartbeat };

/**
 * A gRPC Subscribe on its own HTTP/2 connection that reads only each event's
 * seq. A test that follows a hundred thousand events while producers publish
 * at full speed must not be slowed by decoding payloads it does not look at
 * (protobuf-es decodes a Struct at ~20,000 events/s), or the subscriber, not
 * the server, would decide when it catches up.
 */
export function rawSubscribe(url: string, request: MessageInitShape<typeof SubscribeRequestSchema>, onItem: (item: RawItem) => void): { ended: Promise<string>; close(): void } {
  const session = http2.connect(url);
  const stream = session.request({ ":method": "POST", ":path": "/aggregator.v1.AggregatorService/Subscribe", "content-type": "application/grpc", te: "trailers" });
  const body = toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, request));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  stream.end(Buffer.concat([prefix, body]));
  let pending: Buffer = Buffer.alloc(0);
  stream.on("data", (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let at = 0;
    while (pending.length - at >= 5) {
      const length = pending.readUInt32BE(at + 1);
      if (pending.length - at - 5 < length) break;
      onItem(readItem(pending.subarray(at + 5, at + 5 + length)));
      at += 5 + length;
    }
    pending = pending.subarray(at);
  });
  const ended = new Promise<string>((resolve) => {
    let status = "no status";
    stream.on("trailers", (trailers) => (status = `grpc-status ${String(trailers["grpc-status"])} ${String(trailers["grpc-message"] ?? "")}`));
    stream.on("close", () => {
      session.close();
      resolve(status);
    });
  });
  return {
    ended,
    close: () => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.close();
    },
  };
}

/** A SubscribeResponse: field 1 an event (whose field 1 is its seq), field 2 a heartbeat. */
function readItem(message: Buffer): RawItem {
  let at = 0;
  const varint = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      const byte = message[at++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
  };
  const key = varint();
  const length = varint();
  if (key === ((2 << 3) | 2)) return { kind: "heartbeat", heartbeat: fromBinary(HeartbeatSchema, message.subarray(at, at + length)) };
  if (key !== ((1 << 3) | 2) || message[at] !== 1 << 3) throw new Error("expected a SubscribeResponse with an event starting with its seq");
  at++;
  return { kind: "event", seq: varint() };
}
