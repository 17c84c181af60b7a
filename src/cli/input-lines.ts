import { InputError } from "./failure.js";

/** One line of input as bytes, with its 1-based number. */
export interface InputLine {
  line: number;
  bytes: Buffer;
}

/**
 * A line longer than this is refused rather than held: the server's largest
 * message is 4 MiB by default, so no single event needs more, and a
 * runaway line (a binary file, a JSON document on one line) must not take
 * the memory with it.
 */
export const maxLineBytes = 64 * 1024 * 1024;

/**
 * Splits a byte stream into lines (LF or CRLF) as the bytes arrive, holding
 * at most one line beyond the current chunk, so a file of any size is read
 * in bounded memory. Lines stay bytes: their text is checked as UTF-8 by the
 * same rules as the server (a decoder would replace bad bytes silently).
 */
export async function* inputLines(chunks: AsyncIterable<Buffer>, firstLine = 1, limit = maxLineBytes): AsyncGenerator<InputLine> {
  let line = firstLine;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const chunk of chunks) {
    let start = 0;
    for (let end = chunk.indexOf(10); end !== -1; end = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, end);
      const bytes = pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
      pending = [];
      pendingBytes = 0;
      yield { line: line++, bytes: withoutCarriageReturn(bytes) };
      start = end + 1;
    }
    if (start < chunk.length) {
      pendingBytes += chunk.length - start;
      if (pendingBytes > limit) throw new InputError(`line ${line}: longer than ${limit} bytes; is the input NDJSON?`);
      pending.push(chunk.subarray(start));
    }
  }
  if (pending.length > 0) yield { line, bytes: withoutCarriageReturn(Buffer.concat(pending)) };
}

function withoutCarriageReturn(bytes: Buffer): Buffer {
  return bytes.length > 0 && bytes[bytes.length - 1] === 13 ? bytes.subarray(0, bytes.length - 1) : bytes;
}
