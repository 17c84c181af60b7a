import { randomBytes } from "node:crypto";
import type http2 from "node:http2";
import { grpcFrame } from "../../support/raw-http.js";
import { bytesSent, EventMessages, grpcHeaders, h2Session, hold, httpRequest, waitFor } from "../clients.js";
import { abuseCase, attackerAddress, authTokensArgs, caseTimeoutMs, holdMs, runCase, scale } from "../harness.js";
import { drained, h2ErrorName } from "../h2-wire.js";

const MiB = 1024 * 1024;

/**
 * Case 2, streams that wait: many PublishStream calls (gRPC framing over raw
 * HTTP/2) each sending 1-3 MiB messages of ~60 KiB events with unique ids,
 * as fast as the server takes them. The ingest queue is full all along and
 * every stream waits for room: what the server holds for them meanwhile
 * (flow-control windows, read messages, decoded batches) is the question.
 */
export function streamsThatWait(): void {
  abuseCase(
    "2. streams that wait: hundreds of PublishStream calls pushing MiB-sized messages into a full queue",
    { timeout: caseTimeoutMs(90, 600) },
    async (server) => {
      const streams = scale(200, 400);
      const perSession = 20;
      const eventsPerMessage = scale(17, 50); // ~1 MiB, ~3 MiB
      return runCase("2 streams-that-wait", server, async (attackers) => {
        const sessions: http2.ClientHttp2Session[] = [];
        let messagesFlushed = 0;
        let bytesFlushed = 0;
        let cutByServer = 0;
        const rstCodes: Record<string, number> = {};
        const loops: Promise<void>[] = [];
        for (let i = 0; i < streams; i++) {
          if (i % perSession === 0) sessions.push(attackers.add(h2Session(server.port, attackerAddress(i / perSession))));
          const session = sessions.at(-1)!;
          const messages = new EventMessages(`s${i}`, 60 * 1024);
          const stream = session.request(grpcHeaders("PublishStream"));
          stream.on("error", () => undefined);
          stream.on("data", () => undefined);
          stream.on("close", () => {
            if (!attackers.released) {
              cutByServer++;
              const name = h2ErrorName(stream.rstCode) ?? "closed";
              rstCodes[name] = (rstCodes[name] ?? 0) + 1;
            }
          });
          loops.push(
            (async () => {
              while (!attackers.released && !stream.closed && !stream.destroyed) {
                const frame = messages.grpcMessage(eventsPerMessage);
                const more = stream.write(frame, (err) => {
                  if (err === undefined || err === null) {
                    messagesFlushed++;
                    bytesFlushed += frame.length;
                  }
                });
                if (!more && !(await drained(stream))) return;
              }
            })(),
          );
        }
        await hold(holdMs(5, 60));
        // While the streams still push: how far the writer got, and what waits in the queue.
        const during = await httpRequest(server.port, { path: "/stats", timeoutMs: 60_000 });
        const counters = during.status === 200 ? (JSON.parse(during.body.toString("utf8")) as { unique_processed: number; queue_events: number; queue_bytes: number }) : undefined;
        attackers.release();
        await Promise.all(loops);
        return {
          streams,
          connections: sessions.length,
          messageMiB: Math.round(((eventsPerMessage * 61 * 1024) / MiB) * 10) / 10,
          messagesSent: messagesFlushed,
          mibSent: Math.round(bytesFlushed / MiB),
          eventsStored: counters?.unique_processed,
          queueMiB: counters === undefined ? undefined : Math.round(counters.queue_bytes / MiB),
          streamsCutByServer: cutByServer,
          cutCodes: rstCodes,
        };
      });
    },
  );
}

/**
 * Case 3, many long-lived streams: with authentication on, health Watch
 * needs no token, so anyone can open as many as the server lets them, over
 * several connections, and keep them open for nothing.
 */
export function manyLongLivedStreams(): void {
  abuseCase(
    "3. many long-lived streams: grpc.health.v1.Health/Watch without a token, auth on, over several connections",
    { args: () => authTokensArgs([{ name: "ops", token: randomBytes(24).toString("base64url"), roles: ["publish", "read"] }]), timeout: caseTimeoutMs(60, 600) },
    async (server) => {
      const connections = scale(4, 40);
      const perConnection = scale(500, 500);
      const total = connections * perConnection;
      return runCase("3 many-long-lived-streams", server, async (attackers) => {
        let opened = 0;
        let refused = 0;
        let closedAfterOpening = 0;
        const refusals: Record<string, number> = {};
        const sessionsClosed = { count: 0 };
        const started = performance.now();
        let lastOpenedAt = 0;
        for (let c = 0; c < connections; c++) {
          const session = attackers.add(h2Session(server.port, attackerAddress(c)));
          session.on("close", () => {
            if (!attackers.released) sessionsClosed.count++;
          });
          for (let s = 0; s < perConnection; s++) {
            const stream = session.request(grpcHeaders("/grpc.health.v1.Health/Watch"));
            let open = false;
            stream.on("error", () => undefined);
            stream.on("response", (headers) => {
              // A trailers-only answer (grpc-status in the headers) is a refusal.
              if (headers["grpc-status"] !== undefined && headers["grpc-status"] !== "0") {
                const why = `grpc-status ${String(headers["grpc-status"])}`;
                refusals[why] = (refusals[why] ?? 0) + 1;
              }
            });
            stream.on("data", () => {
              if (!open) {
                open = true;
                opened++;
                lastOpenedAt = performance.now();
              }
            });
            stream.on("close", () => {
              if (attackers.released) return;
              if (open) closedAfterOpening++;
              else {
                refused++;
                const why = stream.rstCode ? (h2ErrorName(stream.rstCode) ?? "reset") : "closed";
                refusals[why] = (refusals[why] ?? 0) + 1;
              }
            });
            stream.end(grpcFrame(Buffer.alloc(0)));
          }
          // Let the client flush this connection's streams before making the next.
          await new Promise((resolve) => setImmediate(resolve));
        }
        const settled = await waitFor(() => opened + refused >= total, scale(20_000, 120_000));
        const openingMs = Math.round((lastOpenedAt || performance.now()) - started);
        await hold(holdMs(3, 30));
        return {
          attempted: total,
          connections,
          opened,
          refused,
          pending: total - opened - refused,
          allSettled: settled,
          refusals,
          closedAfterOpening,
          connectionsClosedByServer: sessionsClosed.count,
          msToOpen: openingMs,
        };
      });
    },
  );
}

/**
 * Half-sent unary calls: gRPC Publish calls whose message prefix announces
 * 4 MiB and whose first 1 MiB arrives (a stream's whole window), the rest
 * never. Each call is unary, so the server has to hold its partial message
 * until the request timeout; many connections multiply it.
 */
export function halfSentUnaryCalls(): void {
  abuseCase(
    "half-sent unary calls: gRPC Publish messages announcing 4 MiB, 1 MiB sent, the rest never",
    { timeout: caseTimeoutMs(60, 300) },
    async (server) => {
      const connections = scale(10, 40);
      const perConnection = scale(50, 100);
      return runCase("half-sent-unary-calls", server, async (attackers) => {
        let reset = 0;
        let answered = 0;
        // One buffer for every call: a prefix announcing ~4 MiB, then the first MiB of it.
        const firstMiB = Buffer.alloc(MiB, 0x41);
        firstMiB[0] = 0;
        firstMiB.writeUInt32BE(4 * MiB - 64, 1);
        const sessions = attackers.open(connections, (address) => h2Session(server.port, address));
        for (const session of sessions) {
          for (let s = 0; s < perConnection; s++) {
            const stream = session.request(grpcHeaders("Publish"));
            stream.on("error", () => undefined);
            stream.on("response", () => answered++);
            stream.on("close", () => {
              if (!attackers.released) reset++;
            });
            stream.write(firstMiB);
          }
        }
        await hold(holdMs(4, 60));
        return {
          calls: connections * perConnection,
          connections,
          mibSent: Math.round(sessions.reduce((sum, session) => sum + bytesSent(session), 0) / MiB),
          answeredEarly: answered,
          closedByServer: reset,
        };
      });
    },
  );
}
