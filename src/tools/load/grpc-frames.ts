import { once } from "node:events";
import http2 from "node:http2";
import net from "node:net";

/**
 * A minimal gRPC caller over node:http2 that sends messages encoded ahead of
 * time. A load generator that spends its CPU encoding protobuf measures
 * itself, not the server: on the 2-core machine the connect-node client's
 * Struct encoding alone held the rate to a fraction of what the server takes.
 */

/** The gRPC status names ghz reports, by code. */
export const grpcStatusNames = [
  "OK",
  "Canceled",
  "Unknown",
  "InvalidArgument",
  "DeadlineExceeded",
  "NotFound",
  "AlreadyExists",
  "PermissionDenied",
  "ResourceExhausted",
  "FailedPrecondition",
  "Aborted",
  "OutOfRange",
  "Unimplemented",
  "Internal",
  "Unavailable",
  "DataLoss",
  "Unauthenticated",
] as const;

/** gRPC's code for "try again later", which the server answers when its queue is full. */
export const grpcUnavailable = 14;

/** What one gRPC call answered: status from the trailers, and the first response message's bytes. */
export interface GrpcReply {
  status: number;
  message: string;
  /** Seconds the server asked us to wait (retry-after), when it did. */
  retryAfterSeconds: number | undefined;
  body: Buffer;
}

/** Yields the next frame to send, or undefined when the stream should end; may wait (rate limit). */
export type FrameSource = () => Buffer | undefined | Promise<Buffer | undefined>;

/**
 * An h2c session with Nagle off. Small unary calls wait for delayed ACKs
 * when the kernel holds back partial segments; setting it explicitly keeps
 * the measurement about the server whatever Node's default is.
 */
export function connectH2c(baseUrl: string): http2.ClientHttp2Session {
  const url = new URL(baseUrl);
  const session = http2.connect(url.origin, {
    createConnection: () => net.connect({ host: url.hostname, port: Number(url.port || 80), noDelay: true }),
  });
  // Errors surface on the calls; an unhandled session 'error' would crash the load generator instead.
  session.on("error", () => undefined);
  return session;
}

/** One unary call: writes one pre-framed request and waits for the answer. */
export function grpcUnary(session: http2.ClientHttp2Session, path: string, frame: Buffer): Promise<GrpcReply> {
  return grpcCall(session, path, frame);
}

/**
 * Opens one gRPC call on `session` and resolves with the answer. A single
 * frame (unary) goes out with the end of the stream in one write; frames
 * from a FrameSource are written with flow control (waiting for 'drain'
 * while the server does not read), and the stream ends when it has no more.
 */
export function grpcCall(session: http2.ClientHttp2Session, path: string, request: Buffer | FrameSource): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc+proto",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let status: number | undefined;
    let message = "";
    let retryAfterSeconds: number | undefined;
    const readStatus = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] === undefined) return;
      status = Number(headers["grpc-status"]);
      message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
      if (headers["retry-after"] !== undefined) retryAfterSeconds = Number(headers["retry-after"]);
    };
    stream.on("response", readStatus);
    stream.on("trailers", readStatus);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", reject);
    stream.on("close", () => {
      if (status === undefined) {
        reject(new Error(`gRPC call ${path} closed without a status (HTTP/2 code ${stream.rstCode})`));
        return;
      }
      const data = Buffer.concat(chunks);
      const body = data.length >= 5 ? data.subarray(5, 5 + data.readUInt32BE(1)) : Buffer.alloc(0);
      resolve({ status, message, retryAfterSeconds, body });
    });
    if (Buffer.isBuffer(request)) {
      stream.end(request);
      return;
    }
    const next = request;
    const pump = async () => {
      for (;;) {
        const frame = await next();
        if (frame === undefined || stream.destroyed) break;
        if (!stream.write(frame)) await once(stream, "drain");
      }
      stream.end();
    };
    // A failed write closes the stream, whose 'error' or 'close' settles the call.
    pump().catch(() => stream.destroy());
  });
}
