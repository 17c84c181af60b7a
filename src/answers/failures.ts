import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { ValidationError, violationPath } from "../codec/violations.js";
import { OverloadedError, ShuttingDownError } from "../ingest/refusals.js";
import { StoreError } from "../store/errors.js";

/** How connect-es begins the message of a request message it could not decode from protobuf binary. */
const binaryParsePrefix = "parse binary: ";

/** The refusal of a request message that is not valid protobuf, whoever found out: `detail` says what was wrong. */
export function undecodableRequest(detail: string): ConnectError {
  return new ConnectError(`cannot decode the request message: ${detail}`, Code.InvalidArgument);
}

/**
 * connect-es reports protobuf bytes it cannot decode as `internal` ("parse
 * binary: premature EOF"), although the fault is the client's: JSON it cannot
 * decode is `invalid_argument`, and connect-go answers both so. Where such an
 * error passes through our code (a stream's messages are decoded as the
 * handler reads them) it becomes `invalid_argument` here; unary requests are
 * decoded before any of our code runs, and rpc/rpc-edge.ts rewrites those answers.
 */
export function isBinaryParseError(err: ConnectError): boolean {
  return err.code === Code.Internal && err.rawMessage.startsWith(binaryParsePrefix);
}

/**
 * The one table from failure to Connect code. Refused batches carry their
 * field violations as google.rpc.BadRequest details and an overload its
 * retry delay as google.rpc.RetryInfo, so clients read them without parsing
 * the message. Anything unknown becomes `internal` with a generic message:
 * stack traces, SQL and paths stay in the log. The original error is kept as
 * the cause, for renderers that show more of it (REST's `violations`).
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) {
    return isBinaryParseError(err) ? undecodableRequest(err.rawMessage.slice(binaryParsePrefix.length)) : err;
  }
  if (err instanceof ValidationError) {
    const fieldViolations = err.violations.map((v) => ({ field: violationPath(v), description: v.description }));
    return new ConnectError(err.message, Code.InvalidArgument, undefined, [{ desc: BadRequestSchema, value: { fieldViolations } }], err);
  }
  if (err instanceof OverloadedError) {
    const retryDelay = durationFromMs(err.retryAfterSeconds * 1000);
    return new ConnectError(err.message, Code.Unavailable, { "retry-after": String(err.retryAfterSeconds) }, [{ desc: RetryInfoSchema, value: { retryDelay } }], err);
  }
  if (err instanceof ShuttingDownError) return new ConnectError(err.message, Code.Unavailable, undefined, undefined, err);
  if (err instanceof StoreError && err.retryable) return new ConnectError(err.message, Code.Unavailable, undefined, undefined, err);
  if (err instanceof StoreError && err.kind === "full") return new ConnectError(err.message, Code.ResourceExhausted, undefined, undefined, err);
  return new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** Node's errors for a request stream that ended before its end: the peer or the stream is gone. */
const streamGoneCodes = new Set(["ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED", "ECONNRESET"]);

/** Which call failed, for the log. */
export interface CallContext {
  /** The method ("Publish") or route ("POST /publish"). */
  operation: string;
  /** Name of the caller's token, when authentication is on. */
  token: string | undefined;
  /** Whether the call was already over for its client (gone, cut for inactivity, shutdown). */
  aborted: boolean;
}

/**
 * The Connect error a failed call is answered with, logging only what is
 * unexpected: clients never see internals, operators see every fault of ours.
 */
export function answerForFailure(log: Logger, err: unknown, context: CallContext): ConnectError {
  const mapped = toConnectError(err);
  if (mapped.code === Code.Internal && !(err instanceof ConnectError)) {
    const fields = { operation: context.operation, token: context.token };
    // A call whose stream went away fails reading its body: not a fault of ours, and nobody hears the answer.
    if (context.aborted || streamGoneCodes.has((err as NodeJS.ErrnoException).code ?? "")) {
      log.debug({ ...fields, reason: String(err) }, "call ended early");
    } else {
      log.error({ ...fields, err }, "request failed");
    }
  }
  return mapped;
}
