import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type http2 from "node:http2";
import type { Logger } from "pino";
import { AggregatorService, PublishResponseSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { answerForFailure, undecodableRequest } from "../answers/failures.js";
import { grpcStatusFields } from "../answers/render.js";
import { heapBytesPerWireByte } from "../limits/memory-budget.js";
import { leaseOf } from "../limits/request-lease.js";
import type { Caller } from "../auth/caller.js";
import type { Gate } from "../auth/gate.js";
import { decodeWireEvents } from "../codec/wire-events.js";
import type { PublishPipeline } from "../ingest/pipeline.js";
import { publishResponse } from "./aggregator-service.js";
import { parseGrpcTimeout } from "./grpc-timeout.js";
import { isLeanGrpcCall, type LeanCandidate } from "./lean-grpc-call.js";
import { rawPublishRequest } from "./raw-events-service.js";
import { UnaryGrpcBody, grpcFrame } from "./unary-grpc-body.js";

/**
 * A lean path for the most common small call: unary `Publish` over gRPC with
 * protobuf and no compression.
 *
 * connect-es spends about 1 ms of server CPU per unary call on this machine
 * (async iterables per message, abort signals, error objects), ten times a
 * REST request, which held single-event gRPC to ~1,000 calls/s and put its
 * p99 latency at 50% load in the hundreds of milliseconds. This reads the
 * one envelope, decodes it with the binary fast path's decoder, hands it to
 * the same pipeline through the same gate, and answers headers, one message
 * and trailers. Everything it does not take (gRPC-Web, Connect, JSON,
 * compression, a malformed or over-long grpc-timeout, HTTP/1.1) goes to
 * connect-es as before. Its refusals carry the same codes and messages as
 * connect-es gives (tests/e2e/bad-input.test.ts runs both against the same table).
 */

const publishMethod = AggregatorService.method.publish.name;
const publishOperation = `${AggregatorService.typeName}/${publishMethod}`;
const publishPath = `/${publishOperation}`;

export interface LeanPublishOptions {
  pipeline: PublishPipeline;
  gate: Gate;
  log: Logger;
  /** Largest request message, as the Connect adapters' readMaxBytes. */
  readMaxBytes: number;
  /** Longest grpc-timeout accepted here; longer ones go to connect-es, which refuses them. */
  maxTimeoutMs: number;
}

export interface LeanGrpcPublish {
  /** Whether this path serves the request; otherwise the Connect adapters do. */
  accepts(req: LeanCandidate): boolean;
  handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void;
}

export function leanGrpcPublish({ pipeline, gate, log, readMaxBytes, maxTimeoutMs }: LeanPublishOptions): LeanGrpcPublish {
  const timeoutOf = (header: string | string[] | undefined) => parseGrpcTimeout(header, maxTimeoutMs);

  return {
    accepts: (req) => isLeanGrpcCall(req, publishPath, maxTimeoutMs),

    handle(req, res) {
      const reply = new Reply(res);
      let caller: Caller;
      try {
        caller = gate.admit({ operation: publishOperation, label: publishMethod, authorization: req.headers.authorization });
      } catch (err) {
        reply.fail(err as ConnectError);
        return;
      }
      const timeoutMs = timeoutOf(req.headers["grpc-timeout"]);
      if (typeof timeoutMs === "number") {
        const timer = setTimeout(() => reply.fail(new ConnectError("the operation timed out", Code.DeadlineExceeded)), timeoutMs);
        res.once("close", () => clearTimeout(timer));
      }

      const body = new UnaryGrpcBody(readMaxBytes);
      let held = false;
      // The message takes its share of the memory budget as soon as its length is known, or the call is refused.
      const hold = (): ConnectError | undefined => {
        if (held || body.declaredBytes === undefined) return undefined;
        held = true;
        try {
          leaseOf(req).hold(body.declaredBytes * heapBytesPerWireByte);
          return undefined;
        } catch (err) {
          return answerForFailure(log, err, { operation: publishMethod, token: caller.name, aborted: reply.done });
        }
      };
      req.on("data", (chunk: Buffer) => {
        if (reply.done) return;
        const problem = body.push(chunk) ?? hold();
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
        let published;
        try {
          published = pipeline.publish(decodeWireEvents(events, pipeline.maxBatch), caller);
        } catch (err) {
          published = Promise.reject(err);
        }
        published.then(
          (outcome) => reply.succeed(toBinary(PublishResponseSchema, publishResponse(outcome))),
          (err: unknown) => reply.fail(answerForFailure(log, err, { operation: publishMethod, token: caller.name, aborted: reply.done })),
        );
      });
    },
  };
}

/** The PublishRequest's events as raw bytes; throws invalid_argument, as connect-es (via rpc-edge.ts) does. */
function decodeRequest(bytes: Uint8Array): Uint8Array[] {
  try {
    return (fromBinary(rawPublishRequest, bytes) as unknown as { events: Uint8Array[] }).events;
  } catch (err) {
    throw undecodableRequest(err instanceof Error ? err.message : String(err));
  }
}

/**
 * The answer of one call, given once: headers, the message, then trailers
 * with the status, as connect-node answers (errors too carry their status in
 * trailers). A client that went away gets nothing.
 */
class Reply {
  done = false;

  constructor(private readonly res: http2.Http2ServerResponse) {}

  succeed(message: Uint8Array): void {
    this.send(grpcStatusFields(undefined), grpcFrame(message));
  }

  fail(err: ConnectError): void {
    this.send(grpcStatusFields(err), undefined);
  }

  private send(trailers: Record<string, string>, frame: Buffer | undefined): void {
    if (this.done) return;
    this.done = true;
    const { res } = this;
    if (res.stream.destroyed || res.stream.closed) return;
    res.writeHead(200, { "content-type": "application/grpc+proto" });
    res.addTrailers(trailers);
    if (frame === undefined) res.end();
    else res.end(frame);
  }
}
