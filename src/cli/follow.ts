import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  SubscribeRequest_Start,
  SubscribeRequestSchema,
  type Heartbeat,
  type StoredEvent,
  type SubscribeRequest,
} from "../../gen/aggregator/v1/aggregator_pb.js";
import { reconnectDelayMs, waitUnlessAborted } from "./backoff.js";
import type { TallyClient } from "./connection.js";

/** What a follower does with what arrives, and how it hears of a reconnect. */
export interface FollowHandlers {
  event(event: StoredEvent): void;
  heartbeat(heartbeat: Heartbeat): void;
  /** The stream was lost and will be opened again after `delayMs`, resuming after `afterSeq`. */
  reconnecting(reason: ConnectError | undefined, attempt: number, delayMs: number, afterSeq: bigint): void;
}

/**
 * Subscribes and keeps the subscription going until `signal` aborts. A
 * stream that ends with `unavailable` (a restart, a connection past its
 * age, a dead connection), or ends without error (a server shutting down),
 * is opened again with backoff, after the last seq delivered or the last
 * heartbeat's cursor, whichever is later, so nothing is delivered twice
 * and nothing is skipped. Any other error ends the follow: it means the
 * request itself is refused or was taken over, and asking again would not
 * help. Neither does asking again a server that never answered once: a
 * wrong --target fails at once instead of retrying forever.
 */
export async function follow(
  client: TallyClient,
  request: MessageInitShape<typeof SubscribeRequestSchema>,
  handlers: FollowHandlers,
  signal: AbortSignal,
): Promise<void> {
  let resumeAfter: bigint | undefined;
  let answered = false;
  let attempt = 0;
  while (!signal.aborted) {
    let reason: ConnectError | undefined;
    try {
      for await (const response of client.subscribe(resumeRequest(request, resumeAfter), { signal })) {
        answered = true;
        attempt = 0;
        const item = response.item;
        if (item.case === "event") {
          resumeAfter = item.value.seq;
          handlers.event(item.value);
        } else if (item.case === "heartbeat") {
          if (resumeAfter === undefined || item.value.cursor > resumeAfter) resumeAfter = item.value.cursor;
          handlers.heartbeat(item.value);
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      if (!(err instanceof ConnectError) || err.code !== Code.Unavailable || !answered) throw err;
      reason = err;
    }
    if (signal.aborted) return;
    attempt++;
    const delayMs = reconnectDelayMs(attempt);
    handlers.reconnecting(reason, attempt, delayMs, resumeAfter ?? request.afterSeq ?? 0n);
    await waitUnlessAborted(delayMs, signal);
  }
}

/**
 * The request to (re)open with: the original one until something arrived,
 * then the same filters and consumer after the point reached. A consumer's
 * own cursor is not used for that: acks trail what was printed, and
 * resuming from them would print some events twice.
 */
export function resumeRequest(request: MessageInitShape<typeof SubscribeRequestSchema>, resumeAfter: bigint | undefined): SubscribeRequest {
  if (resumeAfter === undefined) return create(SubscribeRequestSchema, request);
  // after_seq 0 means "see start": from nothing at all the beginning is the right place whatever was asked.
  const start = resumeAfter === 0n ? SubscribeRequest_Start.BEGINNING : SubscribeRequest_Start.UNSPECIFIED;
  return create(SubscribeRequestSchema, { ...request, afterSeq: resumeAfter, start });
}
