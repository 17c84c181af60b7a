import { Code, ConnectError, createContextKey, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import type { Logger } from "pino";
import { AggregatorService, type EventsRequest } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { decodeWireEvents } from "../ingest/wire-event.js";
import type { AccessList, Grant } from "./access-list.js";
import { checkPublishTopics, checkReadAll, checkReadTopic, logRefusal, requireRole } from "./policy.js";

/** The caller's grant, set on every authorized RPC, so handlers and the error log can name the token. */
export const grantKey = createContextKey<Grant | undefined>(undefined, { description: "tally auth grant" });

type AnyRequest = UnaryRequest | StreamRequest;

/** A Publish or PublishStream message: its events decoded, or raw bytes on the binary fast path (binary-publish.ts). */
interface PublishMessage {
  events: readonly unknown[];
}

/**
 * The events of a publish message with their topics, whichever way Connect
 * decoded them: Event messages, or each event's raw bytes, decoded here with
 * the decoder the handler will use so both read the same topic (a second
 * decode, paid by topic-limited tokens only). Events that do not decode are
 * left undefined: validation refuses their batch whole. Any other shape is
 * refused, so a new decoding path cannot slip past the check.
 */
export function publishedEvents(events: readonly unknown[]): readonly ({ topic: string } | undefined)[] {
  if (events.every((e) => e instanceof Uint8Array)) return decodeWireEvents(events as Uint8Array[]).events;
  if (events.every((e) => typeof (e as { topic?: unknown }).topic === "string")) return events as { topic: string }[];
  throw new ConnectError("the topics of this request cannot be checked", Code.PermissionDenied);
}

/**
 * Bearer-token authentication and role/topic authorization for every RPC but
 * grpc.health.v1 (probes carry no credentials). The token travels in the
 * `authorization` header, which is also where gRPC metadata puts it.
 * Unary requests are checked before the handler runs, so a refused Publish
 * stores nothing; PublishStream is checked message by message as it streams.
 */
export function authInterceptor(access: AccessList, log: Logger): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName === Health.typeName) return next(req);
    let grant: Grant | undefined;
    let authorized: AnyRequest;
    try {
      grant = access.authenticate(req.header.get("authorization"));
      req.contextValues.set(grantKey, grant);
      authorized = authorize(grant, req, log);
    } catch (err) {
      throw logRefusal(log, err, grant, req.method.name);
    }
    return next(authorized);
  };
}

/** Publish's access rule, also applied by the lean gRPC path (grpc-unary-publish.ts): the publish role, and every topic within the grant. */
export function authorizePublish(grant: Grant, events: readonly unknown[]): void {
  requireRole(grant, "publish", AggregatorService.method.publish.name);
  if (grant.topics !== null) checkPublishTopics(grant, publishedEvents(events));
}

/** The access rule of each method; a method without one is refused, so a new RPC cannot ship unguarded. */
function authorize(grant: Grant, req: AnyRequest, log: Logger): AnyRequest {
  const method = req.service.typeName === AggregatorService.typeName ? req.method.name : "";
  switch (method) {
    case AggregatorService.method.publish.name:
      authorizePublish(grant, (req.message as unknown as PublishMessage).events);
      return req;
    case AggregatorService.method.publishStream.name:
      requireRole(grant, "publish", method);
      if (!req.stream || grant.topics === null) return req;
      // The checked stream yields the very messages it reads, so their type is unchanged.
      return { ...req, message: checkedMessages(req.message as unknown as AsyncIterable<PublishMessage>, grant, log) as unknown as StreamRequest["message"] };
    case AggregatorService.method.events.name:
      checkReadTopic(grant, (req.message as EventsRequest).topic, method);
      return req;
    case AggregatorService.method.stats.name:
      checkReadAll(grant, method);
      return req;
    default:
      throw new ConnectError(`${req.service.typeName}/${req.method.name} has no access rule`, Code.PermissionDenied);
  }
}

/**
 * Passes a stream's messages through, refusing the first one with a topic
 * outside the grant. Messages before it have been handed on and stay
 * committed, as with an invalid message (README "What an ack guarantees").
 */
async function* checkedMessages(messages: AsyncIterable<PublishMessage>, grant: Grant, log: Logger): AsyncGenerator<PublishMessage> {
  let index = 0;
  for await (const message of messages) {
    try {
      checkPublishTopics(grant, publishedEvents(message.events), `stream message ${index}`, `messages[${index}].`);
    } catch (err) {
      throw logRefusal(log, err, grant, AggregatorService.method.publishStream.name);
    }
    index++;
    yield message;
  }
}
