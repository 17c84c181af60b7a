import type { JsonObject } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type http from "node:http";
import type { Logger } from "pino";
import type { Event } from "../gen/aggregator/v1/aggregator_pb.js";
import { OverloadedError, ValidationError, codeName, httpStatusFor, toConnectError, type Violation } from "./errors.js";
import { ServingStatus, type HealthState } from "./health.js";
import { textToRfc3339, timestampToText } from "./event-text.js";
import { collectStats, pageSize, type ServiceDeps } from "./service.js";
import { AppendStatus } from "./store/types.js";
import type { EventQuery, StoredEventRow } from "./store/types.js";
import { checkBatchSize, maxPayloadDepth, parseJsonTimestamp, parseRfc3339 } from "./validate.js";

type Fallback = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type Request = Parameters<Fallback>[0];
type Response = Parameters<Fallback>[1];

/** Names REST clients read for each outcome. */
const statusNames: Record<number, string> = {
  [AppendStatus.accepted]: "ACCEPTED",
  [AppendStatus.duplicate]: "DUPLICATE",
  [AppendStatus.conflict]: "CONFLICT",
};

/**
 * A path shaped like an RPC (/package.Service/Method). One that reaches these
 * routes names a method no registered service has, so it is answered as
 * `unimplemented`, the way RPC clients expect, rather than as a missing page.
 */
const rpcPath = /^\/([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\/([A-Za-z_]\w*)$/;

/** gRPC and gRPC-Web content types: their clients read the outcome from grpc-status, not from the HTTP status. */
const grpcContentType = /^application\/grpc(-web(-text)?)?\s*([+;]|$)/i;

/**
 * Payload keys that protobuf's Struct decoding drops without a word (it keeps
 * fields in a plain object, where "__proto__" sets the prototype). Stored
 * without it, a re-send differing only there would be reported DUPLICATE, so
 * REST, which sees the body as parsed, refuses it instead.
 */
const droppedPayloadKeys = new Set(["__proto__"]);

/** A path into a payload quoted in a violation is cut here: payload keys can be long. */
const maxQuotedPath = 120;

/** Content types /publish reads as JSON: curl -d sends form-urlencoded unless told otherwise. */
const jsonishContentType = /^(application\/json|application\/[\w.+-]+\+json|text\/plain|application\/x-www-form-urlencoded)\s*(;|$)/i;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface RestDeps extends ServiceDeps {
  health: HealthState;
  maxBodyBytes: number;
  log: Logger;
}

/**
 * The seed-style REST routes of the older services, as a thin translation
 * onto the same publish path and store as the RPCs. Serves as the Connect
 * adapter's fallback, so it sees every path the RPCs do not claim.
 */
export function restHandler(deps: RestDeps) {
  return (req: Request, res: Response): void => {
    route(req, res, deps).catch((err: unknown) => sendError(res, err, deps.log));
  };
}

type RouteHandler = (req: Request, res: Response, deps: RestDeps, query: string) => Promise<unknown>;

/** Path, then method. Built once: a table per request was a measurable part of single-event publishing. */
const routes: Record<string, Record<string, RouteHandler>> = {
  "/publish": { POST: (req, _res, deps) => publish(req, deps) },
  "/events": { GET: (_req, _res, deps, query) => events(new URLSearchParams(query), deps) },
  "/stats": { GET: (_req, _res, deps) => stats(deps) },
  "/health": { GET: (_req, res, deps) => health(deps, res) },
};

async function route(req: Request, res: Response, deps: RestDeps): Promise<void> {
  const target = req.url ?? "/";
  const queryStart = target.indexOf("?");
  const pathname = queryStart < 0 ? target : target.slice(0, queryStart);
  const methods = routes[pathname];
  if (methods === undefined) {
    const rpc = rpcPath.exec(pathname);
    if (rpc !== null) {
      sendUnimplemented(req, res, `no method ${rpc[2]} in service ${rpc[1]} on this server`);
      return;
    }
    throw new HttpError(404, "not_found", `no route for ${req.method} ${pathname}`);
  }
  const method = req.method === "HEAD" ? "GET" : (req.method ?? "");
  const run = methods[method];
  if (run === undefined) {
    throw new HttpError(405, "method_not_allowed", `${req.method} is not allowed on ${pathname}; use ${Object.keys(methods).join(", ")}`, {
      allow: Object.keys(methods).join(", "),
    });
  }
  const body = await run(req, res, deps, queryStart < 0 ? "" : target.slice(queryStart + 1));
  if (!res.headersSent) sendJson(res, 200, body);
}

async function publish(req: Request, deps: RestDeps) {
  const contentType = req.headers["content-type"];
  if (contentType !== undefined && !jsonishContentType.test(contentType)) {
    throw new HttpError(415, "invalid_argument", `content-type ${contentType} is not supported; send application/json`);
  }
  const text = await readBody(req, deps.maxBodyBytes);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new HttpError(400, "invalid_argument", `body is not valid JSON: ${(err as Error).message}`);
  }
  const { events, violations } = decodeEvents(body, deps.publisher.maxBatch);
  const outcome = await deps.publisher.publish(events, violations);
  return {
    received: outcome.statuses.length,
    accepted: outcome.accepted,
    duplicates: outcome.duplicates,
    conflicts: outcome.conflicts,
    results: Array.from(outcome.statuses, (status, i) => ({ status: statusNames[status], seq: outcome.seqs[i] })),
  };
}

/** The three body shapes the older clients send: one event, an array, or {"events": [...]}. */
function decodeEvents(body: unknown, maxBatch: number): { events: (Event | undefined)[]; violations: Violation[] } {
  let items: unknown[];
  if (Array.isArray(body)) items = body;
  else if (isObject(body) && Array.isArray(body.events)) items = body.events;
  else if (isObject(body) && body.events !== undefined) {
    throw new ValidationError([{ index: -1, field: "events", description: "must be an array of events" }]);
  } else if (isObject(body)) items = [body];
  else throw new ValidationError([{ index: -1, field: "body", description: "must be an event object, an array of events, or {\"events\": [...]}" }]);

  checkBatchSize(items.length, maxBatch);
  const violations: Violation[] = [];
  const events = items.map((item, index) => {
    if (!isObject(item)) {
      violations.push({ index, field: "event", description: "must be a JSON object" });
      return undefined;
    }
    const typeErrors = checkJsonTypes(item, index);
    const timestamp = typeof item.timestamp === "string" ? parseJsonTimestamp(item.timestamp) : undefined;
    if (typeof item.timestamp === "string" && timestamp === undefined) {
      typeErrors.push({ index, field: "timestamp", description: `"${item.timestamp.slice(0, 64)}" is not an RFC 3339 timestamp (e.g. 2025-10-24T10:00:00Z)` });
    }
    if (typeErrors.length > 0) {
      violations.push(...typeErrors);
      return undefined;
    }
    const shapeError = isObject(item.payload) ? checkPayloadShape(item.payload, index) : undefined;
    if (shapeError !== undefined) {
      violations.push(shapeError);
      return undefined;
    }
    return eventFromJson(item, timestamp);
  });
  return { events, violations };
}

/**
 * The event a JSON object describes, built directly: its types are checked
 * and its payload walked already, so protobuf-es's reflective fromJson would
 * only repeat that work (it was the largest cost of a single-event request).
 * Accepts protobuf JSON's camelCase spelling too, as fromJson does.
 */
function eventFromJson(item: Record<string, unknown>, timestamp: Timestamp | undefined): Event {
  const text = (value: unknown) => (typeof value === "string" ? value : "");
  return {
    $typeName: "aggregator.v1.Event",
    topic: text(item.topic),
    eventId: text(item.event_id ?? item.eventId),
    timestamp,
    source: text(item.source),
    payload: isObject(item.payload) ? (item.payload as JsonObject) : undefined,
  };
}

/** JSON types of the known fields, checked first so the error names the field plainly. */
const expectedTypes: [field: string, alias: string, type: "string" | "object"][] = [
  ["topic", "topic", "string"],
  ["event_id", "eventId", "string"],
  ["timestamp", "timestamp", "string"],
  ["source", "source", "string"],
  ["payload", "payload", "object"],
];

function checkJsonTypes(item: Record<string, unknown>, index: number): Violation[] {
  const violations: Violation[] = [];
  for (const [field, alias, type] of expectedTypes) {
    const value = item[field] ?? item[alias];
    if (value === undefined || value === null) continue; // reported as missing by validation
    const ok = type === "object" ? isObject(value) : typeof value === "string";
    if (!ok) violations.push({ index, field, description: `must be ${type === "object" ? "a JSON object" : "a string"}, got ${jsonType(value)}` });
  }
  return violations;
}

/** A lone UTF-16 surrogate: JSON.parse lets it through, protobuf's UTF-8 strings cannot carry it. */
const unpairedSurrogate = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * What protobuf decoding would do wrong with a payload, found on the parsed
 * JSON first: nesting deeper than validation allows (protobuf-es would refuse
 * it with a message naming no field) and keys it would drop silently.
 */
function checkPayloadShape(payload: Record<string, unknown>, index: number): Violation | undefined {
  const problem = shapeProblem(payload, 1);
  if (problem === undefined) return undefined;
  const path = `payload${problem.reversedPath.reverse().join("")}`;
  return { index, field: "payload", description: problem.describe(path.length > maxQuotedPath ? `${path.slice(0, maxQuotedPath)}…` : path) };
}

/** A payload problem: how to say it given where it is, and the path to it, innermost step first (filled in on the way out). */
interface ShapeProblem {
  describe(at: string): string;
  reversedPath: string[];
}

/**
 * The first problem in document order. Recursion stops at the depth limit, so
 * a 10,000-level payload costs no more stack than a 33-level one, and nothing
 * is allocated unless there is a problem: this runs on every REST event.
 */
function shapeProblem(value: unknown, depth: number): ShapeProblem | undefined {
  if (typeof value === "string") {
    return unpairedSurrogate.test(value) ? { describe: (at) => `has a string with an unpaired surrogate (not valid UTF-8) at ${at}`, reversedPath: [] } : undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  if (depth > maxPayloadDepth) return { describe: () => `is nested deeper than ${maxPayloadDepth} levels`, reversedPath: [] };
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const problem = shapeProblem(value[i], depth + 1);
      if (problem !== undefined) {
        problem.reversedPath.push(`[${i}]`);
        return problem;
      }
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (unpairedSurrogate.test(key)) return { describe: (at) => `has a key with an unpaired surrogate (not valid UTF-8) at ${at}`, reversedPath: [] };
    if (droppedPayloadKeys.has(key)) {
      return { describe: (at) => `has the key "${key}" at ${at}, which protobuf decoding would drop silently; rename it`, reversedPath: [] };
    }
    const problem = shapeProblem((value as Record<string, unknown>)[key], depth + 1);
    if (problem !== undefined) {
      problem.reversedPath.push(`.${key}`);
      return problem;
    }
  }
  return undefined;
}

async function events(params: URLSearchParams, deps: RestDeps) {
  const query: EventQuery = {
    afterSeq: integerParam(params, "after", 0),
    limit: pageSize(integerParam(params, "limit", 0)),
  };
  const topic = params.get("topic");
  const source = params.get("source");
  if (topic) query.topic = topic;
  if (source) query.source = source;
  const since = timeParam(params, "since");
  const until = timeParam(params, "until");
  if (since !== undefined) query.since = since;
  if (until !== undefined) query.until = until;
  const page = await deps.store.page(query);
  return {
    events: page.events.map(restEvent),
    count: page.events.length,
    next_cursor: page.events.at(-1)?.seq ?? query.afterSeq,
    has_more: page.hasMore,
  };
}

function integerParam(params: URLSearchParams, name: string, fallback: number): number {
  const text = params.get(name);
  if (text === null || text === "") return fallback;
  if (!/^\d{1,15}$/.test(text)) throw new HttpError(400, "invalid_argument", `query parameter ${name} must be a non-negative integer, got "${text.slice(0, 64)}"`);
  return Number(text);
}

function timeParam(params: URLSearchParams, name: string): string | undefined {
  const text = params.get(name);
  if (text === null || text === "") return undefined;
  const ts = parseRfc3339(text);
  if (ts === undefined) throw new HttpError(400, "invalid_argument", `query parameter ${name} must be an RFC 3339 timestamp, got "${text.slice(0, 64)}"`);
  return timestampToText(ts);
}

function restEvent(row: StoredEventRow) {
  return {
    seq: row.seq,
    topic: row.topic,
    event_id: row.eventId,
    timestamp: textToRfc3339(row.ts),
    source: row.source,
    payload: JSON.parse(row.payload) as unknown,
    received_at: row.receivedAt,
  };
}

async function stats(deps: RestDeps) {
  const s = await collectStats(deps);
  return {
    received: s.received,
    unique_processed: s.uniqueProcessed,
    duplicate_dropped: s.duplicateDropped,
    conflicts: s.conflicts,
    // The older clients read topics as a list of names; counts are beside it.
    topics: s.topics.map((t) => t.name),
    topic_counts: Object.fromEntries(s.topics.map((t) => [t.name, t.count])),
    uptime_seconds: s.uptimeSeconds,
    started_at: s.startedAt.toISOString(),
    queue_events: s.queue.events,
    queue_bytes: s.queue.bytes,
    rejected_invalid: s.rejectedInvalid,
    rejected_overload: s.rejectedOverload,
  };
}

async function health(deps: RestDeps, res: Response) {
  const serving = deps.health.status === ServingStatus.SERVING;
  const body = {
    status: serving ? "healthy" : "shutting_down",
    timestamp: new Date().toISOString(),
    uptime_seconds: (Date.now() - deps.startedAt.getTime()) / 1000,
    queue_events: deps.queue.depth.events,
  };
  if (!serving) sendJson(res, 503, body);
  return body;
}

function readBody(req: Request, maxBytes: number): Promise<string> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) {
    return Promise.reject(new HttpError(413, "resource_exhausted", `body of ${declared} bytes exceeds the ${maxBytes}-byte limit`));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        reject(new HttpError(413, "resource_exhausted", `body exceeds the ${maxBytes}-byte limit`));
        req.removeAllListeners("data");
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res: Response, status: number, body: unknown, headers: Record<string, string> = {}): void {
  // A trailing newline keeps consecutive curl answers on lines of their own.
  const text = `${JSON.stringify(body)}\n`;
  (res as http.ServerResponse).writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

/**
 * `unimplemented` in the form the caller's protocol reads: a gRPC
 * trailers-only response (HTTP 200, status in the headers) for gRPC and
 * gRPC-Web, else Connect's JSON error with HTTP 404.
 */
function sendUnimplemented(req: Request, res: Response, message: string): void {
  const contentType = req.headers["content-type"] ?? "";
  if (!grpcContentType.test(contentType)) {
    sendJson(res, httpStatusFor(Code.Unimplemented), { code: codeName(Code.Unimplemented), message });
    return;
  }
  (res as http.ServerResponse).writeHead(200, {
    "content-type": contentType,
    "grpc-status": String(Code.Unimplemented),
    "grpc-message": encodeURIComponent(message),
  });
  res.end();
}

function sendError(res: Response, err: unknown, log: Logger): void {
  if (res.headersSent) return;
  if (err instanceof HttpError) {
    sendJson(res, err.status, { code: err.code, message: err.message }, err.headers);
    return;
  }
  const connectError = toConnectError(err);
  if (connectError.code === Code.Internal) log.error({ err }, "REST request failed");
  const body: Record<string, unknown> = { code: codeName(connectError.code), message: connectError.rawMessage };
  if (err instanceof ValidationError) body.violations = err.violations;
  const headers: Record<string, string> = err instanceof OverloadedError ? { "retry-after": String(err.retryAfterSeconds) } : {};
  sendJson(res, httpStatusFor(connectError.code), body, headers);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function jsonType(value: unknown): string {
  return Array.isArray(value) ? "an array" : value === null ? "null" : `a ${typeof value}`;
}
