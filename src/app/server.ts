import { Code, ConnectError } from "@connectrpc/connect";
import { setMaxListeners } from "node:events";
import type { AddressInfo } from "node:net";
import type { Logger } from "pino";
import { Gate } from "../auth/gate.js";
import { BrowserGuard } from "../http/browser-guard.js";
import { createDualProtocolServer } from "../http/dual-protocol-server.js";
import { RouteTable } from "../http/route-table.js";
import { PublishPipeline } from "../ingest/pipeline.js";
import { IngestQueue } from "../ingest/queue.js";
import { Reads } from "../read/reads.js";
import { MemoryBudget } from "../limits/memory-budget.js";
import { openLease } from "../limits/request-lease.js";
import { restRoutes } from "../rest/routes.js";
import { rpcFrontDoor } from "../rpc/front-door.js";
import { openStore } from "../store/open.js";
import { CommitFeed } from "../subscribe/commit-feed.js";
import { DurableConsumers } from "../subscribe/consumers.js";
import { Subscriptions } from "../subscribe/subscriptions.js";
import type { Config } from "./config.js";
import { HealthState, ServingStatus } from "../read/health-state.js";

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
 * Log fields that could carry credentials, redacted wherever they appear:
 * nothing logs request headers today, and this keeps it so.
 */
const redactedLogPaths = ["authorization", "*.authorization", "headers.authorization", "*.headers.authorization", "header.authorization", "*.header.authorization"];

/**
 * Builds the server from its parts and listens; resolves once the port is
 * bound. Requests meet the plain HTTP routes first (REST), then the RPC paths;
 * both pass the one gate and publish through the one pipeline.
 */
export async function startServer(config: Config, baseLog: Logger): Promise<RunningServer> {
  const log = baseLog.child({}, { redact: { paths: redactedLogPaths, censor: "[redacted]" } });
  const store = await openStore(config, log);
  const queue = new IngestQueue(store, { maxEvents: config.queueEvents, maxBytes: config.queueBytes });
  const pipeline = new PublishPipeline(queue, { maxBatch: config.maxBatch, maxPayloadBytes: config.maxPayloadBytes });
  const budget = new MemoryBudget(config.memoryBudgetBytes);
  const reads = new Reads(store, queue, pipeline, budget, { maxPageBytes: config.maxPageBytes }, new Date());
  const feed = await CommitFeed.open(store);
  const subscriptions = new Subscriptions(feed, store, new DurableConsumers(store, feed), config.maxPageBytes);
  const health = new HealthState();
  const gate = new Gate(config.accessList, log);
  const draining = new AbortController();
  // connect-es links every call's signal to this one: one listener per call in flight.
  setMaxListeners(0, draining.signal);

  const routes = new RouteTable(restRoutes({ pipeline, reads, health, subscriptions, shutdownSignal: draining.signal, maxBodyBytes: config.maxMessageBytes }), gate, log);
  const browsers = new BrowserGuard({ host: config.host, tls: config.tls !== null }, log);
  const rpc = rpcFrontDoor({ pipeline, reads, health, subscriptions }, { gate, log, readMaxBytes: config.maxMessageBytes, shutdownSignal: draining.signal });
  const server = createDualProtocolServer(
    (req, res) => {
      if (browsers.refused(req, res)) return;
      openLease(req, res, budget);
      if (!routes.serve(req, res)) rpc(req, res);
    },
    {
      maxConnections: config.maxConnections,
      maxConnectionsPerAddress: config.maxConnectionsPerAddress,
      maxStreams: config.maxStreams,
      maxStreamsPerConnection: config.maxStreamsPerConnection,
      maxConnectionAgeMs: config.maxConnectionAgeMs,
      maxConnectionAgeGraceMs: config.maxConnectionAgeGraceMs,
      idleTimeoutMs: config.idleTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      tls: config.tls,
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.tcp.once("error", reject);
    server.tcp.listen(config.port, config.host, () => {
      server.tcp.off("error", reject);
      resolve();
    });
  });
  const address = server.tcp.address() as AddressInfo;
  const access = config.accessList;
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
