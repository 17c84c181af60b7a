import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { SubscribeRequestSchema, SubscribeResponseSchema, type Heartbeat } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcFrame } from "./raw-http.js";

/**
 * A gRPC Subscribe call on a bare HTTP/2 session (node:http2), below any RPC
 * client, so a test decides exactly when it reads: pause() stops reading,
 * and HTTP/2 flow control then stops the server's writes once the stream's
 * window is full, as with a consumer stuck on slow work. What it reads is
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

  /** One SubscribeResponse: an event's seq is read by hand (field 1, then its field 1), a heartbeat decoded whole. */
  private message(bytes: Buffer): void {
    const event = lengthDelimitedField(bytes, 1);
    if (event === undefined) {
      const response = fromBinary(SubscribeResponseSchema, bytes);
      if (response.item.case === "heartbeat") this.heartbeats.push(response.item.value);
      return;
    }
    const seq = varintField(event, 1);
    if (seq === undefined) throw new Error("an event without a seq");
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

/** Reads a varint at `at`; answers its value and the offset after it. */
function readVarint(bytes: Buffer, at: number): [number, number] {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = bytes[at++]!;
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) return [value, at];
    scale *= 128;
  }
}

/** Walks a message's fields, calling `visit` with each field's number, wire type and where its value starts; stops when it answers true. */
function walk(bytes: Buffer, visit: (field: number, wireType: number, at: number) => boolean): void {
  let at = 0;
  while (at < bytes.length) {
    const [tag, valueAt] = readVarint(bytes, at);
    const field = Math.floor(tag / 8);
    const wireType = tag & 7;
    if (visit(field, wireType, valueAt)) return;
    switch (wireType) {
      case 0:
        at = readVarint(bytes, valueAt)[1];
        break;
      case 1:
        at = valueAt + 8;
        break;
      case 2: {
        const [length, dataAt] = readVarint(bytes, valueAt);
        at = dataAt + length;
        break;
      }
      case 5:
        at = valueAt + 4;
        break;
      default:
        throw new Error(`wire type ${wireType} in a SubscribeResponse`);
    }
  }
}

function lengthDelimitedField(bytes: Buffer, number: number): Buffer | undefined {
  let found: Buffer | undefined;
  walk(bytes, (field, wireType, at) => {
    if (field !== number || wireType !== 2) return false;
    const [length, dataAt] = readVarint(bytes, at);
    found = bytes.subarray(dataAt, dataAt + length);
    return true;
  });
  return found;
}

function varintField(bytes: Buffer, number: number): number | undefined {
  let found: number | undefined;
  walk(bytes, (field, wireType, at) => {
    if (field !== number || wireType !== 0) return false;
    found = readVarint(bytes, at)[0];
    return true;
  });
  return found;
}
