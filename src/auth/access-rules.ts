import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";

/**
 * What an operation asks of its caller:
 * - `open`: nothing; health probes carry no credentials.
 * - `publish`: the publish role; each event's topic is checked against a
 *   topic-limited token once the events are decoded (ingest/pipeline.ts), so
 *   they are decoded once.
 * - `read-topic`: the read role; a topic-limited token must name one of its
 *   topics in the request's topic filter, since an unfiltered read would show
 *   other topics.
 * - `read-all`: the read role without a topic limit: the answer covers every topic.
 * - `read-filter`: the read role; the handler checks its filter (a
 *   subscription's, or a durable consumer's as stored) against a
 *   topic-limited token (Caller.authorizeRead), since the filter may be
 *   known only once the consumer is looked up.
 */
export type AccessRule = "open" | "publish" | "read-topic" | "read-all" | "read-filter";

function rpc(service: { typeName: string }, method: { name: string }): string {
  return `${service.typeName}/${method.name}`;
}

/**
 * The access rule of every operation, by name: RPCs as "package.Service/Method",
 * plain HTTP routes as "METHOD /path". The gate refuses any operation not
 * listed here, with authentication on or off, so a new RPC or route cannot
 * ship unguarded: add its rule here when you add it.
 */
export const accessRules: ReadonlyMap<string, AccessRule> = new Map<string, AccessRule>([
  [rpc(AggregatorService, AggregatorService.method.publish), "publish"],
  [rpc(AggregatorService, AggregatorService.method.publishStream), "publish"],
  [rpc(AggregatorService, AggregatorService.method.events), "read-topic"],
  [rpc(AggregatorService, AggregatorService.method.stats), "read-all"],
  [rpc(AggregatorService, AggregatorService.method.topics), "read-all"],
  [rpc(AggregatorService, AggregatorService.method.subscribe), "read-filter"],
  [rpc(AggregatorService, AggregatorService.method.ack), "read-filter"],
  [rpc(AggregatorService, AggregatorService.method.consumers), "read-filter"],
  [rpc(AggregatorService, AggregatorService.method.deleteConsumer), "read-filter"],
  [rpc(Health, Health.method.check), "open"],
  [rpc(Health, Health.method.list), "open"],
  [rpc(Health, Health.method.watch), "open"],
  ["POST /publish", "publish"],
  ["GET /events", "read-topic"],
  ["GET /stats", "read-all"],
  ["GET /topics", "read-all"],
  ["GET /events/stream", "read-filter"],
  ["GET /health", "open"],
]);
