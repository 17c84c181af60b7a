import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { HeartbeatSchema, SubscribeRequestSchema, type Heartbeat } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcFrame } from "./raw-http.js";

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
export function readItem(message: Buffer): RawItem {
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

/**
 * A gRPC Subscribe on its own HTTP/2 connection that a test can stop
 * reading: pause() stops consuming, and HTTP/2 flow control then stops the
 * server's writes once the stream's window is full, as with a consumer stuck
 * on slow work. What it reads is
 * checked as it arrives, not kept: each event's seq must be the next one
 * (every event exactly once, in seq order), so a subscriber of millions of
 * events holds a few numbers.
 */
export class RawSubscription {
  /** Events received. */
  events = 0;
  firstSeq = 0;
  lastSeq = 0;
  /** Seqs skipped between consecutive events, events received twice or more, and events older than the one before. */
  gaps = 0;
  duplicates = 0;
  outOfOrder = 0;
  heartbeats: Heartbeat[] = [];
  /** Bytes of gRPC messages received. */
  bytes = 0;
  /** grpc-status of the trailers, once the call ended; undefined while it runs. */
  status: { code: number; message: string } | undefined;
  readonly stream: http2.ClientHttp2Stream;
  private pending: Buffer = Buffer.alloc(0);
  private readonly waiters = new Set<() => void>();
  private closed = false;

  constructor(
    readonly session: http2.ClientHttp2Session,
    request: MessageInitShape<typeof SubscribeRequestSchema>,
  ) {
    this.stream = session.request({
      ":method": "POST",
      ":path": "/aggregator.v1.AggregatorService/Subscribe",
      "content-type": "application/grpc+proto",
      te: "trailers",
    });
    this.stream.on("data", (chunk: Buffer) => this.read(chunk));
    this.stream.on("trailers", (trailers) => this.ended(trailers));
    this.stream.on("response", (headers) => {
      // A trailers-only answer (a refusal) carries its status in the headers.
      if (headers["grpc-status"] !== undefined) this.ended(headers);
    });
    this.stream.on("error", () => undefined);
    this.stream.on("close", () => {
      this.closed = true;
      this.wake();
    });
    this.stream.end(grpcFrame(toBinary(SubscribeRequestSchema, create(SubscribeRequestSchema, request))));
  }

  /** Opens a subscription on a session of its own. */
  static open(url: string, request: MessageInitShape<typeof SubscribeRequestSchema>): RawSubscription {
    const session = http2.connect(url);
    session.on("error", () => undefined);
    return new RawSubscription(session, request);
  }

  /** Resolves once `condition` holds; rejects if the call ends first. */
  async until(condition: (s: RawSubscription) => boolean, what: string): Promise<void> {
    while (!condition(this)) {
      if (this.closed || this.status !== undefined) {
        throw new Error(`subscription ended (status ${JSON.stringify(this.status)}) before ${what}; ${this.events} events, last seq ${this.lastSeq}`);
      }
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** Stops reading: nothing is consumed, so no flow-control window is given back to the server. */
  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  /** Bytes received from the server and held by this client, unread: what a paused stream has buffered. */
  get unreadBytes(): number {
    return this.stream.readableLength;
  }

  close(): void {
    this.stream.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }

  private read(chunk: Buffer): void {
    let buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    let at = 0;
    while (buffer.length - at >= 5) {
      const length = buffer.readUInt32BE(at + 1);
      if (buffer.length - at - 5 < length) break;
      this.message(buffer.subarray(at + 5, at + 5 + length));
      this.bytes += 5 + length;
      at += 5 + length;
    }
    buffer = buffer.subarray(at);
    // Keep only the unread tail, copied, so the chunk it came from can be freed.
    this.pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
    this.wake();
  }

  /** One SubscribeResponse: an event's seq, or a heartbeat. */
  private message(bytes: Buffer): void {
    const item = readItem(bytes);
    if (item.kind === "heartbeat") {
      this.heartbeats.push(item.heartbeat);
      return;
    }
    const seq = item.seq;
    if (this.events === 0) this.firstSeq = seq;
    else if (seq === this.lastSeq) this.duplicates++;
    else if (seq < this.lastSeq) this.outOfOrder++;
    else this.gaps += seq - this.lastSeq - 1;
    if (seq > this.lastSeq) this.lastSeq = seq;
    this.events++;
  }

  private ended(fields: http2.IncomingHttpHeaders): void {
    if (this.status !== undefined) return;
    this.status = { code: Number(fields["grpc-status"]), message: decodeURIComponent(String(fields["grpc-message"] ?? "")) };
    this.wake();
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }
}
