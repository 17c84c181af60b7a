import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import fc from "fast-check";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import { exactJsonBody } from "../../src/rpc/exact-json-body.js";

const { publish, publishStream, events: eventsMethod } = AggregatorService.method;

const good = (id = "e1") => Buffer.from(`{"events":[{"topic":"t","event_id":"${id}","payload":{"n":1.5}}]}`);
const inexact = Buffer.from('{"events":[{"topic":"t"},{"topic":"t","payload":{"a":{"n":9007199254740993}}}]}');

function envelope(message: Uint8Array, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags;
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

function request(contentType: string, chunks: Uint8Array[], headers: Record<string, string> = {}): UniversalServerRequest {
  return {
    httpVersion: "2.0",
    url: "http://localhost/aggregator.v1.AggregatorService/Publish",
    method: "POST",
    header: new Headers({ "content-type": contentType, ...headers }),
    body: (async function* () {
      yield* chunks;
    })(),
    signal: new AbortController().signal,
  };
}

/** Reads a wrapped body as connect-es would: the bytes handed on, then the error that ended it, if any. */
async function read(req: UniversalServerRequest, method: DescMethod): Promise<{ bytes: Buffer; err: ConnectError | undefined }> {
  const body = exactJsonBody(req, method).body as AsyncIterable<Uint8Array>;
  const chunks: Uint8Array[] = [];
  try {
    for await (const chunk of body) chunks.push(chunk);
    return { bytes: Buffer.concat(chunks), err: undefined };
  } catch (err) {
    if (!(err instanceof ConnectError)) throw err;
    return { bytes: Buffer.concat(chunks), err };
  }
}

function fieldsOf(err: ConnectError | undefined): string[] {
  return (err?.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []).map((v) => v.field);
}

/** Bytes cut into chunks at the given points. */
function chunked(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const point of [...points, bytes.length]) {
    chunks.push(bytes.subarray(from, point));
    from = point;
  }
  return chunks;
}

describe("exactJsonBody", () => {
  it("hands a Connect JSON Publish on unchanged, and refuses an inexact number once the body is whole, as a refused batch", async () => {
    const passed = await read(request("application/json", [good().subarray(0, 10), good().subarray(10)]), publish);
    expect(passed).toEqual({ bytes: good(), err: undefined });

    const { bytes, err } = await read(request("application/json; charset=utf-8", [inexact]), publish);
    expect(bytes).toEqual(inexact);
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toMatch(/^invalid batch, none of its events stored \(1 invalid event\): events\[1\]\.payload\.a\.n: number 9007199254740993 cannot be stored exactly/);
    expect(fieldsOf(err)).toEqual(["events[1].payload.a.n"]);
  });

  it("looks into a compressed body", async () => {
    const { err } = await read(request("application/json", [gzipSync(inexact)], { "content-encoding": "gzip" }), publish);
    expect(fieldsOf(err)).toEqual(["events[1].payload.a.n"]);
    const passed = await read(request("application/json", [gzipSync(good())], { "content-encoding": "gzip" }), publish);
    expect(passed).toEqual({ bytes: gzipSync(good()), err: undefined });
  });

  it("refuses bytes that are not UTF-8, which connect-es would have decoded to U+FFFD", async () => {
    const text = Buffer.concat([Buffer.from('{"events":[{"topic":"t'), Buffer.from([0xff]), Buffer.from('"}]}')]);
    const { err } = await read(request("application/json", [text]), publish);
    expect(fieldsOf(err)).toEqual(["events[0].topic"]);
  });

  it("checks each message of a stream before handing on the chunk that completes it, however the bytes are cut", async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 4 }), fc.array(fc.nat(), { maxLength: 12 }), async (bad, cuts) => {
        const messages = [0, 1, 2, 3, 4].map((i) => (i === bad ? inexact : good(`e${i}`)));
        const stream = Buffer.concat(messages.map((m) => envelope(m)));
        const { bytes, err } = await read(request("application/connect+json", chunked(stream, cuts)), publishStream);
        // Every message before the bad one reaches the handler whole; nothing of the bad one completes.
        const before = Buffer.concat(messages.slice(0, bad).map((m) => envelope(m)));
        expect(bytes.subarray(0, before.length)).toEqual(before);
        expect(bytes.length).toBeLessThan(before.length + envelope(inexact).length);
        expect(fieldsOf(err)).toEqual([`messages[${bad}].events[1].payload.a.n`]);
      }),
      { numRuns: 300, seed: 20261207 },
    );
  });

  it("reads gRPC and gRPC-Web with the JSON codec, compressed envelopes too, naming no message on a unary call", async () => {
    for (const contentType of ["application/grpc+json", "application/grpc-web+json"]) {
      const { err } = await read(request(contentType, [envelope(inexact)]), publish);
      expect(fieldsOf(err)).toEqual(["events[1].payload.a.n"]);
      const compressed = await read(request(contentType, [envelope(gzipSync(inexact), 1)], { "grpc-encoding": "gzip" }), publishStream);
      expect(fieldsOf(compressed.err)).toEqual(["messages[0].events[1].payload.a.n"]);
    }
  });

  it("leaves other requests as they are: binary codecs, other methods", () => {
    for (const [contentType, method] of [
      ["application/proto", publish],
      ["application/grpc", publish],
      ["application/connect+proto", publishStream],
      ["application/json", eventsMethod],
    ] as const) {
      const req = request(contentType, [inexact]);
      expect(exactJsonBody(req, method)).toBe(req);
    }
  });
});
