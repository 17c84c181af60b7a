import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  contentTypeMatcher,
  type UniversalHandler,
  type UniversalServerRequest,
  type UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { wrapHandler } from "../../src/rpc/rpc-edge.js";

/** The largest request message these handlers are built with; the edge bounds each body's share of the memory budget by it. */
const readMaxBytes = 4 * 1024 * 1024;

const publish = AggregatorService.method.publish;
const publishStream = AggregatorService.method.publishStream;

/** What connect-es answers for protobuf bytes it cannot decode as a request message. */
const parseErrorJson = '{"code":"internal","message":"parse binary: premature EOF"}';
const parseErrorGrpcMessage = "parse%20binary%3A%20premature%20EOF";
/** What the edge answers instead. */
const rewrittenMessage = "cannot decode the request message: premature EOF";

/** A UniversalHandler answering `answer`, as connect-es's createUniversalHandler would shape it. */
function fakeHandler(
  method: DescMethod,
  answer: (req: UniversalServerRequest) => UniversalServerResponse,
  options: { protocolNames?: string[]; allowedMethods?: string[] } = {},
): UniversalHandler {
  const service = method.parent;
  return Object.assign(async (req: UniversalServerRequest) => answer(req), {
    protocolNames: options.protocolNames ?? ["connect", "grpc", "grpc-web"],
    service,
    method,
    requestPath: `/${service.typeName}/${method.name}`,
    allowedMethods: options.allowedMethods ?? ["POST"],
    supportedContentType: contentTypeMatcher(/^application\/(json|proto)$/),
  });
}

function request(method: DescMethod, init: { method?: string; contentType?: string; headers?: Record<string, string>; query?: string } = {}): UniversalServerRequest {
  const header = new Headers(init.headers);
  if (init.contentType !== undefined) header.set("content-type", init.contentType);
  return {
    httpVersion: "2.0",
    url: `http://localhost/${method.parent.typeName}/${method.name}${init.query ?? ""}`,
    method: init.method ?? "POST",
    header,
    body: chunks(),
    signal: new AbortController().signal,
  };
}

async function* chunks(...parts: Uint8Array[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield part;
}

async function collect(body: AsyncIterable<Uint8Array> | undefined): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const part of body ?? []) parts.push(part);
  return parts;
}

async function bytesOf(body: AsyncIterable<Uint8Array> | undefined): Promise<Buffer> {
  return Buffer.concat(await collect(body));
}

/** A gRPC-Web trailer frame: flag 0x80, a 4-byte length, then HTTP/1-style header lines. */
function trailerFrame(text: string): Buffer {
  const bytes = Buffer.from(text, "utf8");
  const head = Buffer.alloc(5);
  head[0] = 0x80;
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]);
}

/** The trailer lines of a gRPC-Web trailer frame, after checking its flag and length. */
function trailerOf(frame: Uint8Array): Headers {
  const buf = Buffer.from(frame);
  expect(buf[0]).toBe(0x80);
  expect(buf.readUInt32BE(1)).toBe(buf.length - 5);
  const trailer = new Headers();
  for (const line of buf.subarray(5).toString("utf8").split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    trailer.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return trailer;
}

function connectErrorResponse(json: string, status = 500, extra: Record<string, string> = {}): UniversalServerResponse {
  return { status, header: new Headers({ "content-type": "application/json", ...extra }), body: chunks(Buffer.from(json)) };
}

function grpcErrorResponse(status: string, message: string): UniversalServerResponse {
  return {
    status: 200,
    header: new Headers({ "content-type": "application/grpc+proto" }),
    body: chunks(),
    trailer: new Headers({ "grpc-status": status, "grpc-message": message }),
  };
}

describe("wrapHandler", () => {
  it("keeps the properties connect-es's router reads from a handler", () => {
    const handler = fakeHandler(publish, () => ({ status: 200 }));
    const wrapped = wrapHandler(handler, readMaxBytes);
    expect(wrapped).not.toBe(handler);
    expect(wrapped.protocolNames).toBe(handler.protocolNames);
    expect(wrapped.service).toBe(handler.service);
    expect(wrapped.method).toBe(handler.method);
    expect(wrapped.requestPath).toBe(handler.requestPath);
    expect(wrapped.allowedMethods).toBe(handler.allowedMethods);
    expect(wrapped.supportedContentType).toBe(handler.supportedContentType);
  });

  it("passes a successful answer through as the handler gave it", async () => {
    const body = chunks(Buffer.from("{}"));
    const answer: UniversalServerResponse = { status: 200, header: new Headers({ "content-type": "application/json" }), body };
    const res = await wrapHandler(fakeHandler(publish, () => answer), readMaxBytes)(request(publish, { contentType: "application/json" }));
    expect(res).toBe(answer);
  });

  describe("Connect unary error bodies", () => {
    it("rewrite an internal 'parse binary' error to invalid_argument with status 400 and the decode message", async () => {
      const res = await wrapHandler(fakeHandler(publish, () => connectErrorResponse(parseErrorJson)), readMaxBytes)(request(publish, { contentType: "application/proto" }));
      expect(res.status).toBe(400);
      const bytes = await bytesOf(res.body);
      expect(JSON.parse(bytes.toString("utf8"))).toEqual({ code: "invalid_argument", message: rewrittenMessage });
      expect(res.header?.get("content-type")).toMatch(/^application\/json/);
      expect(res.header?.get("content-length")).toBe(String(bytes.length));
    });

    it("keep the handler's other response headers when rewritten", async () => {
      const res = await wrapHandler(fakeHandler(publish, () => connectErrorResponse(parseErrorJson, 500, { "x-request-id": "r-1" })), readMaxBytes)(
        request(publish, { contentType: "application/proto" }),
      );
      expect(res.status).toBe(400);
      expect(res.header?.get("x-request-id")).toBe("r-1");
    });

    it("rewrite a 'parse binary' error body that arrives in several chunks", async () => {
      const json = Buffer.from(parseErrorJson);
      const answer: UniversalServerResponse = {
        status: 500,
        header: new Headers({ "content-type": "application/json" }),
        body: chunks(json.subarray(0, 10), json.subarray(10, 30), json.subarray(30)),
      };
      const res = await wrapHandler(fakeHandler(publish, () => answer), readMaxBytes)(request(publish, { contentType: "application/proto" }));
      expect(res.status).toBe(400);
      expect(errorFromJsonBytes(await bytesOf(res.body), undefined, new ConnectError("not an error body")).code).toBe(Code.InvalidArgument);
    });

    it.each([
      ["another internal error", '{"code":"internal","message":"boom"}', 500],
      ["a body spaced and ordered unlike connect-es's", '{ "message": "boom",\n  "code": "internal" }\n', 500],
      ["a 'parse binary' message under another code", '{"code":"invalid_argument","message":"parse binary: premature EOF"}', 400],
      ["an internal error merely mentioning 'parse binary'", '{"code":"internal","message":"could not parse binary: x"}', 500],
      ["an error with details", '{"code":"unavailable","message":"server is shutting down","details":[{"type":"google.rpc.RetryInfo","value":"CgIIAg"}]}', 503],
      ["a body that is not JSON at all", "not json", 500],
      ["a JSON body that is not a Connect error", '["internal"]', 500],
    ])("pass %s through with the same status and the same bytes", async (_what, json, status) => {
      const res = await wrapHandler(fakeHandler(publish, () => connectErrorResponse(json, status)), readMaxBytes)(request(publish, { contentType: "application/json" }));
      expect(res.status).toBe(status);
      expect((await bytesOf(res.body)).toString("utf8")).toBe(json);
    });

    it("leave a compressed error body alone, unread", async () => {
      const answer = connectErrorResponse(parseErrorJson, 500, { "content-encoding": "gzip" });
      const res = await wrapHandler(fakeHandler(publish, () => answer), readMaxBytes)(request(publish, { contentType: "application/proto" }));
      expect(res).toBe(answer);
    });
  });

  describe("gRPC trailers", () => {
    it("rewrite grpc-status 13 'parse binary' to grpc-status 3 with the decode message", async () => {
      const res = await wrapHandler(fakeHandler(publish, () => grpcErrorResponse("13", parseErrorGrpcMessage)), readMaxBytes)(
        request(publish, { contentType: "application/grpc+proto" }),
      );
      expect(res.status).toBe(200);
      expect(res.trailer?.get("grpc-status")).toBe("3");
      expect(res.trailer?.get("grpc-message")).toBe(encodeURIComponent(rewrittenMessage));
      const err = findTrailerError(res.trailer!);
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toBe(rewrittenMessage);
    });

    it("leave any other grpc-status as it is", async () => {
      for (const [status, message] of [
        ["13", "boom"],
        ["3", parseErrorGrpcMessage],
        ["0", ""],
      ] as const) {
        const res = await wrapHandler(fakeHandler(publish, () => grpcErrorResponse(status, message)), readMaxBytes)(request(publish, { contentType: "application/grpc" }));
        expect(res.trailer?.get("grpc-status")).toBe(status);
        expect(res.trailer?.get("grpc-message")).toBe(message);
      }
    });

    it("are rewritten for a server-streaming method too, whose request is decoded before the handler runs", async () => {
      const watch = Health.method.watch;
      expect(watch.methodKind).toBe("server_streaming");
      const res = await wrapHandler(fakeHandler(watch, () => grpcErrorResponse("13", parseErrorGrpcMessage)), readMaxBytes)(request(watch, { contentType: "application/grpc" }));
      expect(res.trailer?.get("grpc-status")).toBe("3");
    });
  });

  describe("gRPC-Web trailer frames", () => {
    const messageFrame = Buffer.concat([Buffer.of(0, 0, 0, 0, 2), Buffer.of(8, 1)]);

    function grpcWebResponse(...parts: Uint8Array[]): UniversalServerResponse {
      return { status: 200, header: new Headers({ "content-type": "application/grpc-web+proto" }), body: chunks(...parts) };
    }

    it("rewrite a last-chunk trailer frame holding grpc-status 13 'parse binary', leaving the other chunks untouched", async () => {
      const frame = trailerFrame(`grpc-status: 13\r\ngrpc-message: ${parseErrorGrpcMessage}\r\n`);
      const res = await wrapHandler(fakeHandler(publish, () => grpcWebResponse(messageFrame, frame)), readMaxBytes)(
        request(publish, { contentType: "application/grpc-web+proto" }),
      );
      expect(res.status).toBe(200);
      const parts = await collect(res.body);
      expect(parts).toHaveLength(2);
      expect(parts[0]).toBe(messageFrame);
      const trailer = trailerOf(parts[1]!);
      expect(trailer.get("grpc-status")).toBe("3");
      expect(decodeURIComponent(trailer.get("grpc-message") ?? "")).toBe(rewrittenMessage);
    });

    it("leave a trailer frame with any other status byte for byte", async () => {
      const frame = trailerFrame("grpc-status: 13\r\ngrpc-message: boom\r\n");
      const res = await wrapHandler(fakeHandler(publish, () => grpcWebResponse(messageFrame, frame)), readMaxBytes)(
        request(publish, { contentType: "application/grpc-web+proto" }),
      );
      const parts = await collect(res.body);
      expect(parts[0]).toBe(messageFrame);
      expect(parts[1]).toBe(frame);
    });

    it("leave a message frame alone even when its bytes read like a 'parse binary' trailer", async () => {
      const lookalike = trailerFrame(`grpc-status: 13\r\ngrpc-message: ${parseErrorGrpcMessage}\r\n`);
      lookalike[0] = 0x00;
      const res = await wrapHandler(fakeHandler(publish, () => grpcWebResponse(lookalike)), readMaxBytes)(request(publish, { contentType: "application/grpc-web+proto" }));
      const parts = await collect(res.body);
      expect(parts[0]).toBe(lookalike);
    });

    it("leave a chunk whose declared length does not match its size as it is", async () => {
      const frame = trailerFrame(`grpc-status: 13\r\ngrpc-message: ${parseErrorGrpcMessage}\r\n`);
      frame.writeUInt32BE(frame.length, 1);
      const res = await wrapHandler(fakeHandler(publish, () => grpcWebResponse(frame)), readMaxBytes)(request(publish, { contentType: "application/grpc-web" }));
      const parts = await collect(res.body);
      expect(parts[0]).toBe(frame);
    });
  });

  describe("a client-streaming method", () => {
    it("has its Connect error bodies, gRPC trailers and gRPC-Web trailer frames passed through unrewritten", async () => {
      expect(publishStream.methodKind).toBe("client_streaming");

      const connectAnswer = connectErrorResponse(parseErrorJson);
      const connectRes = await wrapHandler(fakeHandler(publishStream, () => connectAnswer), readMaxBytes)(request(publishStream, { contentType: "application/json" }));
      expect(connectRes).toBe(connectAnswer);
      expect((await bytesOf(connectRes.body)).toString("utf8")).toBe(parseErrorJson);

      const grpcRes = await wrapHandler(fakeHandler(publishStream, () => grpcErrorResponse("13", parseErrorGrpcMessage)), readMaxBytes)(
        request(publishStream, { contentType: "application/grpc" }),
      );
      expect(grpcRes.trailer?.get("grpc-status")).toBe("13");

      const frame = trailerFrame(`grpc-status: 13\r\ngrpc-message: ${parseErrorGrpcMessage}\r\n`);
      const webAnswer: UniversalServerResponse = {
        status: 200,
        header: new Headers({ "content-type": "application/grpc-web+proto" }),
        body: chunks(frame),
      };
      const webRes = await wrapHandler(fakeHandler(publishStream, () => webAnswer), readMaxBytes)(request(publishStream, { contentType: "application/grpc-web+proto" }));
      expect((await collect(webRes.body))[0]).toBe(frame);
    });
  });

  describe("refusals that repeat a request header whole", () => {
    const longName = `x${"y".repeat(9_999)}`;
    /** What connect-es answers for an unknown compression, and the quoted form the edge answers instead. */
    const unknown = (name: string) => `unknown compression "${name}": supported encodings are gzip,br`;
    const requoted = `unknown compression "x${"y".repeat(63)}"… (10000 characters): supported encodings are gzip,br`;

    it("quote a long value short in a gRPC trailer, for unary and client-streaming methods alike", async () => {
      for (const method of [publish, publishStream]) {
        const res = await wrapHandler(fakeHandler(method, () => grpcErrorResponse("12", encodeURIComponent(unknown(longName)))), readMaxBytes)(
          request(method, { contentType: "application/grpc", headers: { "grpc-encoding": longName } }),
        );
        expect(findTrailerError(res.trailer!)?.rawMessage, method.name).toBe(requoted);
        expect(res.trailer?.get("grpc-status")).toBe("12");
      }
    });

    it("quote a long timeout in a Connect error body, keeping its code and status", async () => {
      const timeout = "9".repeat(5_000);
      const json = JSON.stringify({ code: "invalid_argument", message: `protocol error: invalid connect timeout value: ${timeout}` });
      const res = await wrapHandler(fakeHandler(publish, () => connectErrorResponse(json, 400)), readMaxBytes)(request(publish, { contentType: "application/json", headers: { "connect-timeout-ms": timeout } }));
      expect(res.status).toBe(400);
      const err = errorFromJsonBytes(await bytesOf(res.body), undefined, new ConnectError("not an error body"));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(err.rawMessage).toBe(`protocol error: invalid connect timeout value: "${"9".repeat(64)}"… (5000 characters)`);
    });

    it("quote a Connect GET's compression from the query string, and escape a value with a quote in it", async () => {
      const name = 'gz"ip';
      const json = JSON.stringify({ code: "unimplemented", message: unknown(name) });
      const res = await wrapHandler(fakeHandler(Health.method.check, () => connectErrorResponse(json, 501)), readMaxBytes)(
        request(Health.method.check, { method: "GET", query: `?encoding=json&message=%7B%7D&compression=${encodeURIComponent(name)}` }),
      );
      const err = errorFromJsonBytes(await bytesOf(res.body), undefined, new ConnectError("not an error body"));
      expect(err.rawMessage).toBe('unknown compression "gz\\"ip": supported encodings are gzip,br');
    });

    it("leave a short plain value as connect-es wrote it, and the response untouched on a client stream", async () => {
      const answer = grpcErrorResponse("12", encodeURIComponent(unknown("snappy")));
      const res = await wrapHandler(fakeHandler(publishStream, () => answer), readMaxBytes)(request(publishStream, { contentType: "application/grpc", headers: { "grpc-encoding": "snappy" } }));
      expect(res).toBe(answer);
      expect(findTrailerError(res.trailer!)?.rawMessage).toBe(unknown("snappy"));
    });
  });

  describe("a bare 415", () => {
    const bare415 = (): UniversalServerResponse => ({ status: 415 });

    it("gets a Connect JSON body naming the content type received and every content type Publish accepts", async () => {
      const res = await wrapHandler(fakeHandler(publish, bare415), readMaxBytes)(request(publish, { contentType: "text/plain" }));
      expect(res.status).toBe(415);
      expect(res.header?.get("content-type")).toMatch(/^application\/json/);
      expect(JSON.parse((await bytesOf(res.body)).toString("utf8"))).toEqual({
        code: "invalid_argument",
        message:
          'content-type "text/plain" is not supported by Publish; use application/json, application/proto, application/grpc, application/grpc+proto, ' +
          "application/grpc+json, application/grpc-web, application/grpc-web+proto or application/grpc-web+json",
      });
    });

    it("names only the content types of the protocols the handler serves", async () => {
      const res = await wrapHandler(fakeHandler(publish, bare415, { protocolNames: ["connect"] }), readMaxBytes)(request(publish, { contentType: "text/plain" }));
      const body = JSON.parse((await bytesOf(res.body)).toString("utf8")) as { message: string };
      expect(body.message).toBe('content-type "text/plain" is not supported by Publish; use application/json or application/proto');
    });

    it("says (none) when the request had no content type", async () => {
      const res = await wrapHandler(fakeHandler(publish, bare415, { protocolNames: ["connect"] }), readMaxBytes)(request(publish));
      expect(res.status).toBe(415);
      const body = JSON.parse((await bytesOf(res.body)).toString("utf8")) as { message: string };
      expect(body.message).toBe("content-type (none) is not supported by Publish; use application/json or application/proto");
    });

    it("becomes a trailers-only gRPC answer (HTTP 200, grpc-status 3) for an application/grpc+something request", async () => {
      const res = await wrapHandler(fakeHandler(publish, bare415), readMaxBytes)(request(publish, { contentType: "application/grpc+avro" }));
      expect(res.status).toBe(200);
      expect(res.body).toBeUndefined();
      expect(res.header?.get("content-type")).toBe("application/grpc+avro");
      expect(res.header?.get("grpc-status")).toBe("3");
      const err = findTrailerError(res.header!);
      expect(err?.code).toBe(Code.InvalidArgument);
      expect(err?.rawMessage).toMatch(/^content-type "application\/grpc\+avro" is not supported by Publish; use application\/json, /);
    });

    it("is left alone when the handler gave it a body", async () => {
      const answer = connectErrorResponse('{"code":"invalid_argument","message":"own words"}', 415);
      const res = await wrapHandler(fakeHandler(publish, () => answer), readMaxBytes)(request(publish, { contentType: "text/plain" }));
      expect(res.status).toBe(415);
      expect((await bytesOf(res.body)).toString("utf8")).toBe('{"code":"invalid_argument","message":"own words"}');
    });
  });

  describe("a bare 405", () => {
    it("gets a JSON body naming the allowed methods and an Allow header", async () => {
      const res = await wrapHandler(fakeHandler(publish, () => ({ status: 405 })), readMaxBytes)(request(publish, { method: "GET" }));
      expect(res.status).toBe(405);
      expect(res.header?.get("allow")).toBe("POST");
      expect(JSON.parse((await bytesOf(res.body)).toString("utf8"))).toEqual({ code: "invalid_argument", message: 'Publish only accepts POST, not "GET"' });
    });

    it("lists every allowed method in the message and the Allow header", async () => {
      const handler = fakeHandler(publish, () => ({ status: 405 }), { allowedMethods: ["GET", "POST"] });
      const res = await wrapHandler(handler, readMaxBytes)(request(publish, { method: "DELETE" }));
      expect(res.header?.get("allow")).toBe("GET, POST");
      const body = JSON.parse((await bytesOf(res.body)).toString("utf8")) as { message: string };
      expect(body.message).toBe('Publish only accepts GET or POST, not "DELETE"');
    });
  });
});
