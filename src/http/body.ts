import { Code, ConnectError } from "@connectrpc/connect";
import { heapBytesPerWireByte } from "../limits/memory-budget.js";
import { leaseOf } from "../limits/request-lease.js";
import type { HttpRequest } from "./route-table.js";

/**
 * A request body, whole, refused with `unavailable` when the memory budget
 * cannot hold it, and with `resource_exhausted` as soon as it is
 * known to exceed maxBytes: from its Content-Length before reading, or while
 * it arrives. The rest of an over-limit body is left to early-answers.ts,
 * which reads and discards it so the client still gets the answer.
 */
export function readBody(req: HttpRequest, maxBytes: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) {
    return Promise.reject(new ConnectError(`body of ${declared} bytes exceeds the ${maxBytes}-byte limit`, Code.ResourceExhausted));
  }
  try {
    // The body and what it decodes to take their share of the memory budget before a byte is read.
    leaseOf(req).hold((Number.isFinite(declared) ? declared : maxBytes) * heapBytesPerWireByte);
  } catch (err) {
    return Promise.reject(err);
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBytes) {
        req.off("data", onData);
        req.pause();
        reject(new ConnectError(`body exceeds the ${maxBytes}-byte limit`, Code.ResourceExhausted));
        return;
      }
      chunks.push(chunk);
    };
    req.on("data", onData);
    req.on("end", () => resolve(Buffer.concat(chunks, size)));
    req.on("error", reject);
  });
}
