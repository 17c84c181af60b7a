import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  AckResponseSchema,
  ConsumerInfoSchema,
  ConsumersResponseSchema,
  DeleteConsumerResponseSchema,
  SubscribeRequest_Start,
  SubscribeResponseSchema,
  type AckRequest,
  type ConsumersRequest,
  type DeleteConsumerRequest,
  type SubscribeRequest,
  type SubscribeResponse,
} from "../../gen/aggregator/v1/aggregator_pb.js";
import { callerOf } from "../auth/interceptor.js";
import { textToTimestamp, timestampToText } from "../codec/timestamps.js";
import { leaseIn } from "../limits/request-lease.js";
import type { ConsumerRecord, StoredEventRow } from "../store/types.js";
import { checkConsumerName } from "../subscribe/consumers.js";
import type { FollowItem } from "../subscribe/follow.js";
import { checkSubscription, type SubscriptionAsked, type SubscriptionRequest } from "../subscribe/request.js";
import type { Subscriptions } from "../subscribe/subscriptions.js";
import { connectionGoingAwayIn } from "./going-away.js";
import { storedEvent } from "./stored-event.js";

/** Consumers per page when the caller names no number. */
const defaultConsumerPage = 100;
/** Largest Consumers page: each consumer's lag is a bounded count, so a page stays a fraction of a second. */
const maxConsumerPage = 500;
/** Stored events a consumer's lag count examines at most. */
const lagCountCap = 10_000;
/** Heap a listed consumer holds while its answer is written: its names and numbers, generously. */
const bytesPerListedConsumer = 2048;

const starts = new Map<SubscribeRequest_Start, SubscriptionAsked["start"]>([
  [SubscribeRequest_Start.UNSPECIFIED, "default"],
  [SubscribeRequest_Start.BEGINNING, "beginning"],
  [SubscribeRequest_Start.NEW, "new"],
]);

/**
 * One response message per stored row, built once however many
 * subscriptions deliver it: live subscribers share the feed's row objects,
 * so a commit followed by ten subscribers converts its events once.
 */
const responses = new WeakMap<StoredEventRow, SubscribeResponse>();

function eventResponse(row: StoredEventRow): SubscribeResponse {
  let response = responses.get(row);
  if (response === undefined) {
    response = create(SubscribeResponseSchema, { item: { case: "event", value: storedEvent(row) } });
    responses.set(row, response);
  }
  return response;
}

/** A SubscribeRequest checked and in subscribe/'s terms; refused with invalid_argument naming the field. Both Subscribe paths use it. */
export function subscriptionRequest(req: SubscribeRequest): SubscriptionRequest {
  const start = starts.get(req.start);
  if (start === undefined) throw new ConnectError(`start ${req.start} is not a known start`, Code.InvalidArgument);
  return checkSubscription(
    {
      topic: req.topic,
      topicPrefix: req.topicPrefix,
      source: req.source,
      afterSeq: Number(req.afterSeq),
      start,
      since: req.since === undefined ? undefined : timestampToText(req.since),
      consumer: req.consumer,
      heartbeatMs: req.heartbeatMs,
      maxUnacked: req.maxUnacked,
      maxLag: Number(req.maxLag),
    },
    { afterSeq: "after_seq", topicPrefix: "topic_prefix" },
  );
}

/** The message a subscription's heartbeat is sent as. */
export function heartbeatResponse(item: FollowItem & { kind: "heartbeat" }): SubscribeResponse {
  return create(SubscribeResponseSchema, {
    item: { case: "heartbeat", value: { headSeq: BigInt(item.head), caughtUp: item.caughtUp, cursor: BigInt(item.cursor) } },
  });
}

/** The answer of a subscription its connection's age ended: the client resumes on a new connection. */
export function goingAwayError(cursor: number): ConnectError {
  return new ConnectError(`the connection has reached its maximum age: subscribe again on a new connection with after_seq ${cursor}`, Code.Unavailable);
}

/** Subscribe, Ack, Consumers and DeleteConsumer: a thin translation onto subscribe/. */
export function subscribeHandlers(subscriptions: Subscriptions) {
  const consumers = subscriptions.consumers;
  return {
    async *subscribe(req: SubscribeRequest, ctx: HandlerContext) {
      const request = subscriptionRequest(req);
      const caller = callerOf(ctx.values);
      caller.authorizeRead(request.filter, "Subscribe");
      // A subscription lasts as long as its connection: at its age it ends with `unavailable`, and the client resumes on a new one.
      const goingAway = connectionGoingAwayIn(ctx.values);
      let cursor = 0;
      for await (const item of subscriptions.open(request, caller, leaseIn(ctx.values), AbortSignal.any([ctx.signal, goingAway]))) {
        if (item.kind === "heartbeat") {
          cursor = item.cursor;
          yield heartbeatResponse(item);
          continue;
        }
        for (const row of item.rows) {
          yield eventResponse(row);
          cursor = row.seq;
        }
      }
      // Draining for shutdown aborts the call with `unavailable`: say so, rather than end as if the subscription were complete.
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (goingAway.aborted) throw goingAwayError(cursor);
    },

    async ack(req: AckRequest, ctx: HandlerContext) {
      checkConsumerName(req.consumer, "consumer");
      callerOf(ctx.values).authorizeConsumer(req.consumer, (await consumers.get(req.consumer)).filter, "Ack");
      const record = await consumers.ack(req.consumer, Number(req.seq));
      return create(AckResponseSchema, { ackedSeq: BigInt(record.ackedSeq) });
    },

    async consumers(req: ConsumersRequest, ctx: HandlerContext) {
      const limit = req.limit === 0 ? defaultConsumerPage : Math.min(req.limit, maxConsumerPage);
      const page = await consumers.list(req.after, limit);
      const caller = callerOf(ctx.values);
      // A topic-limited token sees the consumers it could subscribe as.
      const visible = page.consumers.filter((c) => caller.mayRead(c.filter));
      leaseIn(ctx.values).hold(visible.length * bytesPerListedConsumer);
      const infos = [];
      for (const record of visible) infos.push(await consumerInfo(record));
      return create(ConsumersResponseSchema, {
        consumers: infos,
        headSeq: BigInt(subscriptions.head),
        nextAfter: page.consumers.at(-1)?.name ?? req.after,
        hasMore: page.hasMore,
      });
    },

    async deleteConsumer(req: DeleteConsumerRequest, ctx: HandlerContext) {
      checkConsumerName(req.name, "name");
      callerOf(ctx.values).authorizeConsumer(req.name, (await consumers.get(req.name)).filter, "DeleteConsumer");
      const record = await consumers.delete(req.name);
      return create(DeleteConsumerResponseSchema, { ackedSeq: BigInt(record.ackedSeq) });
    },
  };

  async function consumerInfo(record: ConsumerRecord) {
    const lag = await subscriptions.lag(record.filter, record.ackedSeq, lagCountCap);
    return create(ConsumerInfoSchema, {
      name: record.name,
      topic: record.filter.topic ?? "",
      topicPrefix: record.filter.topicPrefix ?? "",
      source: record.filter.source ?? "",
      ...(record.filter.since !== undefined && { since: textToTimestamp(record.filter.since) }),
      ackedSeq: BigInt(record.ackedSeq),
      lag: BigInt(lag.count),
      lagCapped: lag.capped,
      subscribers: consumers.subscribers(record.name),
      createdAt: timestampFromMs(Date.parse(record.createdAt)),
      ...(record.ackedAt !== undefined && { ackedAt: timestampFromMs(Date.parse(record.ackedAt)) }),
    });
  }
}
