/**
 * The bench's floors: a server that answers every request at once as tally
 * answers one new event, and stores nothing. Driven by the same load
 * generator with the same load as tally, it says how much of a figure is the
 * load generator and Node's HTTP on this machine rather than tally: whatever
 * tally adds is above it.
 *
 * By default an h2c server answering gRPC Publish (the latency floor); with
 * --http1 an HTTP/1.1 server answering REST POST /publish (the REST floor).
 * Same HTTP settings, Nagle off and Node flags as tally's server, so the only
 * difference is the work behind the answer. Prints tally's "listening" log
 * line (JSON, with the port) so the bench starts it like a server.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import http from "node:http";
import http2 from "node:http2";
import type { Socket } from "node:net";
import { PublishResponseSchema, PublishResult_Status } from "../../../gen/aggregator/v1/aggregator_pb.js";
import { defaults } from "../../app/config.js";
import { http1ServerSettings, http2ServerSettings } from "../../http/protocol-settings.js";

function grpcStub(): http2.Http2Server {
  const response = toBinary(PublishResponseSchema, create(PublishResponseSchema, { accepted: 1, results: [{ status: PublishResult_Status.ACCEPTED, seq: 1n }] }));
  const frame = Buffer.alloc(5 + response.length);
  frame.writeUInt32BE(response.length, 1);
  frame.set(response, 5);

  const server = http2.createServer(http2ServerSettings(defaults.maxStreamsPerConnection));
  server.on("connection", (socket: Socket) => socket.setNoDelay(true));
  server.on("stream", (stream) => {
    // Read the whole request first, as a server that decodes it would.
    stream.resume();
    stream.on("end", () => {
      if (stream.destroyed) return;
      stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
      stream.once("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
      stream.end(frame);
    });
    // A call the client gave up on is not the stub's problem.
    stream.on("error", () => undefined);
  });
  server.on("sessionError", () => undefined);
  return server;
}

function restStub(): http.Server {
  const body = `${JSON.stringify({ received: 1, accepted: 1, duplicates: 0, conflicts: 0, results: [{ status: "ACCEPTED", seq: 1 }] })}\n`;
  const headers = { "content-type": "application/json; charset=utf-8", "content-length": String(Buffer.byteLength(body)) };
  return http.createServer(http1ServerSettings, (req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(200, headers);
      res.end(body);
    });
  });
}

const server = process.argv.includes("--http1") ? restStub() : grpcStub();

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ level: 30, msg: "listening", port })}\n`);
});

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  // Connections the load generator left open would hold close() forever.
  setTimeout(() => process.exit(0), 1_000).unref();
});
