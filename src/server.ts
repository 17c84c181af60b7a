import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { toConnectError } from "./errors.js";
import { HealthState, ServingStatus, healthRoutes } from "./health.js";
import { Publisher } from "./ingest/publisher.js";
import { IngestQueue } from "./ingest/queue.js";
import { createDualProtocolServer } from "./net/dual-protocol-server.js";
import { restHandler } from "./rest.js";
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
 * Turns whatever a handler throws into the right Connect error at the edge,
 * and logs only what is unexpected: clients never see internals.
 */
function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      const mapped = toConnectError(err);
      if (mapped.code === Code.Internal && !(err instanceof ConnectError)) log.error({ err, method: req.method.name }, "request failed");
      throw mapped;
    }
  };
}

/** Opens the store and listens; resolves once the port is bound. */
export async function startServer(config: Config, log: Logger): Promise<RunningServer> {
  const store = await openSqliteStore(config.dbPath, config.durability, log);
  const queue = new IngestQueue(store, { maxEvents: config.queueEvents, maxBytes: config.queueBytes });
  const publisher = new Publisher(queue, { maxBatch: config.maxBatch, maxPayloadBytes: config.maxPayloadBytes });
  const health = new HealthState();
  const deps = { publisher, queue, store, startedAt: new Date() };
  const draining = new AbortController();

  const handler = connectNodeAdapter({
    routes: (router) => {
      aggregatorRoutes(deps)(router);
      healthRoutes(health)(router);
    },
    fallback: restHandler({ ...deps, health, maxBodyBytes: config.maxMessageBytes, log }),
    readMaxBytes: config.maxMessageBytes,
    // snake_case field names as the older REST clients read them, and zero counts spelled out.
    jsonOptions: { useProtoFieldName: true, alwaysEmitImplicit: true },
    shutdownSignal: draining.signal,
    interceptors: [errorInterceptor(log)],
  });
  const server = createDualProtocolServer(handler);

  await new Promise<void>((resolve, reject) => {
    server.tcp.once("error", reject);
    server.tcp.listen(config.port, config.host, () => {
      server.tcp.off("error", reject);
      resolve();
    });
  });
  const address = server.tcp.address() as AddressInfo;
  log.info({ port: address.port, host: address.address, db: config.dbPath, durability: config.durability }, "listening");

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
