import type { DescMethod } from "@bufbuild/protobuf";
import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { Buffer } from "node:buffer";
import { AggregatorService } from "../../gen/aggregator/v1/aggregator_pb.js";
import { toConnectError } from "../answers/failures.js";
import { checkJsonText } from "../codec/json-text-check.js";
import { ValidationError } from "../codec/violations.js";

/**
 * JSON publish requests over RPC (Connect JSON, gRPC and gRPC-Web with the
 * JSON codec), checked as text before protobuf-es parses them. protobuf-es
 * rounds a number literal to a double and connect-es decodes bytes that are
 * not UTF-8 to U+FFFD, both before our decoders see the message; so the body
 * is wrapped here, and each message's bytes go through the same check as a
 * REST body (codec/json-text-check.ts). A refused message ends the call with
 * `invalid_argument` and its violations as google.rpc.BadRequest, like any
 * invalid batch; on a stream, messages before it were handed on whole and
 * stay committed, and its violations name it ("messages[3].events[0]…").
 *
 * Binary protobuf needs no such check: it carries doubles, exact by
 * construction, and the binary decoder keeps bytes that are not UTF-8
 * visible (codec/wire-events.ts).
 */

/** Connect unary JSON: the body is the message. */
const wholeJson = /^application\/json\s*(;|$)/i;

/** The JSON codec of the enveloped protocols, and the header naming the compression of their envelopes. */
const envelopedJson: [RegExp, string][] = [
  [/^application\/connect\+json\s*(;|$)/i, "connect-content-encoding"],
  [/^application\/grpc(-web)?\+json\s*(;|$)/i, "grpc-encoding"],
];

/**
 * A compressed message is decompressed for the check up to this size (the
 * default --max-message-bytes). This module does not know the configured
 * limit, and decompressing without one would let a small compressed body
 * cost any amount of memory; a larger one goes on unchecked and meets
 * connect-es's own limit.
 */
const maxInspectedBytes = 4 * 1024 * 1024;

/** The compressions connect-node accepts, by the name their header gives. */
const compressions = new Map([compressionGzip, compressionBrotli].map((c) => [c.name, c]));

/** The request as it was, its body checked as it is read when it is a JSON Publish or PublishStream. */
export function exactJsonBody(req: UniversalServerRequest, method: DescMethod): UniversalServerRequest {
  if (method.parent.typeName !== AggregatorService.typeName || !isPublish(method) || !isByteStream(req.body)) return req;
  const contentType = req.header.get("content-type") ?? "";
  if (wholeJson.test(contentType)) return { ...req, body: checkedWhole(req.body, req.header.get("content-encoding")) };
  const enveloped = envelopedJson.find(([type]) => type.test(contentType));
  if (enveloped === undefined) return req;
  const streaming = method.methodKind !== "unary";
  return { ...req, body: checkedEnvelopes(req.body, req.header.get(enveloped[1]), streaming) };
}

function isPublish(method: DescMethod): boolean {
  return method.name === AggregatorService.method.publish.name || method.name === AggregatorService.method.publishStream.name;
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** A body that is one message: handed on as it arrives, checked once whole, before its end is. */
async function* checkedWhole(body: AsyncIterable<Uint8Array>, encoding: string | null): AsyncGenerator<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) {
    chunks.push(chunk);
    yield chunk;
  }
  await checkMessage(joined(chunks), encoding !== null && encoding !== "identity", encoding, undefined);
}

/**
 * A body of envelopes (flags byte, 4-byte big-endian length, message): each
 * message is checked once its last byte has arrived, before the chunk
 * holding that byte is handed on; when one is refused, the part of the chunk
 * before it still is, so every message before it reaches the handler.
 */
async function* checkedEnvelopes(body: AsyncIterable<Uint8Array>, encoding: string | null, streaming: boolean): AsyncGenerator<Uint8Array> {
  const envelopes = new EnvelopeSplitter();
  let message = 0;
  for await (const chunk of body) {
    for (const envelope of envelopes.push(chunk)) {
      // Flags other than "compressed" (0x01) are no request message; connect-es answers them.
      if ((envelope.flags & ~1) !== 0) continue;
      try {
        await checkMessage(envelope.data, (envelope.flags & 1) === 1, encoding, streaming ? message : undefined);
      } catch (err) {
        if (envelope.start > 0) yield chunk.subarray(0, envelope.start);
        throw err;
      }
      message++;
    }
    yield chunk;
  }
}

/** Checks one message's JSON text; throws the ConnectError a refused batch is answered with. */
async function checkMessage(data: Uint8Array, compressed: boolean, encoding: string | null, message: number | undefined): Promise<void> {
  let text = data;
  if (compressed) {
    const compression = compressions.get(encoding ?? "");
    // Unknown or undecodable compression, or too large to look at here: connect-es refuses or reads it.
    if (compression === undefined) return;
    try {
      text = await compression.decompress(data, maxInspectedBytes);
    } catch {
      return;
    }
  }
  try {
    checkJsonText(text, "protobuf", message);
  } catch (err) {
    throw err instanceof ValidationError ? toConnectError(err) : err;
  }
}

/** One envelope, whole; `start` is where it began in the chunk that completed it (0 or less when in an earlier one). */
interface Envelope {
  flags: number;
  data: Uint8Array;
  start: number;
}

/** Splits a byte stream into envelopes as chunks arrive, keeping only the unfinished one. */
class EnvelopeSplitter {
  private readonly header = Buffer.alloc(5);
  private headerBytes = 0;
  private remaining = 0;
  private parts: Uint8Array[] = [];
  /** Where the unfinished envelope began, relative to the chunk being read. */
  private start = 0;

  /** The envelopes that end in this chunk. */
  push(chunk: Uint8Array): Envelope[] {
    const done: Envelope[] = [];
    let i = 0;
    while (i < chunk.length) {
      if (this.headerBytes < 5) {
        if (this.headerBytes === 0) this.start = i;
        const take = Math.min(5 - this.headerBytes, chunk.length - i);
        this.header.set(chunk.subarray(i, i + take), this.headerBytes);
        this.headerBytes += take;
        i += take;
        if (this.headerBytes < 5) break;
        this.remaining = this.header.readUInt32BE(1);
      }
      const take = Math.min(this.remaining, chunk.length - i);
      if (take > 0) this.parts.push(chunk.subarray(i, i + take));
      this.remaining -= take;
      i += take;
      if (this.remaining > 0) break;
      done.push({ flags: this.header[0]!, data: joined(this.parts), start: this.start });
      this.headerBytes = 0;
      this.parts = [];
    }
    if (this.headerBytes > 0) this.start -= chunk.length;
    return done;
  }
}

function joined(parts: Uint8Array[]): Uint8Array {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}
