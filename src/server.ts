import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { setMaxListeners } from "node:events";
import type http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { authInterceptor, grantKey } from "./auth/interceptor.js";
import { guardRest } from "./auth/rest-guard.js";
import { binaryPublishRoutes, isBinaryPublish } from "./binary-publish.js";
import type { Config } from "./config.js";
import { answerForFailure } from "./call-failure.js";
import { leanGrpcPublish } from "./grpc-unary-publish.js";
import { HealthState, ServingStatus, healthRoutes } from "./health.js";
import { Publisher } from "./ingest/publisher.js";
import { IngestQueue } from "./ingest/queue.js";
import { createDualProtocolServer, type RequestHandler } from "./net/dual-protocol-server.js";
import { restHandler } from "./rest.js";
import { withRpcEdge } from "./rpc-edge.js";
import { aggregatorRoutes } from "./service.js";
import { openSqliteStore } from "./store/sqlite-store.js";

/** A started server: where it listens and how to stop it. */
export interface RunningServer {
  port: number;
  host: string;
  /** Graceful stop: refuse new work, commit and answer what was accepted, close the database. */
  close(): Promise<void>;
}

/** How long open connections get to finish their last responses before they are cut. */
const connectionGraceMs = 2_000;

/**
 * Longest deadline a client may ask for (grpc-timeout, connect-timeout-ms);
 * longer ones are refused with invalid_argument. A day allows any real
 * stream, and stays far below the 2^31-1 ms where Node's timers overflow and
 * would end the call at once.
 */
const maxClientTimeoutMs = 24 * 3_600_000;

/**
 * Log fields that could carry credentials, redacted wherever they appear:
 * nothing logs request headers today, and this keeps it so.
 */
const redactedLogPaths = ["authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "header.authorization", "*.header.authorization"];

/** Turns whatever a handler throws into the right Connect error at the edge (call-failure.ts). */
function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      throw answerForFailure(log, err, { method: req.method.name, token: req.contextValues.get(grantKey)?.name, aborted: req.signal.aborted });
    }
  };
}

/** Opens the store and listens; resolves once the port is bound. */
export async function startServer(config: Config, baseLog: Logger): Promise<RunningServer> {
  const log = baseLog.child({}, { redact: { paths: redactedLogPaths, censor: "[redacted]" } });
  const store = await openSqliteStore(config.dbPath, config.durability, log);
  const queue = new IngestQueue(store, { maxEvents: config.queueEvents, maxBytes: config.queueBytes });
  const publisher = new Publisher(queue, { maxBatch: config.maxBatch, maxPayloadBytes: config.maxPayloadBytes });
  const health = new HealthState();
  const deps = { publisher, queue, store, startedAt: new Date() };
  const draining = new AbortController();
  // connect-es links every call's signal to this one: one listener per call in flight.
  setMaxListeners(0, draining.signal);

  // With authentication on, RPCs pass the auth interceptor (inside the error
  // interceptor, so its refusals reach clients as they are; every Connect
  // adapter must get these interceptors), and the REST routes are wrapped by the guard.
  const access = config.accessList;
  const interceptors = access === null ? [errorInterceptor(log)] : [errorInterceptor(log), authInterceptor(access, log)];
  const restRoutes = (publishVia: Publisher) => restHandler({ ...deps, publisher: publishVia, health, maxBodyBytes: config.maxMessageBytes, log });
  const adapterOptions = {
    readMaxBytes: config.maxMessageBytes,
    maxTimeoutMs: maxClientTimeoutMs,
    // snake_case field names as the older REST clients read them, and zero counts spelled out.
    jsonOptions: { useProtoFieldName: true, alwaysEmitImplicit: true },
    shutdownSignal: draining.signal,
    interceptors,
  };
  const standard = connectNodeAdapter({
    ...adapterOptions,
    // rpc-edge.ts: undecodable protobuf is invalid_argument, and bare 415s and 405s get a body.
    routes: withRpcEdge((router) => {
      aggregatorRoutes(deps)(router);
      healthRoutes(health)(router);
    }),
    fallback: access === null ? restRoutes(publisher) : guardRest(access, log, restRoutes, publisher),
  });
  // Binary Publish and PublishStream take the fast path (binary-publish.ts), with the same options and interceptors.
  const binaryPublish = connectNodeAdapter({ ...adapterOptions, routes: withRpcEdge(binaryPublishRoutes(deps)) });
  // Unary gRPC Publish takes a leaner path still (grpc-unary-publish.ts), with the same handler and access rules.
  const lean = leanGrpcPublish({ deps, access, log, readMaxBytes: config.maxMessageBytes, maxTimeoutMs: maxClientTimeoutMs });
  const handler: RequestHandler = (req, res) => {
    if (lean.accepts(req)) lean.handle(req as http2.Http2ServerRequest, res as http2.Http2ServerResponse);
    else (isBinaryPublish(req.url, req.headers) ? binaryPublish : standard)(req, res);
  };
  const server = createDualProtocolServer(handler, {
    maxConnections: config.maxConnections,
    idleTimeoutMs: config.idleTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    tls: config.tls,
  });

  await new Promise<void>((resolve, reject) => {
    server.tcp.once("error", reject);
    server.tcp.listen(config.port, config.host, () => {
      server.tcp.off("error", reject);
      resolve();
    });
  });
  const address = server.tcp.address() as AddressInfo;
  log.info(
    {
      port: address.port,
      host: address.address,
      db: config.dbPath,
      durability: config.durability,
      tls: config.tls !== null,
      auth: access === null ? "off" : `${access.size} token${access.size === 1 ? "" : "s"} from ${config.authTokensFile}`,
    },
    "listening",
  );

  let closing: Promise<void> | undefined;
  const close = async () => {
    health.set(ServingStatus.NOT_SERVING);
    server.stopAccepting();
    // Refuse new batches, then wait until everything accepted has committed and been answered.
    await queue.close();
    draining.abort(new ConnectError("server is shutting down", Code.Unavailable));
    server.closeConnectionsGracefully();
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([server.allClosed(), new Promise((resolve) => (grace = setTimeout(resolve, connectionGraceMs)))]);
    clearTimeout(grace);
    server.destroyConnections();
    await store.close();
    log.info("stopped");
  };

  return {
    port: address.port,
    host: address.address,
    close: () => (closing ??= close()),
  };
}
