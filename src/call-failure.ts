import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import { toConnectError } from "./errors.js";

/** Node's errors for a request stream that ended before its end: the peer or the stream is gone. */
const streamGoneCodes = new Set(["ERR_STREAM_PREMATURE_CLOSE", "ERR_STREAM_DESTROYED", "ECONNRESET"]);

/** Which call failed, for the log. */
export interface CallContext {
  method: string;
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
    const fields = { method: context.method, token: context.token };
    // A call whose stream went away fails reading its body: not a fault of ours, and nobody hears the answer.
    if (context.aborted || streamGoneCodes.has((err as NodeJS.ErrnoException).code ?? "")) {
      log.debug({ ...fields, reason: String(err) }, "call ended early");
    } else {
      log.error({ ...fields, err }, "request failed");
    }
  }
  return mapped;
}
