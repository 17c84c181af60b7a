/**
 * The bench's latency floor: an h2c server that answers every gRPC call at
 * once with the same OK PublishResponse (one event accepted) and stores
 * nothing. Driven by the same load generator at the same rate as tally, it
 * says how much of a latency figure is the load generator and Node's HTTP/2
 * on this machine rather than tally: whatever tally adds is above it.
 *
 * Same HTTP/2 settings, Nagle off and Node flags as tally's server, so the
 * only difference is the work behind the answer. Prints tally's "listening"
 * log line (JSON, with the port) so the bench starts it like a server.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import http2 from "node:http2";
import type { Socket } from "node:net";
import { PublishResponseSchema, PublishResult_Status } from "../../../gen/aggregator/v1/aggregator_pb.js";
import { http2ServerSettings } from "../../net/dual-protocol-server.js";

const response = toBinary(PublishResponseSchema, create(PublishResponseSchema, { accepted: 1, results: [{ status: PublishResult_Status.ACCEPTED, seq: 1n }] }));
const frame = Buffer.alloc(5 + response.length);
frame.writeUInt32BE(response.length, 1);
frame.set(response, 5);

const server = http2.createServer(http2ServerSettings);
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

server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  process.stdout.write(`${JSON.stringify({ level: 30, msg: "listening", port })}\n`);
});

process.once("SIGTERM", () => {
  server.close(() => process.exit(0));
  // Sessions the load generator left open would hold close() forever.
  setTimeout(() => process.exit(0), 1_000).unref();
});
