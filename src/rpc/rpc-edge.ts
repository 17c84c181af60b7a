import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import type { UniversalHandler, UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { toConnectError } from "../answers/failures.js";
import { quoted } from "../answers/quote.js";
import { grpcStatusFields, renderError, rpcSurface, type Rendered } from "../answers/render.js";
import { budgetedBody } from "./budgeted-body.js";
import { exactJsonBody } from "./exact-json-body.js";

/**
 * Answers at the edge of the RPC paths that connect-es gives in a form
 * clients cannot act on:
 *
 * - protobuf bytes it cannot decode as a unary request are `internal`
 *   ("parse binary: …"), though the fault is the client's: they become
 *   `invalid_argument` ("cannot decode the request message: …"), as JSON it
 *   cannot decode already is, and as connect-go answers both. (Streams decode
 *   their messages while our handler reads them; answers/failures.ts maps those.)
 * - an unsupported content type is a bare 415, a refused HTTP method a bare
 *   405: both get a body saying what was wrong and what is accepted.
 * - a refusal of a request header (an unknown compression, a malformed
 *   timeout) repeats the header whole, up to the 16 KiB header limit: more
 *   than grpc-js reads in a trailer. A value that is long or needs escaping
 *   is quoted short instead (answers/quote.ts).
 *
 * Each universal handler of a router is wrapped, so the rewrite sees exactly
 * the responses of RPC paths and nothing else.
 */

/** Content types each protocol accepts, for the message of a 415. */
const contentTypesByProtocol: Record<string, string[]> = {
  connect: ["application/json", "application/proto"],
  grpc: ["application/grpc", "application/grpc+proto", "application/grpc+json"],
  "grpc-web": ["application/grpc-web", "application/grpc-web+proto", "application/grpc-web+json"],
};

/**
 * Wraps a router's routes so that every RPC they register answers as
 * described above, and reads its request body within the memory budget
 * (budgeted-body.ts).
 */
export function withRpcEdge(routes: (router: ConnectRouter) => void, readMaxBytes: number): (router: ConnectRouter) => void {
  return (router) => {
    routes(router);
    const handlers = router.handlers;
    for (let i = 0; i < handlers.length; i++) handlers[i] = wrapHandler(handlers[i]!, readMaxBytes);
  };
}

/** A handler answering as `handler` does, except for the responses this module rewrites. */
export function wrapHandler(handler: UniversalHandler, readMaxBytes: number): UniversalHandler {
  const wrapped = async (request: UniversalServerRequest): Promise<UniversalServerResponse> => {
    // Each message takes its share of the memory budget before it is read, then JSON is checked for what it cannot hold.
    const req = exactJsonBody(budgetedBody(request, readMaxBytes), handler.method);
    const res = await handler(req);
    if (res.status === 415 && res.body === undefined) return unsupportedMediaType(handler, req);
    if (res.status === 405 && res.body === undefined) return methodNotAllowed(handler, req);
    // Client and bidi streams decode their messages while our handler reads them: answers/failures.ts maps those.
    const decodesFirst = handler.method.methodKind === "unary" || handler.method.methodKind === "server_streaming";
    const echoes = longEchoes(req);
    if (!decodesFirst && echoes.length === 0) return res;
    // toConnectError rewrites "parse binary" errors and answers any other ConnectError as it is.
    return rewriteErrors(res, (err) => requote(decodesFirst ? toConnectError(err) : err, echoes));
  };
  return Object.assign(wrapped, {
    protocolNames: handler.protocolNames,
    service: handler.service,
    method: handler.method,
    requestPath: handler.requestPath,
    allowedMethods: handler.allowedMethods,
    supportedContentType: handler.supportedContentType,
  });
}

function unsupportedMediaType(handler: UniversalHandler, req: UniversalServerRequest): UniversalServerResponse {
  const received = req.header.get("content-type") ?? "";
  const supported = handler.protocolNames.flatMap((p) => contentTypesByProtocol[p] ?? []);
  const message = `content-type ${received === "" ? "(none)" : quoted(received)} is not supported by ${handler.method.name}; use ${listed(supported)}`;
  return refusal(req, 415, message);
}

function methodNotAllowed(handler: UniversalHandler, req: UniversalServerRequest): UniversalServerResponse {
  const allowed = handler.allowedMethods;
  const message = `${handler.method.name} only accepts ${listed(allowed)}, not ${quoted(req.method)}`;
  return refusal(req, 405, message, { allow: allowed.join(", ") });
}

/** `invalid_argument` in the form the caller's protocol reads (answers/render.ts), with `status` where it is read from HTTP. */
function refusal(req: UniversalServerRequest, status: number, message: string, headers: Record<string, string> = {}): UniversalServerResponse {
  const contentType = req.header.get("content-type") ?? "";
  return universal(renderError(new ConnectError(message, Code.InvalidArgument), rpcSurface(contentType), { status, headers, contentType }));
}

function universal(answer: Rendered): UniversalServerResponse {
  const body = answer.body;
  return { status: answer.status, header: new Headers(answer.headers), ...(body !== undefined && { body: once(body) }) };
}

/** An error as the edge answers it: the same object when nothing is to change. */
type ErrorRewrite = (err: ConnectError) => ConnectError;

/** Request values connect-es may repeat whole in its refusals: compression names and timeouts. */
const echoedHeaders = ["grpc-encoding", "content-encoding", "connect-content-encoding", "grpc-timeout", "connect-timeout-ms"];

/** The request's values connect-es might repeat that are too long or too odd to repeat as they are. */
function longEchoes(req: UniversalServerRequest): string[] {
  const values: string[] = [];
  for (const name of echoedHeaders) {
    const value = req.header.get(name);
    if (value !== null) values.push(value);
  }
  // Connect GET names its compression in the query string.
  if (req.method === "GET") {
    const compression = new URL(req.url).searchParams.get("compression");
    if (compression !== null) values.push(compression);
  }
  return values.filter((value) => quoted(value) !== `"${value}"`);
}

/** The error with each echoed value in its message quoted short; the same error when it repeats none. */
function requote(err: ConnectError, echoes: string[]): ConnectError {
  let message = err.rawMessage;
  for (const value of echoes) {
    const at = message.indexOf(value);
    if (at < 0) continue;
    // connect-es puts some values in quotes of its own ("unknown compression \"…\"").
    const inQuotes = message[at - 1] === '"' && message[at + value.length] === '"';
    const start = inQuotes ? at - 1 : at;
    message = `${message.slice(0, start)}${quoted(value)}${message.slice(at + value.length + (inQuotes ? 1 : 0))}`;
  }
  if (message === err.rawMessage) return err;
  const requoted = new ConnectError(message, err.code, err.metadata, undefined, err.cause);
  // The constructor takes only details to encode; these may be decoded ones already.
  requoted.details.push(...err.details);
  return requoted;
}

/** Applies `rewrite` to the error of a response, in whichever of the three protocols' forms it comes. */
function rewriteErrors(res: UniversalServerResponse, rewrite: ErrorRewrite): UniversalServerResponse | Promise<UniversalServerResponse> {
  const contentType = res.header?.get("content-type") ?? "";
  if (res.status !== 200 && /^application\/json/i.test(contentType) && res.header?.get("content-encoding") === null) {
    return rewriteConnectUnary(res, rewrite);
  }
  if (res.status === 200 && res.trailer !== undefined) {
    // gRPC: the status is in trailers. connect-es resolves the response only
    // once the first output (or the end) is there, so an error decoding the
    // request message, or refusing its headers, is in them already.
    rewriteGrpcTrailer(res.trailer, rewrite);
    return res;
  }
  if (res.status === 200 && /^application\/grpc-web/i.test(contentType) && res.body !== undefined) {
    // gRPC-Web: the status is in the trailer frame, the body's last envelope (flag 0x80).
    const body = res.body;
    return {
      ...res,
      body: (async function* () {
        for await (const chunk of body) yield rewriteGrpcWebTrailerFrame(chunk, rewrite);
      })(),
    };
  }
  return res;
}

/** Connect unary: a JSON error body, answered with the HTTP status of its code. */
async function rewriteConnectUnary(res: UniversalServerResponse, rewrite: ErrorRewrite): Promise<UniversalServerResponse> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of res.body ?? []) chunks.push(chunk);
  const bytes = Buffer.concat(chunks);
  let err: ConnectError | undefined;
  try {
    // Throws the fallback it is given for a body that is not a Connect error.
    err = errorFromJsonBytes(bytes, undefined, new ConnectError("not a Connect error body"));
  } catch {
    err = undefined;
  }
  const replacement = err === undefined ? undefined : rewrite(err);
  if (replacement === undefined || replacement === err) return { ...res, body: once(bytes) };
  const rewritten = renderError(replacement, "connect");
  const header = new Headers(res.header);
  for (const [key, value] of Object.entries(rewritten.headers)) header.set(key, value);
  return { ...universal(rewritten), header };
}

/** Rewrites a gRPC trailer in place when it holds an error to rewrite; whether it did. */
function rewriteGrpcTrailer(trailer: Headers, rewrite: ErrorRewrite): boolean {
  const err = findTrailerError(trailer);
  if (err === undefined) return false;
  const replacement = rewrite(err);
  if (replacement === err) return false;
  for (const [key, value] of Object.entries(grpcStatusFields(replacement))) trailer.set(key, value);
  return true;
}

/** A gRPC-Web trailer frame (an uncompressed envelope with flag 0x80), rewritten; any other chunk as it is. */
function rewriteGrpcWebTrailerFrame(chunk: Uint8Array, rewrite: ErrorRewrite): Uint8Array {
  if (chunk.length < 5 || chunk[0] !== 0x80) return chunk;
  const frame = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (frame.readUInt32BE(1) !== frame.length - 5) return chunk;
  const trailer = new Headers();
  for (const line of frame.subarray(5).toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0) trailer.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  if (!rewriteGrpcTrailer(trailer, rewrite)) return chunk;
  const lines: string[] = [];
  trailer.forEach((value, key) => lines.push(`${key}: ${value}\r\n`));
  const text = Buffer.from(lines.join(""), "utf8");
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(text.length, 1);
  return Buffer.concat([head, text]);
}

function listed(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? "") : `${items.slice(0, -1).join(", ")} or ${items.at(-1)}`;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}
