import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import http2 from "node:http2";
import type { Logger } from "pino";
import { AggregatorService, PublishResponseSchema } from "../gen/aggregator/v1/aggregator_pb.js";
import type { AccessList, Grant } from "./auth/access-list.js";
import { authorizePublish } from "./auth/interceptor.js";
import { logRefusal } from "./auth/policy.js";
import { binaryPublishHandlers, rawPublishRequest } from "./binary-publish.js";
import { answerForFailure } from "./call-failure.js";
import type { ServiceDeps } from "./service.js";

/**
 * A lean path for the most common small call: unary `Publish` over gRPC with
 * protobuf and no compression.
 *
 * connect-es spends about 1 ms of server CPU per unary call on this machine
 * (async iterables per message, abort signals, error objects), ten times a
 * REST request, which held single-event gRPC to ~1,000 calls/s and put its
 * p99 latency at 50% load in the hundreds of milliseconds (issue #3). This
 * reads the one envelope, decodes and publishes it with the very handler the
 * Connect routes use (binary-publish.ts), and answers headers, one message
 * and trailers. Everything it does not take (gRPC-Web, Connect, JSON,
 * compression, a malformed or over-long grpc-timeout, HTTP/1.1) goes to
 * connect-es as before. Its refusals carry the same codes and messages as
 * connect-es gives (tests/e2e/bad-input.test.ts runs both against the same table).
 */

const publishPath = `/${AggregatorService.typeName}/${AggregatorService.method.publish.name}`;
const publishMethod = AggregatorService.method.publish.name;

/** gRPC with the protobuf codec; `application/grpc` means protobuf. */
const grpcProtoContentType = /^application\/grpc(\+proto)?$/i;

/** The gRPC timeout header: up to 8 digits and a unit (gRPC over HTTP/2 spec). */
const grpcTimeoutPattern = /^(\d{1,8})([HMSmun])$/;
const msPerTimeoutUnit: Record<string, number> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000_001 };

/** Bytes of a gRPC message prefix: one flags byte and a 4-byte big-endian length. */
const prefixBytes = 5;
const compressedFlag = 0x01;

export interface LeanPublishOptions {
  deps: ServiceDeps;
  /** Known tokens when authentication is on; null when it is off. */
  access: AccessList | null;
  log: Logger;
  /** Largest request message, as the Connect adapters' readMaxBytes. */
  readMaxBytes: number;
  /** Longest grpc-timeout accepted here; longer ones go to connect-es, which refuses them. */
  maxTimeoutMs: number;
}

export interface LeanGrpcPublish {
  /** Whether this path serves the request; otherwise the Connect adapters do. */
  accepts(req: { httpVersionMajor: number; method?: string | undefined; url?: string | undefined; headers: http2.IncomingHttpHeaders }): boolean;
  handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void;
}

export function leanGrpcPublish(options: LeanPublishOptions): LeanGrpcPublish {
  const handlers = binaryPublishHandlers(options.deps);
  const timeoutOf = (header: string | string[] | undefined) => parseGrpcTimeout(header, options.maxTimeoutMs);

  return {
    accepts(req) {
      const encoding = req.headers["grpc-encoding"];
      return (
        req.httpVersionMajor === 2 &&
        req.method === "POST" &&
        req.url === publishPath &&
        grpcProtoContentType.test(req.headers["content-type"] ?? "") &&
        (encoding === undefined || encoding === "identity") &&
        timeoutOf(req.headers["grpc-timeout"]) !== "invalid"
      );
    },

    handle(req, res) {
      const reply = new Reply(req, res);
      let grant: Grant | undefined;
      if (options.access !== null) {
        try {
          grant = options.access.authenticate(req.headers.authorization);
        } catch (err) {
          refuse(reply, err, grant);
          return;
        }
      }
      const timeoutMs = timeoutOf(req.headers["grpc-timeout"]);
      if (typeof timeoutMs === "number") {
        const timer = setTimeout(() => reply.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
        res.once("close", () => clearTimeout(timer));
      }

      const body = new UnaryBody(options.readMaxBytes);
      req.on("data", (chunk: Buffer) => {
        if (reply.done) return;
        const problem = body.push(chunk);
        if (problem !== undefined) reply.fail(problem);
      });
      req.on("end", () => {
        if (reply.done) return;
        let events: Uint8Array[];
        try {
          events = decodeRequest(body.message());
        } catch (err) {
          reply.fail(err as ConnectError);
          return;
        }
        if (grant !== undefined) {
          try {
            authorizePublish(grant, events);
          } catch (err) {
            refuse(reply, err, grant);
            return;
          }
        }
        handlers.publish({ events }).then(
          (response) => reply.succeed(toBinary(PublishResponseSchema, response)),
          (err: unknown) => reply.fail(answerForFailure(options.log, err, { method: publishMethod, token: grant?.name, aborted: reply.done })),
        );
      });
    },
  };

  function refuse(reply: Reply, err: unknown, grant: Grant | undefined): void {
    reply.fail(logRefusal(options.log, err, grant, publishMethod));
  }
}

/** A grpc-timeout in milliseconds; undefined when none was sent; "invalid" when malformed or over the limit (connect-es answers those). */
function parseGrpcTimeout(header: string | string[] | undefined, maxTimeoutMs: number): number | undefined | "invalid" {
  if (header === undefined) return undefined;
  const match = typeof header === "string" ? grpcTimeoutPattern.exec(header) : null;
  if (match === null) return "invalid";
  const ms = Number(match[1]) * msPerTimeoutUnit[match[2]!]!;
  return ms > maxTimeoutMs ? "invalid" : ms;
}

/** The PublishRequest's events as raw bytes; throws invalid_argument, as connect-es (via rpc-edge.ts) does. */
function decodeRequest(bytes: Uint8Array): Uint8Array[] {
  try {
    return (fromBinary(rawPublishRequest, bytes) as unknown as { events: Uint8Array[] }).events;
  } catch (err) {
    throw new ConnectError(`cannot decode the request message: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
  }
}

/**
 * The body of a unary gRPC call: exactly one uncompressed message. Memory is
 * bounded by readMaxBytes: a prefix declaring more is refused as soon as it
 * arrives, and bytes beyond the first message and the next prefix mean a
 * second message, which a unary call may not have.
 */
class UnaryBody {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private declared: number | undefined;

  constructor(private readonly readMaxBytes: number) {}

  /** Takes one chunk; answers the error to fail the call with, if the body already cannot be valid. */
  push(chunk: Buffer): ConnectError | undefined {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.declared === undefined && this.length >= prefixBytes) {
      this.declared = this.joined().readUInt32BE(1);
      if (this.declared > this.readMaxBytes) {
        return new ConnectError(`message size ${this.declared} is larger than configured readMaxBytes ${this.readMaxBytes}`, Code.ResourceExhausted);
      }
    }
    if (this.declared !== undefined && this.length >= 2 * prefixBytes + this.declared) return extraMessage();
    return undefined;
  }

  /** The one message, once the body has ended; throws what connect-es would answer for any other body. */
  message(): Uint8Array {
    if (this.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
    const body = this.joined();
    if (this.declared === undefined || body.length < prefixBytes + this.declared) throw incompleteEnvelope();
    if ((body[0]! & compressedFlag) !== 0) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    const rest = body.length - prefixBytes - this.declared;
    if (rest > 0) throw rest < prefixBytes ? incompleteEnvelope() : extraMessage();
    return body.subarray(prefixBytes);
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks, this.length));
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

function incompleteEnvelope(): ConnectError {
  return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}

function extraMessage(): ConnectError {
  return new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
}

/**
 * The answer of one call, given once: headers, the message, then trailers
 * with the status, as connect-node answers (errors too carry their status in
 * trailers). A client that went away gets nothing; one still sending after
 * an early refusal is told to stop (RST_STREAM NO_ERROR, RFC 9113 §8.1).
 */
class Reply {
  done = false;

  constructor(
    private readonly req: http2.Http2ServerRequest,
    private readonly res: http2.Http2ServerResponse,
  ) {}

  succeed(message: Uint8Array): void {
    const frame = Buffer.allocUnsafe(prefixBytes + message.length);
    frame[0] = 0;
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, prefixBytes);
    this.send({ "grpc-status": "0" }, frame);
  }

  fail(err: ConnectError): void {
    const trailers: Record<string, string> = {};
    err.metadata.forEach((value, key) => (trailers[key] = value));
    trailers["grpc-status"] = String(err.code);
    trailers["grpc-message"] = encodeURIComponent(err.rawMessage);
    this.send(trailers, undefined);
  }

  private send(trailers: Record<string, string>, frame: Buffer | undefined): void {
    if (this.done) return;
    this.done = true;
    const { req, res } = this;
    if (res.stream.destroyed || res.stream.closed) return;
    if (!req.complete) res.once("finish", () => req.stream.close(http2.constants.NGHTTP2_NO_ERROR));
    res.writeHead(200, { "content-type": "application/grpc+proto" });
    res.addTrailers(trailers);
    if (frame === undefined) res.end();
    else res.end(frame);
  }
}
