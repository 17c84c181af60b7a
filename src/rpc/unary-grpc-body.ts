import { Code, ConnectError } from "@connectrpc/connect";

/** Bytes of a gRPC message prefix: one flags byte and a 4-byte big-endian length. */
const prefixBytes = 5;
const compressedFlag = 0x01;

/**
 * The body of a unary gRPC call: exactly one uncompressed message. Memory is
 * bounded by readMaxBytes: a prefix declaring more is refused as soon as it
 * arrives, and bytes beyond the first message and the next prefix mean a
 * second message, which a unary call may not have. Refusals carry connect-es's
 * codes and words for the same faults, but for one: a second message is
 * refused as soon as its prefix is in, where connect-es waits for its whole
 * envelope (and answers "incomplete envelope" if it never comes).
 */
export class UnaryGrpcBody {
  private readonly chunks: Buffer[] = [];
  private length = 0;
  private declared: number | undefined;

  constructor(private readonly readMaxBytes: number) {}

  /** The message's length once its prefix is in, for its share of the memory budget. */
  get declaredBytes(): number | undefined {
    return this.declared;
  }

  /** Takes one chunk; answers the error to fail the call with, if the body already cannot be valid. */
  push(chunk: Buffer): ConnectError | undefined {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.declared === undefined && this.length >= prefixBytes) {
      this.declared = this.joined().readUInt32BE(1);
      if (this.declared > this.readMaxBytes) {
        return new ConnectError(`message size ${this.declared} is larger than configured readMaxBytes ${this.readMaxBytes}`, Code.ResourceExhausted);
      }
    }
    if (this.declared !== undefined && this.length >= 2 * prefixBytes + this.declared) return extraMessage();
    return undefined;
  }

  /** The one message, once the body has ended; throws what connect-es would answer for any other body. */
  message(): Uint8Array {
    if (this.length === 0) throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
    const body = this.joined();
    if (this.declared === undefined || body.length < prefixBytes + this.declared) throw incompleteEnvelope();
    if ((body[0]! & compressedFlag) !== 0) throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
    const rest = body.length - prefixBytes - this.declared;
    if (rest > 0) throw rest < prefixBytes ? incompleteEnvelope() : extraMessage();
    return body.subarray(prefixBytes);
  }

  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks.splice(0, this.chunks.length, Buffer.concat(this.chunks, this.length));
    return this.chunks[0] ?? Buffer.alloc(0);
  }
}

function incompleteEnvelope(): ConnectError {
  return new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
}

function extraMessage(): ConnectError {
  return new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
}

/** One gRPC message frame: the prefix (uncompressed) and the message. */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(prefixBytes + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, prefixBytes);
  return frame;
}
