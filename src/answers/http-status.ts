import { Code } from "@connectrpc/connect";
import { codeToHttpStatus } from "@connectrpc/connect/protocol-connect";

/** Where an answer goes: a Connect route (or any RPC path), or one of the plain REST routes. */
export type HttpSurface = "connect" | "rest";

/**
 * Where the REST routes keep the status their README documents instead of
 * Connect's: 413 Payload Too Large for a body over the limit, which every
 * HTTP client understands (Connect says 429).
 */
const restStatuses: Partial<Record<Code, number>> = { [Code.ResourceExhausted]: 413 };

/**
 * The one table from Connect code to HTTP status: connect-es's own mapping
 * (codeToHttpStatus, as the Connect protocol specifies it), with the REST
 * routes' documented exceptions above.
 */
export function httpStatusFor(code: Code, surface: HttpSurface): number {
  return (surface === "rest" ? restStatuses[code] : undefined) ?? codeToHttpStatus(code);
}
