import type { UniversalServerRequest } from "@connectrpc/connect/protocol";
import { toConnectError } from "../answers/failures.js";
import { heapBytesPerWireByte } from "../limits/memory-budget.js";
import { leaseIn, type RequestLease } from "../limits/request-lease.js";

/** Bytes of an envelope's prefix (gRPC, gRPC-Web, Connect streaming): one flags byte, a 4-byte big-endian length. */
const prefixBytes = 5;
const compressedFlag = 0x01;

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
 * Each message is handed on whole, in one chunk, so connect-es asks for the
 * next one only once it wants the next message.
 */
export function budgetedBody(req: UniversalServerRequest, readMaxBytes: number): UniversalServerRequest {
  const body = req.body;
  if (!isByteStream(body) || req.contextValues === undefined) return req;
  const lease = leaseIn(req.contextValues);
  const contentType = req.header.get("content-type") ?? "";
  const gated = envelopedContentType.test(contentType)
    ? envelopes(body, lease, readMaxBytes, req.signal)
    : plainBody(body, lease, Math.min(Number(req.header.get("content-length") ?? readMaxBytes) || readMaxBytes, readMaxBytes));
  return { ...req, body: gated };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

async function* plainBody(body: AsyncIterable<Uint8Array>, lease: RequestLease, bytes: number): AsyncGenerator<Uint8Array> {
  try {
    lease.hold(bytes * heapBytesPerWireByte);
  } catch (err) {
    throw toConnectError(err);
  }
  yield* body;
}

async function* envelopes(body: AsyncIterable<Uint8Array>, lease: RequestLease, readMaxBytes: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  let buffered: Uint8Array[] = [];
  let length = 0;
  // The message being read: its whole size once its prefix is in and its share held.
  let want: number | undefined;
  for await (const chunk of body) {
    buffered.push(chunk);
    length += chunk.length;
    for (;;) {
      if (want === undefined) {
        if (length < prefixBytes) break;
        const head = joined(buffered, length);
        buffered = [head];
        const declared = new DataView(head.buffer, head.byteOffset, prefixBytes).getUint32(1);
        if (declared > readMaxBytes) {
          // Hand it on: connect-es refuses it by its prefix (resource_exhausted) without reading it.
          yield head;
          return;
        }
        // A compressed message may inflate to readMaxBytes.
        const decoded = (head[0]! & compressedFlag) !== 0 ? readMaxBytes : declared;
        try {
          await lease.holdMessage((prefixBytes + decoded) * heapBytesPerWireByte, signal);
        } catch (err) {
          throw toConnectError(err);
        }
        want = prefixBytes + declared;
      }
      if (length < want) break;
      const all = joined(buffered, length);
      yield all.subarray(0, want);
      const rest = all.subarray(want);
      buffered = rest.length > 0 ? [rest] : [];
      length = rest.length;
      want = undefined;
    }
  }
  // An incomplete message: hand on what there is, connect-es answers for it.
  if (length > 0) yield joined(buffered, length);
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
