import { Code, ConnectError } from "@connectrpc/connect";

/** One bad field of one event: what validation reports, and what clients read back. */
export interface Violation {
  /** Position of the event in its request or stream message; -1 when the request itself is wrong. */
  index: number;
  /** Proto field name (snake_case), as clients spell it in JSON. */
  field: string;
  description: string;
}

/** At most this many violations are spelled out in one message, so a 10,000-event mistake stays readable. */
const maxListedViolations = 20;

/** The request had invalid events: nothing of it was stored. */
export class ValidationError extends Error {
  constructor(readonly violations: Violation[]) {
    super(describeViolations(violations));
  }
}

/** The ingest queue is full: retry after a short wait. */
export class OverloadedError extends Error {
  constructor(readonly retryAfterSeconds: number) {
    super(`server is overloaded: ingest queue is full, retry in ${retryAfterSeconds}s`);
  }
}

/** The server is draining for shutdown and takes no new work. */
export class ShuttingDownError extends Error {
  constructor() {
    super("server is shutting down");
  }
}

/** The store could not commit (busy, disk full, I/O error): nothing of the batch was stored. */
export class StorageUnavailableError extends Error {}


function describeViolations(violations: Violation[]): string {
  const listed = violations.slice(0, maxListedViolations).map((v) => (v.index < 0 ? `${v.field}: ${v.description}` : `events[${v.index}].${v.field}: ${v.description}`));
  const more = violations.length > maxListedViolations ? `; and ${violations.length - maxListedViolations} more` : "";
  const events = new Set(violations.map((v) => v.index)).size;
  return `invalid batch, none of its events stored (${events} invalid event${events === 1 ? "" : "s"}): ${listed.join("; ")}${more}`;
}

/** How connect-es begins the message of a request message it could not decode from protobuf binary. */
const binaryParsePrefix = "parse binary: ";

/**
 * connect-es reports protobuf bytes it cannot decode as `internal` ("parse
 * binary: premature EOF"), although the fault is the client's: JSON it cannot
 * decode is `invalid_argument`, and connect-go answers both so. Where such an
 * error passes through our code (a stream's messages are decoded as the
 * handler reads them) it becomes `invalid_argument`. Unary requests are
 * decoded before any of our code runs; rpc-edge.ts rewrites those answers.
 */
function isBinaryParseError(err: ConnectError): boolean {
  return err.code === Code.Internal && err.rawMessage.startsWith(binaryParsePrefix);
}

/**
 * The one table from failure to Connect code. Anything unknown becomes
 * `internal` with a generic message: stack traces, SQL and paths stay in the log.
 */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) {
    return isBinaryParseError(err) ? new ConnectError(`cannot decode the request message: ${err.rawMessage.slice(binaryParsePrefix.length)}`, Code.InvalidArgument) : err;
  }
  if (err instanceof ValidationError) return new ConnectError(err.message, Code.InvalidArgument);
  if (err instanceof OverloadedError) return new ConnectError(err.message, Code.Unavailable, { "retry-after": String(err.retryAfterSeconds) });
  if (err instanceof ShuttingDownError) return new ConnectError(err.message, Code.Unavailable);
  if (err instanceof StorageUnavailableError) return new ConnectError(err.message, Code.Unavailable);
  return new ConnectError("internal error", Code.Internal);
}


/** HTTP status for each Connect code, as the Connect protocol maps them; used by the REST routes. */
export function httpStatusFor(code: Code): number {
  switch (code) {
    case Code.InvalidArgument:
      return 400;
    case Code.Unauthenticated:
      return 401;
    case Code.PermissionDenied:
      return 403;
    case Code.NotFound:
    case Code.Unimplemented:
      return 404;
    case Code.ResourceExhausted:
      return 413;
    case Code.Unavailable:
      return 503;
    case Code.DeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

/** The snake_case name Connect uses for a code in JSON ("invalid_argument"). */
export function codeName(code: Code): string {
  return Code[code].replace(/[A-Z]/g, (c, i: number) => (i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`));
}
