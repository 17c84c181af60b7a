import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import { quoted } from "../answers/quote.js";
import { parseRfc3339, timestampToText } from "../codec/timestamps.js";
import { connectionGoingAway } from "../http/connection-age.js";
import type { HttpRequest, RouteContext, StreamedAnswer } from "../http/route-table.js";
import { leaseOf } from "../limits/request-lease.js";
import type { FollowItem } from "../subscribe/follow.js";
import { checkSubscription, type SubscriptionAsked } from "../subscribe/request.js";
import type { Subscriptions } from "../subscribe/subscriptions.js";
import { integerParam } from "./query.js";
import { restEvent } from "./rest-event.js";

/**
 * How long a browser's EventSource waits before it reconnects after the
 * stream ends; it then sends Last-Event-ID and resumes exactly there.
 */
const reconnectMs = 2_000;

const starts: Record<string, SubscriptionAsked["start"]> = { "": "default", beginning: "beginning", new: "new" };

/**
 * GET /events/stream: a subscription as Server-Sent Events, for browsers
 * (EventSource) and `curl -N`. Each event is one `data:` line of the same
 * JSON as GET /events, with `id: <seq>`; a reconnecting EventSource sends the
 * last id as Last-Event-ID, which resumes right after it. Heartbeats are
 * comments (ignored by EventSource, keeping proxies from closing a quiet
 * stream) followed by an `id:` line with the cursor, so a filtered stream
 * resumes past what its filter skipped. Query: topic, topic_prefix, source,
 * after, start=new|beginning, since, heartbeat_ms.
 */
export async function eventStream(subscriptions: Subscriptions, shutdownSignal: AbortSignal, req: HttpRequest, { caller, query }: RouteContext): Promise<StreamedAnswer> {
  const start = starts[query.get("start") ?? ""];
  if (start === undefined) throw new ConnectError(`query parameter start must be new or beginning, got ${quoted(query.get("start")!)}`, Code.InvalidArgument);
  const request = checkSubscription(
    {
      topic: query.get("topic") ?? "",
      topicPrefix: query.get("topic_prefix") ?? "",
      source: query.get("source") ?? "",
      afterSeq: lastEventId(req) ?? integerParam(query, "after"),
      start,
      since: timeParam(query.get("since")),
      consumer: "",
      heartbeatMs: integerParam(query, "heartbeat_ms"),
      maxUnacked: 0,
      maxLag: 0,
    },
    { afterSeq: "after (or Last-Event-ID)", topicPrefix: "topic_prefix" },
  );
  caller.authorizeRead(request.filter, "GET /events/stream");
  const lease = leaseOf(req);
  return {
    status: 200,
    headers: {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      // nginx buffers responses unless told not to; a live stream must not be.
      "x-accel-buffering": "no",
    },
    async *chunks(gone) {
      yield `retry: ${reconnectMs}\n\n`;
      // The stream also ends when the server drains or its connection reaches its age; EventSource then reconnects with Last-Event-ID.
      const signal = AbortSignal.any([gone, shutdownSignal, connectionGoingAway(req)]);
      try {
        for await (const item of subscriptions.open(request, caller, lease, signal)) yield frame(item);
      } catch (err) {
        if (signal.aborted) return;
        const error = ConnectError.from(err);
        const known = error.code !== Code.Internal && error.code !== Code.Unknown;
        yield `event: error\ndata: ${JSON.stringify({ code: codeToString(error.code), message: known ? error.rawMessage : "internal error" })}\n\n`;
      }
    },
  };
}

function frame(item: FollowItem): string {
  if (item.kind === "events") return item.rows.map((row) => `id: ${row.seq}\ndata: ${JSON.stringify(restEvent(row))}\n\n`).join("");
  return `: heartbeat head_seq=${item.head} caught_up=${item.caughtUp}\nid: ${item.cursor}\n\n`;
}

/** Last-Event-ID as a seq, or undefined when absent; anything else is refused. */
function lastEventId(req: HttpRequest): number | undefined {
  const header = req.headers["last-event-id"];
  const text = Array.isArray(header) ? header[0] : header;
  if (text === undefined || text === "") return undefined;
  if (!/^\d{1,15}$/.test(text)) throw new ConnectError(`Last-Event-ID must be a seq (a non-negative integer), got ${quoted(text)}`, Code.InvalidArgument);
  return Number(text);
}

function timeParam(text: string | null): string | undefined {
  if (text === null || text === "") return undefined;
  const ts = parseRfc3339(text);
  if (ts === undefined) throw new ConnectError(`query parameter since must be an RFC 3339 timestamp, got ${quoted(text)}`, Code.InvalidArgument);
  return timestampToText(ts);
}
