import { create, toBinary } from "@bufbuild/protobuf";
import { expect } from "vitest";
import { EventsRequestSchema } from "../../../gen/aggregator/v1/aggregator_pb.js";
import { grpcFrame } from "../../support/raw-http.js";
import { bigPayload, grpcHeaders, h2Request, h2Session, hold, httpRequest, neverReadingSocket, restEvent, seedRest, waitFor } from "../clients.js";
import { abuseCase, attackerAddress, caseTimeoutMs, holdMs, runCase, scale } from "../harness.js";

const MiB = 1024 * 1024;
const pageRequest = { limit: 1000 };

/**
 * Case 1, readers that never read: events with ~60 KiB payloads are stored,
 * then many clients ask for the biggest page (1,000 events) and read nothing
 * back: HTTP/2 streams with a flow-control window of 0 (REST, Connect JSON
 * and gRPC), and HTTP/1.1 sockets paused before the answer arrives. Whatever
 * the server makes of those answers, it has to hold. Meanwhile one reader of
 * each kind does read its page: how big an answer can get.
 */
export function readersThatNeverRead(): void {
  abuseCase(
    "1. readers that never read: big pages asked for over HTTP/2 (window 0) and paused HTTP/1.1 sockets",
    { args: ["--durability", "normal"], timeout: caseTimeoutMs(120, 900) },
    async (server) => {
      const stored = scale(150, 800);
      const payload = bigPayload(60 * 1024);
      await seedRest(
        server,
        Array.from({ length: stored }, (_, i) => restEvent("big", `big-${i}`, payload)),
        50,
      );
      const h2Sessions = scale(2, 12);
      const streamsPerSession = 10;
      const h1Sockets = scale(10, 60);

      return runCase("1 readers-that-never-read", server, async (attackers) => {
        let answered = 0;
        let resetByServer = 0;
        let h1Closed = 0;
        // HTTP/2: window 0, so the server may send headers but no byte of any page.
        const sessions = attackers.open(h2Sessions, (address) => h2Session(server.port, address, { settings: { initialWindowSize: 0 } }));
        for (const session of sessions) {
          for (let k = 0; k < streamsPerSession; k++) {
            const kind = k % 3;
            const stream =
              kind === 0
                ? session.request({ ":method": "GET", ":path": "/events?limit=1000" })
                : kind === 1
                  ? session.request({ ":method": "POST", ":path": "/aggregator.v1.AggregatorService/Events", "content-type": "application/json" })
                  : session.request(grpcHeaders("Events"));
            stream.on("response", () => answered++);
            stream.on("error", () => undefined);
            stream.on("close", () => {
              if (stream.rstCode !== undefined && stream.rstCode !== 0) resetByServer++;
            });
            if (kind === 0) stream.end();
            else if (kind === 1) stream.end(JSON.stringify(pageRequest));
            else stream.end(grpcFrame(toBinary(EventsRequestSchema, create(EventsRequestSchema, pageRequest))));
          }
        }
        // HTTP/1.1: the request is written, the socket paused before anything comes back.
        const authority = `127.0.0.1:${server.port}`;
        for (let i = 0; i < h1Sockets; i++) {
          const body = JSON.stringify(pageRequest);
          const request =
            i % 2 === 0
              ? `GET /events?limit=1000 HTTP/1.1\r\nhost: ${authority}\r\n\r\n`
              : `POST /aggregator.v1.AggregatorService/Events HTTP/1.1\r\nhost: ${authority}\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
          attackers.add(neverReadingSocket(server.port, attackerAddress(h2Sessions + Math.floor(i / 10)), request, () => h1Closed++));
        }
        const h2Streams = h2Sessions * streamsPerSession;
        const waitStarted = performance.now();
        const allAnswered = await waitFor(() => answered + resetByServer >= h2Streams, scale(10_000, 120_000));
        const msUntilAllAnswered = allAnswered ? Math.round(performance.now() - waitStarted) : `over ${scale(10_000, 120_000)}`;
        await hold(holdMs(3, 30));

        // Readers that do read, while the others still hold their pages.
        const readerAddress = attackerAddress(200);
        const readerSession = attackers.add(h2Session(server.port, readerAddress));
        const [rest, connect, grpc] = await Promise.all([
          httpRequest(server.port, { path: "/events?limit=1000", localAddress: readerAddress, timeoutMs: 120_000 }),
          httpRequest(server.port, {
            method: "POST",
            path: "/aggregator.v1.AggregatorService/Events",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(pageRequest),
            localAddress: readerAddress,
            timeoutMs: 120_000,
          }),
          h2Request(readerSession, grpcHeaders("Events"), grpcFrame(toBinary(EventsRequestSchema, create(EventsRequestSchema, pageRequest)))),
        ]);
        const restPage = rest.status === 200 ? (JSON.parse(rest.body.toString("utf8")) as { count: number; has_more: boolean }) : undefined;
        return {
          storedEvents: stored,
          storedPayloadMiB: Math.round((stored * 60 * 1024) / MiB),
          h2Streams,
          h2StreamsAnswered: answered,
          h2StreamsResetByServer: resetByServer,
          msUntilH2Answered: msUntilAllAnswered,
          h1PausedSockets: h1Sockets,
          h1SocketsResetByServer: h1Closed,
          restPageStatus: rest.status,
          restPageBytes: rest.body.length,
          restPageEvents: restPage?.count,
          connectPageBytes: connect.body.length,
          grpcPageBytes: grpc.body.length,
          grpcStatus: grpc.trailers["grpc-status"] ?? grpc.headers["grpc-status"],
          largestAnswerBytes: Math.max(rest.body.length, connect.body.length, grpc.body.length),
        };
      });
    },
    (facts) => expect.soft(facts.largestAnswerBytes, "largest page answer (bytes) under 4 MiB").toBeLessThan(4 * MiB),
  );
}

/**
 * Pipelined requests never read: HTTP/1.1 lets a client send request after
 * request without waiting for the answers. A few connections each write
 * hundreds of GET /events?limit=1000 at once (pages of ~1 MiB) and read
 * nothing: does the server stop reading the pipeline while answers wait, or
 * work out and keep every page?
 */
export function pipelinedRequestsNeverRead(): void {
  abuseCase(
    "pipelined HTTP/1.1 requests never read: hundreds of page requests per connection in one write",
    { args: ["--durability", "normal"], timeout: caseTimeoutMs(60, 600) },
    async (server) => {
      const payload = bigPayload(1000);
      await seedRest(
        server,
        Array.from({ length: 1000 }, (_, i) => restEvent("pipelined", `p-${i}`, payload)),
        500,
      );
      const connections = 4;
      const perConnection = scale(200, 2000);
      return runCase("pipelined-requests-never-read", server, async (attackers) => {
        let closed = 0;
        const request = `GET /events?limit=1000 HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`;
        const pipeline = request.repeat(perConnection);
        attackers.open(connections, (address) => neverReadingSocket(server.port, address, pipeline, () => closed++));
        await hold(holdMs(5, 60));
        return {
          connections,
          pipelinedPerConnection: perConnection,
          pageKiB: Math.round((1000 * 1050) / 1024),
          answersIfAllKept: `${Math.round((connections * perConnection * 1000 * 1050) / MiB)} MiB`,
          connectionsClosedByServer: closed,
        };
      });
    },
  );
}
