import { fromBinary } from "@bufbuild/protobuf";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorFromJsonBytes } from "@connectrpc/connect/protocol-connect";
import { findTrailerError } from "@connectrpc/connect/protocol-grpc";
import { describe, expect, it } from "vitest";
import { BadRequestSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { isBinaryParseError, toConnectError } from "../../src/answers/failures.js";
import { httpStatusFor } from "../../src/answers/http-status.js";
import { grpcStatusFields, notFound, renderError, rpcSurface, type Rendered } from "../../src/answers/render.js";
import { ValidationError, type Violation } from "../../src/codec/violations.js";
import { OverloadedError, ShuttingDownError } from "../../src/ingest/refusals.js";
import { StoreError } from "../../src/store/errors.js";

const violations: Violation[] = [
  { index: 3, field: "payload", description: "is nested deeper than 32 levels" },
  { index: 7, field: "topic", description: "is required" },
  { index: -1, field: "events", description: "has 11 events, at most 10 allowed per request" },
];

/** Every Connect code (connect-es has no OK: success is no error). */
const allCodes = Object.values(Code).filter((c): c is Code => typeof c === "number");

function bodyJson(answer: Rendered): unknown {
  expect(answer.body).toBeDefined();
  return JSON.parse(Buffer.from(answer.body!).toString("utf8"));
}

describe("toConnectError", () => {
  it("maps a ValidationError to invalid_argument with a google.rpc.BadRequest detail naming each field as a request path", () => {
    const err = toConnectError(new ValidationError(violations));
    expect(err.code).toBe(Code.InvalidArgument);
    const [badRequest, ...more] = err.findDetails(BadRequestSchema);
    expect(more).toHaveLength(0);
    expect(badRequest?.fieldViolations.map((v) => ({ field: v.field, description: v.description }))).toEqual([
      { field: "events[3].payload", description: "is nested deeper than 32 levels" },
      { field: "events[7].topic", description: "is required" },
      { field: "events", description: "has 11 events, at most 10 allowed per request" },
    ]);
  });

  it("keeps the ValidationError's message and keeps the error itself as the cause", () => {
    const original = new ValidationError(violations);
    const err = toConnectError(original);
    expect(err.rawMessage).toBe(original.message);
    expect(err.rawMessage).toContain("events[3].payload: is nested deeper than 32 levels");
    expect(err.cause).toBe(original);
  });

  it("maps an OverloadedError to unavailable with retry-after metadata and a google.rpc.RetryInfo detail of the same delay", () => {
    const original = new OverloadedError(2);
    const err = toConnectError(original);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe(original.message);
    expect(err.metadata.get("retry-after")).toBe("2");
    const [retryInfo] = err.findDetails(RetryInfoSchema);
    expect(retryInfo?.retryDelay?.seconds).toBe(2n);
    expect(retryInfo?.retryDelay?.nanos).toBe(0);
    expect(err.findDetails(BadRequestSchema)).toHaveLength(0);
  });

  it("maps a ShuttingDownError to unavailable with its message and no detail", () => {
    const err = toConnectError(new ShuttingDownError());
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("server is shutting down");
    expect(err.details).toHaveLength(0);
  });

  it("maps a retryable StoreError to unavailable with its message", () => {
    const err = toConnectError(new StoreError("unavailable", "database is locked, nothing stored"));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("database is locked, nothing stored");
    expect(err.metadata.get("retry-after")).toBeNull();
  });

  it.each([
    ["a failed StoreError", new StoreError("failed", "SQLITE_CORRUPT: database disk image is malformed at /var/lib/tally/aggregator.db")],
    ["an unusable StoreError", new StoreError("unusable", "file is not a database: /var/lib/tally/aggregator.db")],
    ["a plain Error", new Error("ENOENT: no such file or directory, open '/etc/secret'")],
    ["a TypeError", new TypeError("Cannot read properties of undefined (reading 'x')")],
    ["a thrown string", "SELECT * FROM events"],
    ["undefined", undefined],
  ])("maps %s to internal 'internal error' without leaking its message or any detail", (_what, thrown) => {
    const err = toConnectError(thrown);
    expect(err.code).toBe(Code.Internal);
    expect(err.rawMessage).toBe("internal error");
    expect(err.details).toHaveLength(0);
    expect([...err.metadata.keys()]).toEqual([]);
    expect(err.cause).toBe(thrown);
  });

  it("maps connect-es's internal 'parse binary: …' to invalid_argument 'cannot decode the request message: …'", () => {
    const original = new ConnectError("parse binary: premature EOF", Code.Internal);
    expect(isBinaryParseError(original)).toBe(true);
    const err = toConnectError(original);
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toBe("cannot decode the request message: premature EOF");
  });

  it("passes any other ConnectError through as the same object", () => {
    for (const original of [
      new ConnectError("parse binary: premature EOF", Code.InvalidArgument),
      new ConnectError("could not parse binary: x", Code.Internal),
      new ConnectError("the operation timed out", Code.DeadlineExceeded),
      new ConnectError("internal error", Code.Internal),
    ]) {
      expect(toConnectError(original)).toBe(original);
    }
  });
});

describe("httpStatusFor", () => {
  it("follows connect-es's mapping for every code on Connect routes", () => {
    for (const code of allCodes) expect(httpStatusFor(code, "connect")).toBe(codeToHttpStatus(code));
    expect(httpStatusFor(Code.ResourceExhausted, "connect")).toBe(429);
    expect(httpStatusFor(Code.Unimplemented, "connect")).toBe(501);
    expect(httpStatusFor(Code.InvalidArgument, "connect")).toBe(400);
    expect(httpStatusFor(Code.Unavailable, "connect")).toBe(503);
    expect(httpStatusFor(Code.Internal, "connect")).toBe(500);
  });

  it("answers 413 for resource_exhausted on REST routes and connect-es's status for every other code", () => {
    expect(httpStatusFor(Code.ResourceExhausted, "rest")).toBe(413);
    for (const code of allCodes.filter((c) => c !== Code.ResourceExhausted)) {
      expect(httpStatusFor(code, "rest")).toBe(codeToHttpStatus(code));
    }
  });
});

describe("renderError", () => {
  const refused = () => toConnectError(new ValidationError(violations));
  const overloaded = () => toConnectError(new OverloadedError(2));

  it("renders a REST body of code, message and the violations as older clients read them", () => {
    const err = refused();
    const answer = renderError(err, "rest");
    expect(answer.status).toBe(400);
    expect(bodyJson(answer)).toEqual({ code: "invalid_argument", message: err.rawMessage, violations });
  });

  it("renders a REST body without violations for an error that is not a refused batch", () => {
    const answer = renderError(toConnectError(new ShuttingDownError()), "rest");
    expect(answer.status).toBe(503);
    expect(bodyJson(answer)).toEqual({ code: "unavailable", message: "server is shutting down" });
  });

  it("uses the REST status table and takes a code name and status given instead", () => {
    const tooLarge = new ConnectError("body is over 1048576 bytes", Code.ResourceExhausted);
    expect(renderError(tooLarge, "rest").status).toBe(413);
    expect(renderError(tooLarge, "connect").status).toBe(429);
    const answer = renderError(new ConnectError("GET is not allowed", Code.InvalidArgument), "rest", {
      status: 405,
      codeName: "method_not_allowed",
      headers: { allow: "POST" },
    });
    expect(answer.status).toBe(405);
    expect(answer.headers.allow).toBe("POST");
    expect(bodyJson(answer)).toEqual({ code: "method_not_allowed", message: "GET is not allowed" });
  });

  it("writes JSON bodies with a JSON content type, their byte length and a trailing newline", () => {
    const answer = renderError(new ConnectError("café is closed", Code.Unavailable), "connect");
    expect(answer.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(answer.headers["content-length"]).toBe(String(answer.body!.byteLength));
    expect(Buffer.from(answer.body!).toString("utf8").endsWith("}\n")).toBe(true);
  });

  it("renders a Connect body with the BadRequest detail under details, typed google.rpc.BadRequest", () => {
    const err = refused();
    const answer = renderError(err, "connect");
    expect(answer.status).toBe(400);
    const body = bodyJson(answer) as { code: string; message: string; details: { type: string; value: string }[]; violations?: unknown };
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toBe(err.rawMessage);
    expect(body.violations).toBeUndefined();
    expect(body.details).toHaveLength(1);
    expect(body.details[0]!.type).toBe("google.rpc.BadRequest");
    const badRequest = fromBinary(BadRequestSchema, base64Decode(body.details[0]!.value));
    expect(badRequest.fieldViolations.map((v) => v.field)).toEqual(["events[3].payload", "events[7].topic", "events"]);
  });

  it("renders a Connect body a Connect client reads back as the same error and details", () => {
    const read = errorFromJsonBytes(renderError(refused(), "connect").body!, undefined, new ConnectError("not an error body"));
    expect(read.code).toBe(Code.InvalidArgument);
    expect(read.findDetails(BadRequestSchema)[0]?.fieldViolations[0]?.field).toBe("events[3].payload");
  });

  it("renders gRPC as trailers-only: HTTP 200, no body, grpc-status and a percent-encoded grpc-message", () => {
    const answer = renderError(new ConnectError("events[3].payload: is 100% wrong", Code.InvalidArgument), "grpc");
    expect(answer.status).toBe(200);
    expect(answer.body).toBeUndefined();
    expect(answer.headers["grpc-status"]).toBe("3");
    expect(answer.headers["grpc-message"]).toBe("events%5B3%5D.payload%3A%20is%20100%25%20wrong");
    expect(answer.headers["content-type"]).toBe("application/grpc");
    expect(answer.headers["grpc-status-details-bin"]).toBeUndefined();
  });

  it("renders gRPC details as grpc-status-details-bin, which a gRPC client reads back", () => {
    const err = refused();
    const answer = renderError(err, "grpc", { status: 400, contentType: "application/grpc-web+proto" });
    expect(answer.status).toBe(200);
    expect(answer.headers["content-type"]).toBe("application/grpc-web+proto");
    expect(answer.headers["grpc-status-details-bin"]).toBeDefined();
    const read = findTrailerError(new Headers(answer.headers));
    expect(read?.code).toBe(Code.InvalidArgument);
    expect(read?.rawMessage).toBe(err.rawMessage);
    expect(read?.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["events[3].payload", "events[7].topic", "events"]);
  });

  it("sends the error's metadata (retry-after) as a header in the REST, Connect and gRPC forms", () => {
    for (const surface of ["rest", "connect", "grpc"] as const) {
      const answer = renderError(overloaded(), surface);
      expect(answer.headers["retry-after"], surface).toBe("2");
    }
    expect(renderError(overloaded(), "rest").status).toBe(503);
    expect(renderError(overloaded(), "grpc").headers["grpc-status"]).toBe("14");
  });
});

describe("grpcStatusFields", () => {
  it("answers grpc-status 0 alone for success", () => {
    expect(grpcStatusFields(undefined)).toEqual({ "grpc-status": "0" });
  });

  it("answers the status, the percent-encoded message and the metadata of an error", () => {
    const fields = grpcStatusFields(toConnectError(new OverloadedError(5)));
    expect(fields["grpc-status"]).toBe("14");
    expect(fields["retry-after"]).toBe("5");
    expect(decodeURIComponent(fields["grpc-message"]!)).toBe("server is overloaded: ingest queue is full, retry in 5s");
    expect(fields["grpc-status-details-bin"]).toBeDefined();
  });
});

describe("rpcSurface", () => {
  it("reads gRPC and gRPC-Web content types as gRPC and everything else as Connect", () => {
    for (const grpc of ["application/grpc", "application/grpc+proto", "application/grpc+avro", "Application/GRPC-Web+json", "application/grpc-web-text", "application/grpc; charset=utf-8"]) {
      expect(rpcSurface(grpc), grpc).toBe("grpc");
    }
    for (const connect of [undefined, "", "application/json", "application/proto", "application/connect+json", "application/grpcfoo", "text/plain"]) {
      expect(rpcSurface(connect), String(connect)).toBe("connect");
    }
  });
});

describe("notFound", () => {
  it("answers unimplemented for an RPC-shaped path and not_found for any other", () => {
    const rpc = notFound("POST", "/aggregator.v1.AggregatorService/Frobnicate");
    expect(rpc.rpc).toBe(true);
    expect(rpc.err.code).toBe(Code.Unimplemented);
    expect(rpc.err.rawMessage).toBe('no method "Frobnicate" in service "aggregator.v1.AggregatorService" on this server');
    const other = notFound("GET", "/nowhere");
    expect(other.rpc).toBe(false);
    expect(other.err.code).toBe(Code.NotFound);
    expect(other.err.rawMessage).toBe('no route for "GET /nowhere"');
  });
});
