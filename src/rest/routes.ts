import { Code, ConnectError } from "@connectrpc/connect";
import { quoted } from "../answers/quote.js";
import { json, type Rendered } from "../answers/render.js";
import { ServingStatus, type HealthState } from "../read/health-state.js";
import type { DecodedBatch } from "../codec/decoded-batch.js";
import { decodeJsonBytes } from "../codec/json-events.js";
import { readBody } from "../http/body.js";
import { HttpRefusal, type HttpRequest, type HttpRoute, type RouteContext } from "../http/route-table.js";
import { holdJsonWeight } from "../limits/json-share.js";
import { leaseOf } from "../limits/request-lease.js";
import { JsonWeigher } from "../codec/json-weight.js";
import type { PublishPipeline } from "../ingest/pipeline.js";
import type { Reads } from "../read/reads.js";
import { AppendStatus } from "../store/types.js";
import type { Subscriptions } from "../subscribe/subscriptions.js";
import { eventStream } from "./event-stream.js";
import { restEvent } from "./rest-event.js";
import { eventQuery, integerParam } from "./query.js";

/** What the REST routes translate to; built once by the server. */
export interface RestCore {
  pipeline: PublishPipeline;
  reads: Reads;
  health: HealthState;
  subscriptions: Subscriptions;
  /** Aborted when the server drains: live streams end so their clients reconnect elsewhere. */
  shutdownSignal: AbortSignal;
  /** Largest POST /publish body. */
  maxBodyBytes: number;
}

/** Names REST clients read for each outcome. */
const statusNames: Record<number, string> = {
  [AppendStatus.accepted]: "ACCEPTED",
  [AppendStatus.duplicate]: "DUPLICATE",
  [AppendStatus.conflict]: "CONFLICT",
};

/**
 * Content types /publish reads as JSON: curl -d sends form-urlencoded unless
 * told otherwise. From browsers only JSON gets this far (http/browser-guard.ts).
 */
const jsonishContentType = /^(application\/json|application\/[\w.+-]+\+json|text\/plain|application\/x-www-form-urlencoded)\s*(;|$)/i;

/**
 * The seed-style REST routes of the older services (README, "REST routes"),
 * as a thin translation onto the same pipeline and read side as the RPCs.
 * They keep the JSON shapes and statuses those clients read.
 */
export function restRoutes(core: RestCore): HttpRoute[] {
  return [
    { method: "POST", path: "/publish", handle: (req, context) => publish(core, req, context) },
    { method: "GET", path: "/events", handle: async (req, { query }) => json(200, await events(core, req, query)) },
    { method: "GET", path: "/events/stream", handle: (req, context) => eventStream(core.subscriptions, core.shutdownSignal, req, context) },
    { method: "GET", path: "/stats", handle: async (req, { query }) => json(200, await stats(core, req, query)) },
    { method: "GET", path: "/topics", handle: async (req, { query }) => json(200, await topics(core, req, query)) },
    { method: "GET", path: "/health", handle: async () => health(core) },
  ];
}

async function publish(core: RestCore, req: Parameters<HttpRoute["handle"]>[0], { caller }: RouteContext): Promise<Rendered> {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && !jsonishContentType.test(contentType)) {
    throw new HttpRefusal(new ConnectError(`content-type ${quoted(contentType)} is not supported; send application/json`, Code.InvalidArgument), { status: 415 });
  }
  const bytes = await readBody(req, core.maxBodyBytes);
  const weigher = new JsonWeigher();
  weigher.push(bytes);
  holdJsonWeight(leaseOf(req), weigher, bytes.length);
  let batch: DecodedBatch;
  try {
    batch = decodeJsonBytes(bytes, core.pipeline.maxBatch);
  } catch (err) {
    if (err instanceof SyntaxError) throw new ConnectError(`body is not valid JSON: ${err.message}`, Code.InvalidArgument);
    throw err;
  }
  const outcome = await core.pipeline.publish(batch, caller);
  return json(200, {
    received: outcome.statuses.length,
    accepted: outcome.accepted,
    duplicates: outcome.duplicates,
    conflicts: outcome.conflicts,
    results: Array.from(outcome.statuses, (status, i) => ({ status: statusNames[status], seq: outcome.seqs[i] })),
  });
}

async function events(core: RestCore, req: HttpRequest, params: URLSearchParams) {
  const page = await core.reads.page(eventQuery(params), leaseOf(req));
  return {
    events: page.events.map(restEvent),
    count: page.events.length,
    next_cursor: page.nextCursor,
    has_more: page.hasMore,
  };
}

async function stats(core: RestCore, req: HttpRequest, params: URLSearchParams) {
  const s = await core.reads.stats(integerParam(params, "top_topics"), leaseOf(req));
  return {
    received: s.received,
    unique_processed: s.uniqueProcessed,
    duplicate_dropped: s.duplicateDropped,
    conflicts: s.conflicts,
    // The older clients read topics as a list of names; counts are beside it.
    // Both name the largest topics (?top_topics=, 100 by default); GET /topics lists them all.
    topics: s.topTopics.map((t) => t.name),
    topic_counts: Object.fromEntries(s.topTopics.map((t) => [t.name, t.count])),
    topic_count: s.topicCount,
    uptime_seconds: s.uptimeSeconds,
    started_at: s.startedAt.toISOString(),
    queue_events: s.queue.events,
    queue_bytes: s.queue.bytes,
    rejected_invalid: s.rejectedInvalid,
    rejected_overload: s.rejectedOverload,
    memory_held_bytes: s.memoryHeldBytes,
  };
}

async function topics(core: RestCore, req: HttpRequest, params: URLSearchParams) {
  const page = await core.reads.topics(params.get("after") ?? "", integerParam(params, "limit"), leaseOf(req));
  return {
    topics: page.topics.map((t) => ({ name: t.name, count: t.count })),
    next_after: page.topics.at(-1)?.name ?? params.get("after") ?? "",
    has_more: page.hasMore,
  };
}

function health(core: RestCore): Rendered {
  const serving = core.health.status === ServingStatus.SERVING;
  return json(serving ? 200 : 503, {
    status: serving ? "healthy" : "shutting_down",
    timestamp: new Date().toISOString(),
    uptime_seconds: core.reads.uptimeSeconds(),
    queue_events: core.reads.queuedEvents,
  });
}
