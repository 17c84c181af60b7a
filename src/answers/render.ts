import { Code, ConnectError } from "@connectrpc/connect";
import { codeToString, errorToJson } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { ValidationError } from "../codec/violations.js";
import { httpStatusFor } from "./http-status.js";
import { quoted } from "./quote.js";

/**
 * The one place that renders answers: JSON bodies for the REST routes and the
 * Connect protocol, gRPC status for gRPC and gRPC-Web. Whatever connect-es
 * answers itself (a handler's error on a Connect route) it renders with the
 * same connect-es functions used here, so every error of every front door
 * reads alike: the code, the message, and field violations as
 * google.rpc.BadRequest details.
 */

/** How the client reads the outcome: REST JSON, Connect JSON, or gRPC status (gRPC, gRPC-Web). */
export type Surface = "rest" | "connect" | "grpc";

/** An answer ready to write. */
export interface Rendered {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | undefined;
}

/** gRPC and gRPC-Web content types: their clients read the outcome from grpc-status, not from the HTTP status. */
const grpcContentType = /^application\/grpc(-web(-text)?)?\s*([+;]|$)/i;

/** The surface of an RPC path request, from its content type. */
export function rpcSurface(contentType: string | undefined): "connect" | "grpc" {
  return grpcContentType.test(contentType ?? "") ? "grpc" : "connect";
}

/** How the client of a request reads an answer: an RPC path's by its content type, any other path's as REST. */
export function requestSurface(path: string, contentType: string | undefined): Surface {
  return rpcPath.test(path) ? rpcSurface(contentType) : "rest";
}

/** What an error answer may set beyond what its code implies. */
export interface ErrorOptions {
  /** An HTTP status other than the code's: 405, 415. Ignored on gRPC, whose status travels in grpc-status. */
  status?: number;
  /** REST only: a code name other than the Connect code's ("method_not_allowed"). */
  codeName?: string;
  /** More headers, such as Allow or WWW-Authenticate. */
  headers?: Record<string, string>;
  /** gRPC: the request's content type, which a trailers-only answer repeats. */
  contentType?: string;
}

/**
 * An error answer. REST bodies are {code, message} plus the `violations` of a
 * refused batch (index, field, description) as the older clients read them;
 * Connect bodies are connect-es's error JSON with its details; gRPC answers are
 * trailers-only (HTTP 200, status in the headers). The error's metadata
 * (retry-after) travels as headers in every form.
 */
export function renderError(err: ConnectError, surface: Surface, options: ErrorOptions = {}): Rendered {
  const headers: Record<string, string> = {};
  err.metadata.forEach((value, key) => (headers[key] = value));
  Object.assign(headers, options.headers);
  if (surface === "grpc") {
    setTrailerStatus(new Headers(), err).forEach((value, key) => (headers[key] = value));
    headers["content-type"] = options.contentType ?? "application/grpc";
    return { status: 200, headers, body: undefined };
  }
  const body: Record<string, unknown> =
    surface === "connect" ? errorToJson(err, undefined) : { code: options.codeName ?? codeToString(err.code), message: err.rawMessage };
  if (surface === "rest" && err.cause instanceof ValidationError) body.violations = err.cause.violations;
  return json(options.status ?? httpStatusFor(err.code, surface), body, headers);
}

/** A JSON answer; a trailing newline keeps consecutive curl answers on lines of their own. */
export function json(status: number, body: unknown, headers: Record<string, string> = {}): Rendered {
  const bytes = Buffer.from(`${JSON.stringify(body)}\n`, "utf8");
  return {
    status,
    headers: { ...headers, "content-type": "application/json; charset=utf-8", "content-length": String(bytes.byteLength) },
    body: bytes,
  };
}

/** The grpc-status fields of an outcome, for trailers: grpc-status 0 when err is undefined. */
export function grpcStatusFields(err: ConnectError | undefined): Record<string, string> {
  // Success is most answers of the lean unary path: no Headers object for it.
  if (err === undefined) return { "grpc-status": "0" };
  const fields: Record<string, string> = {};
  err.metadata.forEach((value, key) => (fields[key] = value));
  setTrailerStatus(new Headers(), err).forEach((value, key) => (fields[key] = value));
  return fields;
}

/** What send() needs of a response: Node's HTTP/1.1 and HTTP/2 responses both have it. */
interface AnswerTarget {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(): unknown;
  end(body: Uint8Array): unknown;
}

/** Writes an answer to a Node response. */
export function send(res: AnswerTarget, answer: Rendered): void {
  if (answer.body === undefined) {
    // A gRPC trailers-only answer must be one HEADERS frame that ends the
    // stream: writeHead() would send the headers on their own, and grpc-js
    // then reads a stream that ends without a status (INTERNAL). Headers
    // set before end() go out with the end of the stream.
    res.statusCode = answer.status;
    for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
    res.end();
    return;
  }
  res.writeHead(answer.status, answer.headers);
  res.end(answer.body);
}

/** An error for a request no operation matched: `unimplemented` on an RPC-shaped path, `not_found` on any other. */
export function notFound(method: string, path: string): { err: ConnectError; rpc: boolean } {
  const rpc = rpcPath.exec(path);
  if (rpc !== null) return { err: new ConnectError(`no method ${quoted(rpc[2]!)} in service ${quoted(rpc[1]!)} on this server`, Code.Unimplemented), rpc: true };
  return { err: new ConnectError(`no route for ${quoted(`${method} ${path}`)}`, Code.NotFound), rpc: false };
}

/** A path shaped like an RPC (/package.Service/Method). */
const rpcPath = /^\/([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)\/([A-Za-z_]\w*)$/;

/** Whether a path is shaped like an RPC (/package.Service/Method): its refusals are answered in the RPC protocols' forms. */
export function isRpcPath(path: string): boolean {
  return rpcPath.test(path);
}
