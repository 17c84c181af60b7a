import { Code, ConnectError } from "@connectrpc/connect";
import { isValidText } from "../codec/text-rules.js";
import { checkConsumerName, type StartPoint } from "./consumers.js";
import type { SubscriptionFilter } from "./filter.js";

/** A subscription as every front door asks for it (Subscribe, GET /events/stream), before it is checked. */
export interface SubscriptionAsked {
  topic: string;
  topicPrefix: string;
  source: string;
  /** 0 when not given. */
  afterSeq: number;
  start: "default" | "beginning" | "new";
  /** Store-form timestamp text, or undefined. */
  since: string | undefined;
  consumer: string;
  /** 0 when not given. */
  heartbeatMs: number;
  maxUnacked: number;
  maxLag: number;
}

/** A checked subscription request, with every default filled in. */
export interface SubscriptionRequest {
  filter: SubscriptionFilter;
  start: StartPoint;
  consumer: string | undefined;
  heartbeatMs: number;
  maxUnacked: number;
  maxLag: number;
}

/** Quiet time before a heartbeat when the client names none: well under the idle limits of common proxies and load balancers (60 s). */
export const defaultHeartbeatMs = 15_000;
/** Shortest heartbeat interval: more often is load for nothing. */
const minHeartbeatMs = 100;
/** Longest: an hour, so a dead peer is noticed at least that often. */
const maxHeartbeatMs = 3_600_000;
/** Delivered-but-unacknowledged events at which a consumer pauses when it names no bound (JetStream's max_ack_pending default). */
const defaultMaxUnacked = 1_000;
/** Most a consumer may leave unacknowledged: its window holds one number per event. */
const maxMaxUnacked = 100_000;
/** Longest topic, source or prefix a filter may name: the identifiers' own limit. */
const maxFilterLength = 255;

/**
 * Checks a subscription request and fills in its defaults: refused whole
 * with invalid_argument naming the field, like any other bad input.
 */
export function checkSubscription(asked: SubscriptionAsked, fields: { afterSeq: string; topicPrefix: string }): SubscriptionRequest {
  const filter: SubscriptionFilter = {};
  for (const [name, value] of [
    ["topic", asked.topic],
    [fields.topicPrefix, asked.topicPrefix],
    ["source", asked.source],
  ] as const) {
    if (value.length > maxFilterLength) throw invalid(`${name} is ${value.length} characters long; at most ${maxFilterLength}`);
    if (!isValidText(value)) throw invalid(`${name} is not valid UTF-8 text`);
  }
  if (asked.topic !== "" && asked.topicPrefix !== "") throw invalid(`name topic or ${fields.topicPrefix}, not both`);
  if (asked.topic !== "") filter.topic = asked.topic;
  if (asked.topicPrefix !== "") filter.topicPrefix = asked.topicPrefix;
  if (asked.source !== "") filter.source = asked.source;
  if (asked.since !== undefined) filter.since = asked.since;

  if (asked.afterSeq > 0 && asked.start !== "default") throw invalid(`name ${fields.afterSeq} or start, not both`);
  const start: StartPoint = asked.afterSeq > 0 ? { kind: "after", seq: asked.afterSeq } : { kind: asked.start };

  if (asked.consumer !== "") checkConsumerName(asked.consumer, "consumer");
  else if (asked.maxUnacked !== 0) throw invalid("max_unacked applies to a durable consumer: name one in consumer");
  if (asked.maxUnacked > maxMaxUnacked) throw invalid(`max_unacked is ${asked.maxUnacked}; at most ${maxMaxUnacked}`);
  if (asked.heartbeatMs !== 0 && (asked.heartbeatMs < minHeartbeatMs || asked.heartbeatMs > maxHeartbeatMs)) {
    throw invalid(`heartbeat_ms is ${asked.heartbeatMs}; between ${minHeartbeatMs} and ${maxHeartbeatMs}, or 0 for ${defaultHeartbeatMs}`);
  }
  return {
    filter,
    start,
    consumer: asked.consumer === "" ? undefined : asked.consumer,
    heartbeatMs: asked.heartbeatMs === 0 ? defaultHeartbeatMs : asked.heartbeatMs,
    maxUnacked: asked.maxUnacked === 0 ? defaultMaxUnacked : asked.maxUnacked,
    maxLag: asked.maxLag,
  };
}

function invalid(message: string): ConnectError {
  return new ConnectError(message, Code.InvalidArgument);
}
