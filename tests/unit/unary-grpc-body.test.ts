import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UnaryGrpcBody, grpcFrame } from "../../src/rpc/unary-grpc-body.js";

/** connect-es's words for the same faults (its envelope reader, read limit and unary invocation). */
const missingMessage = "protocol error: missing input message for unary method";
const extraMessage = "protocol error: received extra input message for unary method";
const incompleteEnvelope = "protocol error: incomplete envelope";
const compressedEnvelope = "received compressed envelope, but do not know how to decompress";

/** A 5-byte gRPC prefix: flags, then the declared length, big-endian. */
function prefix(flags: number, declared: number): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(declared, 1);
  return head;
}

/** The body fed chunk by chunk; fails the test when a push already refuses it. */
function bodyOf(readMaxBytes: number, ...chunks: Buffer[]): UnaryGrpcBody {
  const body = new UnaryGrpcBody(readMaxBytes);
  for (const chunk of chunks) expect(body.push(chunk)).toBeUndefined();
  return body;
}

/** The ConnectError message() throws. */
function refusalOf(body: UnaryGrpcBody): ConnectError {
  try {
    body.message();
  } catch (err) {
    if (err instanceof ConnectError) return err;
    throw err;
  }
  throw new Error("expected message() to throw a ConnectError");
}

const message = Buffer.from("a protobuf message, as far as the body is concerned");

describe("grpcFrame", () => {
  it("prefixes a message with an uncompressed flag and its length, big-endian", () => {
    const frame = grpcFrame(Uint8Array.of(7, 8, 9));
    expect([...frame]).toEqual([0, 0, 0, 0, 3, 7, 8, 9]);
  });
});

describe("UnaryGrpcBody", () => {
  it("answers the one message of a body that arrives whole", () => {
    const body = bodyOf(1024, grpcFrame(message));
    expect(Buffer.from(body.message())).toEqual(message);
  });

  it("answers the one message of a body that arrives one byte at a time", () => {
    const frame = grpcFrame(message);
    const body = bodyOf(1024, ...[...frame].map((byte) => Buffer.of(byte)));
    expect(Buffer.from(body.message())).toEqual(message);
  });

  it("answers the same message however the body is cut into chunks", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 10 }), (bytes, cuts) => {
        const frame = grpcFrame(bytes);
        const points = [...new Set(cuts.map((c) => c % (frame.length + 1)))].sort((a, b) => a - b);
        const chunks = [0, ...points].map((from, i) => frame.subarray(from, [...points, frame.length][i]));
        const body = new UnaryGrpcBody(1024);
        for (const chunk of chunks) expect(body.push(chunk)).toBeUndefined();
        expect(Buffer.from(body.message())).toEqual(Buffer.from(bytes));
      }),
    );
  });

  it("answers an empty message when the prefix declares zero bytes", () => {
    const body = bodyOf(1024, grpcFrame(new Uint8Array(0)));
    expect(body.message().length).toBe(0);
  });

  it("accepts a message of exactly readMaxBytes", () => {
    const body = bodyOf(message.length, grpcFrame(message));
    expect(Buffer.from(body.message())).toEqual(message);
  });

  it("refuses a prefix declaring more than readMaxBytes as soon as the prefix is complete, with connect-es's code and words", () => {
    const body = new UnaryGrpcBody(10);
    const head = prefix(0, 11);
    expect(body.push(head.subarray(0, 3))).toBeUndefined();
    const refusal = body.push(head.subarray(3));
    expect(refusal).toBeInstanceOf(ConnectError);
    expect(refusal?.code).toBe(Code.ResourceExhausted);
    expect(refusal?.rawMessage).toBe("message size 11 is larger than configured readMaxBytes 10");
  });

  it("refuses an oversized declaration before any of the message's bytes arrive", () => {
    const refusal = new UnaryGrpcBody(1024).push(prefix(0, 0xffffffff));
    expect(refusal?.code).toBe(Code.ResourceExhausted);
    expect(refusal?.rawMessage).toBe("message size 4294967295 is larger than configured readMaxBytes 1024");
  });

  it("refuses an empty body as a missing input message (unimplemented)", () => {
    const refusal = refusalOf(new UnaryGrpcBody(1024));
    expect(refusal.code).toBe(Code.Unimplemented);
    expect(refusal.rawMessage).toBe(missingMessage);
  });

  it("refuses a body ending inside the prefix as an incomplete envelope (invalid_argument)", () => {
    const refusal = refusalOf(bodyOf(1024, prefix(0, 4).subarray(0, 3)));
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe(incompleteEnvelope);
  });

  it("refuses a body ending before the declared length as an incomplete envelope (invalid_argument)", () => {
    const refusal = refusalOf(bodyOf(1024, prefix(0, 4), Buffer.of(1, 2, 3)));
    expect(refusal.code).toBe(Code.InvalidArgument);
    expect(refusal.rawMessage).toBe(incompleteEnvelope);
  });

  it("refuses a message followed by fewer bytes than a prefix as an incomplete envelope (invalid_argument)", () => {
    for (let stray = 1; stray < 5; stray++) {
      const refusal = refusalOf(bodyOf(1024, grpcFrame(message), Buffer.alloc(stray)));
      expect(refusal.code).toBe(Code.InvalidArgument);
      expect(refusal.rawMessage).toBe(incompleteEnvelope);
    }
  });

  it("refuses a second message as soon as its prefix arrives (unimplemented, extra input message)", () => {
    const body = new UnaryGrpcBody(1024);
    expect(body.push(grpcFrame(message))).toBeUndefined();
    const second = grpcFrame(Buffer.from("second"));
    expect(body.push(second.subarray(0, 4))).toBeUndefined();
    const refusal = body.push(second.subarray(4, 5));
    expect(refusal?.code).toBe(Code.Unimplemented);
    expect(refusal?.rawMessage).toBe(extraMessage);
  });

  it("refuses two messages arriving in one chunk on that push, and again when asked for the message", () => {
    const body = new UnaryGrpcBody(1024);
    const refusal = body.push(Buffer.concat([grpcFrame(message), grpcFrame(message)]));
    expect(refusal?.code).toBe(Code.Unimplemented);
    expect(refusal?.rawMessage).toBe(extraMessage);
    const again = refusalOf(body);
    expect(again.code).toBe(Code.Unimplemented);
    expect(again.rawMessage).toBe(extraMessage);
  });

  it("refuses a message with the compressed flag as one it cannot decompress (internal)", () => {
    const frame = grpcFrame(message);
    frame[0] = 0x01;
    const refusal = refusalOf(bodyOf(1024, frame));
    expect(refusal.code).toBe(Code.Internal);
    expect(refusal.rawMessage).toBe(compressedEnvelope);
  });
});
