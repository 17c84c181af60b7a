import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { randomBytes } from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { EventSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { grpcFrame, varint } from "../support/raw-http.js";
import type { TestServer } from "../support/server.js";

/** Clients for attackers: every connection is made from a chosen loopback address. */

/** An HTTP/2 cleartext session from `localAddress`. Errors are swallowed: attackers expect to be cut off. */
export function h2Session(port: number, localAddress: string, options: http2.ClientSessionOptions = {}): http2.ClientHttp2Session {
  let socket: net.Socket | undefined;
  const session = http2.connect(`http://127.0.0.1:${port}`, {
    ...options,
    createConnection: () => (socket = net.connect({ host: "127.0.0.1", port, localAddress })),
  });
  session.on("error", () => undefined);
  sockets.set(session, socket!);
  return session;
}

const sockets = new WeakMap<http2.ClientHttp2Session, net.Socket>();

/**
 * A TCP connection from `localAddress` that writes `request` and reads
 * nothing: paused before any answer arrives, so the answers wait in the
 * server. Errors are swallowed; `onClose` hears of the connection closing.
 */
export function neverReadingSocket(port: number, localAddress: string, request: string, onClose: () => void): net.Socket {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  socket.on("error", () => undefined);
  socket.on("close", onClose);
  socket.pause();
  socket.write(request);
  return socket;
}

/** Bytes written to a session's socket so far: what actually left the attacker. */
export function bytesSent(session: http2.ClientHttp2Session): number {
  return sockets.get(session)?.bytesWritten ?? 0;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpOptions {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  localAddress?: string;
  /** Fails the request after this long (default 60 s). */
  timeoutMs?: number;
  agent?: http.Agent | false;
}

/** One HTTP/1.1 request to the server from a chosen address, answer read whole. */
export function httpRequest(port: number, options: HttpOptions): Promise<Answer> {
  const body = options.body === undefined ? undefined : Buffer.from(options.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: "127.0.0.1",
        port,
        method: options.method ?? "GET",
        path: options.path,
        localAddress: options.localAddress ?? "127.0.0.1",
        agent: options.agent ?? false,
        headers: { ...(body !== undefined && { "content-length": String(body.length) }), ...options.headers },
        timeout: options.timeoutMs ?? 60_000,
        maxHeaderSize: 1024 * 1024,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${options.method ?? "GET"} ${options.path} timed out`)));
    req.on("error", reject);
    req.end(body);
  });
}

export interface H2Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  body: Buffer;
  rstCode: number;
}

/** One request on an open HTTP/2 session, answer read whole; a reset resolves with its code. */
export function h2Request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer | string): Promise<H2Answer> {
  return new Promise((resolve) => {
    const stream = session.request(headers);
    const answer: H2Answer = { status: 0, headers: {}, trailers: {}, body: Buffer.alloc(0), rstCode: 0 };
    const chunks: Buffer[] = [];
    stream.on("response", (h) => {
      answer.headers = h;
      answer.status = Number(h[":status"] ?? 0);
    });
    stream.on("trailers", (t) => (answer.trailers = t));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", () => undefined);
    stream.on("close", () => {
      answer.body = Buffer.concat(chunks);
      answer.rstCode = stream.rstCode ?? 0;
      resolve(answer);
    });
    stream.end(body);
  });
}

/** gRPC request headers for a method of the aggregator service (or another full path). */
export function grpcHeaders(method: string, extra: http2.OutgoingHttpHeaders = {}): http2.OutgoingHttpHeaders {
  const path = method.startsWith("/") ? method : `/aggregator.v1.AggregatorService/${method}`;
  return { ":method": "POST", ":path": path, "content-type": "application/grpc", te: "trailers", ...extra };
}

/** The grpc-status of an answer (trailers, or headers for trailers-only); undefined when there is none. */
export function grpcStatus(answer: H2Answer): number | undefined {
  const value = answer.trailers["grpc-status"] ?? answer.headers["grpc-status"];
  return value === undefined ? undefined : Number(value);
}

/** A JSON payload of about `bytes` bytes, one string field of random base64. */
export function bigPayload(bytes: number): { blob: string } {
  return { blob: randomBytes(Math.ceil((bytes * 3) / 4)).toString("base64").slice(0, bytes) };
}

/**
 * Protobuf PublishRequest / PublishStreamRequest messages (same field 1 =
 * repeated Event) with unique event ids, made fast: the payload's bytes are
 * encoded once and appended to each event's other fields (protobuf merges
 * concatenated fields), so the attacker can send many MiB per second.
 */
export class EventMessages {
  private readonly payloadField: Buffer;
  private next = 0;

  constructor(
    private readonly tag: string,
    payloadBytes: number,
    private readonly topic = "abuse",
  ) {
    this.payloadField = Buffer.from(toBinary(EventSchema, create(EventSchema, { payload: bigPayload(payloadBytes) })));
  }

  /** One message of `count` events, each with a new id. */
  message(count: number): Buffer {
    const parts: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const head = toBinary(
        EventSchema,
        create(EventSchema, { topic: this.topic, eventId: `${this.tag}-${this.next++}`, timestamp: timestampFromDate(new Date("2025-10-24T10:00:00Z")), source: "abuse" }),
      );
      const event = Buffer.concat([head, this.payloadField]);
      parts.push(Buffer.from([0x0a]), varint(event.length), event);
    }
    return Buffer.concat(parts);
  }

  /** The same, framed for gRPC. */
  grpcMessage(count: number): Buffer {
    return grpcFrame(this.message(count));
  }
}

/** A REST event (JSON shape). */
export function restEvent(topic: string, eventId: string, payload: unknown = { n: 1 }): Record<string, unknown> {
  return { topic, event_id: eventId, timestamp: "2025-10-24T10:00:00Z", source: "abuse", payload };
}

/**
 * Publishes events over REST in batches, from 127.0.0.1, before an attack.
 * A batch refused for a full queue (503) is sent again when the queue has
 * room; any other answer but 200 fails the seeding.
 */
export async function seedRest(server: TestServer, events: Record<string, unknown>[], batchSize: number, inFlight = 2): Promise<void> {
  const batches: Record<string, unknown>[][] = [];
  for (let i = 0; i < events.length; i += batchSize) batches.push(events.slice(i, i + batchSize));
  const agent = new http.Agent({ keepAlive: true, maxSockets: inFlight });
  try {
    await Promise.all(
      Array.from({ length: inFlight }, async (_, worker) => {
        for (let b = worker; b < batches.length; b += inFlight) {
          const body = JSON.stringify({ events: batches[b] });
          let answer: Answer;
          for (;;) {
            answer = await httpRequest(server.port, { method: "POST", path: "/publish", headers: { "content-type": "application/json" }, body, agent });
            if (answer.status !== 503) break;
            await delay(100); // a retry's back-off: the queue drains within a group commit or two
          }
          if (answer.status !== 200) throw new Error(`seeding: batch ${b} answered ${answer.status}: ${answer.body.toString("utf8", 0, 300)}`);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
}

/** How many events of a topic are stored (GET /events from 127.0.0.1; auth off). */
export async function storedCount(server: TestServer, topic: string, headers: Record<string, string> = {}): Promise<number> {
  const answer = await httpRequest(server.port, { path: `/events?topic=${encodeURIComponent(topic)}&limit=1000`, headers });
  if (answer.status !== 200) throw new Error(`GET /events?topic=${topic} answered ${answer.status}: ${answer.body.toString("utf8", 0, 300)}`);
  return (JSON.parse(answer.body.toString("utf8")) as { events: unknown[] }).events.length;
}

/** Resolves when `condition` holds, checking every `everyMs`, or after `timeoutMs` (then resolves false). */
export async function waitFor(condition: () => boolean, timeoutMs: number, everyMs = 20): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return true;
}

/** Waits `ms`: a retry's back-off. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits the attack's measured duration (the measurement itself, not a stand-in for a condition). */
export const hold = delay;

/** Runs `count` async tasks with at most `limit` at once. */
export async function inBatches(count: number, limit: number, task: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, count) }, async () => {
      while (next < count) await task(next++);
    }),
  );
}
