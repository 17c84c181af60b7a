import type http2 from "node:http2";
import { parseGrpcTimeout } from "./grpc-timeout.js";

/** gRPC with the protobuf codec; `application/grpc` means protobuf. */
const grpcProtoContentType = /^application\/grpc(\+proto)?$/i;

/** What a lean path looks at to decide whether it serves a request. */
export interface LeanCandidate {
  httpVersionMajor: number;
  method?: string | undefined;
  url?: string | undefined;
  headers: http2.IncomingHttpHeaders;
}

/**
 * Whether a request is a call the lean gRPC paths serve (lean-grpc-publish.ts,
 * lean-grpc-subscribe.ts): HTTP/2, POST to `path`, protobuf, uncompressed,
 * and a grpc-timeout they can parse. Everything else (gRPC-Web, Connect,
 * JSON, compression, a malformed or over-long timeout, HTTP/1.1) goes to
 * connect-es, which answers it, refusals included.
 */
export function isLeanGrpcCall(req: LeanCandidate, path: string, maxTimeoutMs: number): boolean {
  const encoding = req.headers["grpc-encoding"];
  return (
    req.httpVersionMajor === 2 &&
    req.method === "POST" &&
    req.url === path &&
    grpcProtoContentType.test(req.headers["content-type"] ?? "") &&
    (encoding === undefined || encoding === "identity") &&
    parseGrpcTimeout(req.headers["grpc-timeout"], maxTimeoutMs) !== "invalid"
  );
}
