import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { toConnectError } from "../answers/failures.js";
import { heapBytesPerWireByte } from "../limits/memory-budget.js";
import { JsonWeigher } from "../codec/json-weight.js";
import { holdJsonWeight } from "../limits/json-share.js";
import { leaseIn, type RequestLease } from "../limits/request-lease.js";

/** Bytes of an envelope's prefix (gRPC, gRPC-Web, Connect streaming): one flags byte, a 4-byte big-endian length. */
const prefixBytes = 5;
const compressedFlag = 0x01;

/**
 * What a stream's last message keeps referenced besides its own bytes:
 * the chunk connect-es's reader last saw, a view into one of the HTTP/2
 * session's socket reads (64 KiB each).
 */
const pinnedReadBufferBytes = 64 * 1024;

/** Content types whose messages are JSON text, to be weighed before connect-es parses them. */
const jsonContentType = /^application\/(json|grpc\+json|grpc-web\+json|connect\+json)\s*(;|$)/i;

/** Content types whose body is a sequence of enveloped messages; the others (Connect unary) are one plain message. */
const envelopedContentType = /^application\/(grpc|grpc-web|connect\+)/i;

/**
 * Makes an RPC's request body take its share of the memory budget before
 * it is read:
 *
 * - enveloped bodies (gRPC, gRPC-Web, Connect streams, unary or not) are read
 *   a message at a time: the length prefix first, then a wait for that
 *   message's share, then its bytes. While the share is not there the body is
 *   not read, so HTTP/2 flow control stops the client. A stream's handler
 *   gives each message's share back once the message has committed; the rest
 *   is given back when the call ends.
 * - a plain Connect unary body takes its Content-Length's share (the largest
 *   message's without one) before it is read, or the call is refused with
 *   `unavailable` and a retry hint.
 *
 * connect-es asks for more bytes only while it reads a message, so a
 * message's prefix is read only once the one before it has been taken.
 */
export function budgetedBody(req: UniversalServerRequest, readMaxBytes: number): UniversalServerRequest {
  const body = req.body;
  if (!isByteStream(body) || req.contextValues === undefined) return req;
  const lease = leaseIn(req.contextValues);
  const contentType = req.header.get("content-type") ?? "";
  const json = jsonContentType.test(contentType);
  const gated = envelopedContentType.test(contentType)
    ? givingBackIfAbandoned(envelopes(body, lease, readMaxBytes, req.signal, json), lease)
    : plainBody(body, lease, Math.min(Number(req.header.get("content-length") ?? readMaxBytes) || readMaxBytes, readMaxBytes), json);
  return { ...req, body: gated };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

async function* plainBody(body: AsyncIterable<Uint8Array>, lease: RequestLease, bytes: number, json: boolean): AsyncGenerator<Uint8Array> {
  try {
    lease.hold(bytes * heapBytesPerWireByte);
  } catch (err) {
    throw toConnectError(err);
  }
  if (!json) {
    yield* body;
    return;
  }
  // connect-es parses a unary body once it has all of it: weigh it on the way, and settle before its end is passed on.
  const weigher = new JsonWeigher();
  let length = 0;
  let last: Uint8Array | undefined;
  for await (const chunk of body) {
    if (last !== undefined) yield last;
    weigher.push(chunk);
    length += chunk.length;
    last = chunk;
  }
  try {
    holdJsonWeight(lease, weigher, length);
  } catch (err) {
    throw toConnectError(err);
  }
  if (last !== undefined) yield last;
}

/**
 * The chunks of an enveloped body passed on as they come, except that each
 * message's prefix is held back until its share is in. Nothing is copied
 * but the prefixes: connect-es copies each message into a buffer of its own.
 */
async function* envelopes(body: AsyncIterable<Uint8Array>, lease: RequestLease, readMaxBytes: number, signal: AbortSignal, json: boolean): AsyncGenerator<Uint8Array> {
  let prefix: Uint8Array = new Uint8Array(0);
  // Bytes of the current message still to pass on, and its weight if it is JSON text.
  let remaining = 0;
  let declared = 0;
  let weigher: JsonWeigher | undefined;
  for await (const chunk of body) {
    let at = 0;
    while (at < chunk.length) {
      if (remaining > 0) {
        const end = Math.min(chunk.length, at + remaining);
        const piece = chunk.subarray(at, end);
        remaining -= end - at;
        at = end;
        if (weigher !== undefined) {
          weigher.push(piece);
          // connect-es parses a message once it has all of it: settle its weight before its last byte is passed on.
          if (remaining === 0) holdWeight(lease, weigher, declared);
        }
        yield piece;
        continue;
      }
      const taken = Math.min(prefixBytes - prefix.length, chunk.length - at);
      prefix = joined([prefix, chunk.subarray(at, at + taken)], prefix.length + taken);
      at += taken;
      if (prefix.length < prefixBytes) break;
      declared = new DataView(prefix.buffer, prefix.byteOffset, prefixBytes).getUint32(1);
      if (declared > readMaxBytes) {
        // Hand it on: connect-es refuses it by its prefix (resource_exhausted) without reading it.
        yield prefix;
        return;
      }
      // A compressed message may inflate to readMaxBytes.
      const decoded = (prefix[0]! & compressedFlag) !== 0 ? readMaxBytes : declared;
      try {
        await lease.holdMessage((prefixBytes + decoded) * (heapBytesPerWireByte - 1), prefixBytes + declared + pinnedReadBufferBytes, signal);
      } catch (err) {
        throw toConnectError(err);
      }
      // Compressed text is weighed by its size only: its bytes here are not JSON.
      weigher = json && (prefix[0]! & compressedFlag) === 0 ? new JsonWeigher() : undefined;
      yield prefix;
      prefix = new Uint8Array(0);
      remaining = declared;
    }
  }
  // An incomplete prefix: hand it on, connect-es answers for it.
  if (prefix.length > 0) yield prefix;
}

/**
 * A body that gives back its call's shares if connect-es gives up on it (a
 * message it refused, a decompression limit): the message being read will
 * never reach the handler, so what the call held for it comes back now
 * rather than when the client ends its stream.
 */
async function* givingBackIfAbandoned(body: AsyncGenerator<Uint8Array>, lease: RequestLease): AsyncGenerator<Uint8Array> {
  let finished = false;
  try {
    yield* body;
    finished = true;
  } finally {
    if (!finished) lease.end();
  }
}

function holdWeight(lease: RequestLease, weigher: JsonWeigher, wireBytes: number): void {
  try {
    holdJsonWeight(lease, weigher, wireBytes);
  } catch (err) {
    throw toConnectError(err);
  }
}

function joined(chunks: Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
