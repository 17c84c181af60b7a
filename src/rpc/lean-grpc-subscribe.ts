import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type http2 from "node:http2";
import type { Logger } from "pino";
import { AggregatorService, SubscribeRequestSchema, SubscribeResponseSchema } from "../../gen/aggregator/v1/aggregator_pb.js";
import { answerForFailure, undecodableRequest } from "../answers/failures.js";
import { grpcStatusFields } from "../answers/render.js";
import type { Caller } from "../auth/caller.js";
import type { Gate } from "../auth/gate.js";
import { ProtoWriter } from "../codec/proto-writer.js";
import { writeSubscribeEventFrames } from "../codec/stored-event-wire.js";
import { connectionGoingAway } from "../http/connection-age.js";
import { leaseOf } from "../limits/request-lease.js";
import type { StoredEventRow } from "../store/types.js";
import type { Subscriptions } from "../subscribe/subscriptions.js";
import { parseGrpcTimeout } from "./grpc-timeout.js";
import { isLeanGrpcCall, type LeanCandidate } from "./lean-grpc-call.js";
import { goingAwayError, heartbeatResponse, subscriptionRequest } from "./subscribe-service.js";
import { UnaryGrpcBody, grpcFrame } from "./unary-grpc-body.js";

/**
 * A lean path for `Subscribe` over gRPC with protobuf and no compression:
 * what grpc-js, grpcio, connect-node's gRPC transport and `buf curl` send.
 *
 * Through connect-es each delivered event was a protobuf-es message encoded
 * by reflection and written on its own, awaiting the write: catch-up ran at
 * ~8,000 events/s with the main thread busy, most of it Struct encoding and
 * garbage (profiled). Here a whole page of events is encoded by hand
 * (codec/stored-event-wire.ts) into one buffer and written at once, waiting
 * for the stream to drain before the next page, so a slow reader still holds
 * back its subscription and never fills memory. Requests and answers are the
 * same as connect-es gives (the checks, the gate, the errors); gRPC-Web,
 * Connect and JSON subscriptions go through connect-es as before.
 */

const subscribeMethod = AggregatorService.method.subscribe.name;
const subscribeOperation = `${AggregatorService.typeName}/${subscribeMethod}`;
const subscribePath = `/${subscribeOperation}`;

/** A SubscribeRequest is a few filters: 64 KiB is far more than the longest valid one. */
const maxRequestBytes = 64 * 1024;

export interface LeanSubscribeOptions {
  subscriptions: Subscriptions;
  gate: Gate;
  log: Logger;
  /** Longest grpc-timeout accepted here; longer ones go to connect-es, which refuses them. */
  maxTimeoutMs: number;
  /** Aborted when the server drains: the subscription ends with `unavailable`. */
  shutdownSignal: AbortSignal;
}

export interface LeanGrpcSubscribe {
  accepts(req: LeanCandidate): boolean;
  handle(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse): void;
}

export function leanGrpcSubscribe({ subscriptions, gate, log, maxTimeoutMs, shutdownSignal }: LeanSubscribeOptions): LeanGrpcSubscribe {
  const timeoutOf = (header: string | string[] | undefined) => parseGrpcTimeout(header, maxTimeoutMs);

  return {
    accepts: (req) => isLeanGrpcCall(req, subscribePath, maxTimeoutMs),

    handle(req, res) {
      const stream = new SubscriptionStream(res);
      let caller: Caller;
      try {
        caller = gate.admit({ operation: subscribeOperation, label: subscribeMethod, authorization: req.headers.authorization });
      } catch (err) {
        stream.end(err as ConnectError);
        return;
      }
      const fail = (err: unknown) => stream.end(answerForFailure(log, err, { operation: subscribeMethod, token: caller.name, aborted: stream.gone.aborted }));
      const body = new UnaryGrpcBody(maxRequestBytes);
      req.on("data", (chunk: Buffer) => {
        const problem = stream.ended ? undefined : body.push(chunk);
        if (problem !== undefined) stream.end(problem);
      });
      req.on("end", () => {
        if (stream.ended) return;
        const timeoutMs = timeoutOf(req.headers["grpc-timeout"]);
        const deadline = typeof timeoutMs === "number" ? AbortSignal.timeout(timeoutMs) : undefined;
        const goingAway = connectionGoingAway(req);
        const signals = [stream.gone, goingAway, shutdownSignal, ...(deadline === undefined ? [] : [deadline])];
        run(AbortSignal.any(signals)).then(
          (cursor) => {
            if (stream.gone.aborted) return;
            if (deadline?.aborted) stream.end(new ConnectError("the operation timed out", Code.DeadlineExceeded));
            else if (shutdownSignal.aborted) stream.end(new ConnectError("server is shutting down", Code.Unavailable));
            else if (goingAway.aborted) stream.end(goingAwayError(cursor));
            else stream.end(undefined);
          },
          fail,
        );
      });

      /** Delivers the subscription until `signal` aborts; answers the last cursor. */
      async function run(signal: AbortSignal): Promise<number> {
        let decoded;
        try {
          decoded = fromBinary(SubscribeRequestSchema, body.message());
        } catch (err) {
          throw undecodableRequest(err instanceof Error ? err.message : String(err));
        }
        const request = subscriptionRequest(decoded);
        caller.authorizeRead(request.filter, subscribeMethod);
        let cursor = 0;
        for await (const item of subscriptions.open(request, caller, leaseOf(req), signal)) {
          if (item.kind === "heartbeat") {
            cursor = item.cursor;
            await stream.write(grpcFrame(toBinary(SubscribeResponseSchema, heartbeatResponse(item))));
          } else {
            cursor = item.rows.at(-1)!.seq;
            await stream.write(item.shared ? sharedFrames(item.rows) : frames(item.rows));
          }
        }
        return cursor;
      }
    },
  };
}

function frames(rows: readonly StoredEventRow[]): Uint8Array {
  const w = new ProtoWriter(Math.max(1024, rows.length * 256));
  writeSubscribeEventFrames(w, rows);
  return w.buffer.subarray(0, w.length);
}

/**
 * A live commit's events are delivered to every subscriber that follows
 * them: each row's frame is encoded once and kept with the row (the feed
 * holds the row while anyone may still need it), so ten subscribers cost one
 * encoding and ten copies.
 */
const frameOfRow = new WeakMap<StoredEventRow, Uint8Array>();

function sharedFrames(rows: readonly StoredEventRow[]): Uint8Array {
  const parts: Uint8Array[] = new Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    let frame = frameOfRow.get(row);
    if (frame === undefined) {
      frame = frames([row]).slice();
      frameOfRow.set(row, frame);
    }
    parts[i] = frame;
  }
  return Buffer.concat(parts);
}

/**
 * One subscription's response: headers at the first write, frames as they
 * come (each write waits for the stream to drain first), then trailers with
 * the status. `gone` aborts when the client leaves or the stream is reset.
 */
class SubscriptionStream {
  ended = false;
  private started = false;
  private readonly closed = new AbortController();

  constructor(private readonly res: http2.Http2ServerResponse) {
    res.once("close", () => this.closed.abort());
  }

  get gone(): AbortSignal {
    return this.closed.signal;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.ended || this.closed.signal.aborted) return;
    this.start();
    if (this.res.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.res.off("drain", done);
        this.closed.signal.removeEventListener("abort", done);
        resolve();
      };
      this.res.once("drain", done);
      this.closed.signal.addEventListener("abort", done, { once: true });
    });
  }

  /** Ends with the error's status, or OK. */
  end(err: ConnectError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    const { res } = this;
    if (this.closed.signal.aborted || res.stream.destroyed || res.stream.closed) return;
    this.start();
    res.addTrailers(grpcStatusFields(err));
    res.end();
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, { "content-type": "application/grpc+proto" });
  }
}
