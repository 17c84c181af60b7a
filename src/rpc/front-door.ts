import { createContextValues, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type http2 from "node:http2";
import type { Logger } from "pino";
import { answerForFailure } from "../answers/failures.js";
import { notFound, renderError, rpcSurface, send } from "../answers/render.js";
import type { HealthState } from "../read/health-state.js";
import type { Gate } from "../auth/gate.js";
import { callerOf, gateInterceptor } from "../auth/interceptor.js";
import type { HttpRequest, HttpResponse } from "../http/route-table.js";
import { leaseKey, leaseOf } from "../limits/request-lease.js";
import { aggregatorRoutes, type RpcCore } from "./aggregator-service.js";
import { connectionGoingAway } from "../http/connection-age.js";
import { withConnectionGoingAway } from "./going-away.js";
import { healthRoutes } from "./health-service.js";
import { leanGrpcPublish } from "./lean-grpc-publish.js";
import { leanGrpcSubscribe } from "./lean-grpc-subscribe.js";
import { isBinaryPublish, rawPublishRoutes } from "./raw-events-service.js";
import { withRpcEdge } from "./rpc-edge.js";

/**
 * Longest deadline a client may ask for (grpc-timeout, connect-timeout-ms);
 * longer ones are refused with invalid_argument. A day allows any real
 * stream, and stays far below the 2^31-1 ms where Node's timers overflow and
 * would end the call at once.
 */
const maxClientTimeoutMs = 24 * 3_600_000;

export interface RpcOptions {
  gate: Gate;
  log: Logger;
  /** Largest request message (connect-es's readMaxBytes). */
  readMaxBytes: number;
  /** Aborted when the server starts draining: every call in flight ends with `unavailable`. */
  shutdownSignal: AbortSignal;
}

/** Turns whatever a handler throws into the right Connect error at the edge (answers/failures.ts), logging what is ours. */
function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw answerForFailure(log, err, { operation: req.method.name, token: callerOf(req.contextValues).name, aborted: req.signal.aborted });
    }
  };
}

/**
 * The RPC paths: gRPC, gRPC-Web and Connect (JSON and binary) by connect-node,
 * with faster ways to the same handlers. Binary Publish and PublishStream
 * decode each event's raw bytes (raw-events-service.ts); unary gRPC Publish
 * and gRPC Subscribe skip connect-es altogether (lean-grpc-publish.ts,
 * lean-grpc-subscribe.ts). All of them pass the
 * same gate and end in the same pipeline. A path that names no RPC is
 * answered `unimplemented` (RPC-shaped) or `not_found`.
 */
export function rpcFrontDoor(core: RpcCore & { health: HealthState }, options: RpcOptions): (req: HttpRequest, res: HttpResponse) => void {
  const adapterOptions = {
    readMaxBytes: options.readMaxBytes,
    maxTimeoutMs: maxClientTimeoutMs,
    // snake_case field names as the older REST clients read them, and zero counts spelled out.
    jsonOptions: { useProtoFieldName: true, alwaysEmitImplicit: true },
    shutdownSignal: options.shutdownSignal,
    // The error interceptor is outermost, so the gate's refusals reach clients as they are.
    interceptors: [errorInterceptor(options.log), gateInterceptor(options.gate)],
    // Every call reaches the memory lease its request opened (server.ts), for its body and its answer.
    contextValues: (req: HttpRequest) => createContextValues().set(leaseKey, leaseOf(req)),
  };
  const standard = connectNodeAdapter({
    ...adapterOptions,
    // Health Watch ends when its connection reaches its age (http/connection-age.ts).
    contextValues: (req: HttpRequest) => withConnectionGoingAway(adapterOptions.contextValues(req), connectionGoingAway(req)),
    routes: withRpcEdge((router) => {
      aggregatorRoutes(core)(router);
      healthRoutes(core.health)(router);
    }, options.readMaxBytes),
    fallback: (req, res) => {
      const contentType = req.headers["content-type"];
      const { err, rpc } = notFound(req.method ?? "", (req.url ?? "/").split("?", 1)[0]!);
      send(res, rpc ? renderError(err, rpcSurface(contentType), { status: 404, contentType }) : renderError(err, "rest"));
    },
  });
  const raw = connectNodeAdapter({ ...adapterOptions, routes: withRpcEdge(rawPublishRoutes(core.pipeline), options.readMaxBytes) });
  const lean = leanGrpcPublish({ pipeline: core.pipeline, gate: options.gate, log: options.log, readMaxBytes: options.readMaxBytes, maxTimeoutMs: maxClientTimeoutMs });
  const leanSubscribe = leanGrpcSubscribe({
    subscriptions: core.subscriptions,
    gate: options.gate,
    log: options.log,
    maxTimeoutMs: maxClientTimeoutMs,
    shutdownSignal: options.shutdownSignal,
  });
  return (req, res) => {
    if (lean.accepts(req)) lean.handle(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse);
    else if (leanSubscribe.accepts(req)) leanSubscribe.handle(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse);
    else (isBinaryPublish(req.url, req.headers) ? raw : standard)(req, res);
  };
}
