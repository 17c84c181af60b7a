/** One bad field of one event: what decoding and validation report, and what clients read back. */
export interface Violation {
  /** Position of the event in its request or stream message; -1 when the request itself is wrong. */
  index: number;
  /** Proto field name (snake_case), as clients spell it in JSON; a path within it where one is named ("payload.n"). */
  field: string;
  description: string;
  /** Position of the stream message, for what is found before a stream's message is decoded (rpc/exact-json-body.ts). */
  message?: number;
}

/** At most this many violations are spelled out in one message, so a 10,000-event mistake stays readable. */
const maxListedViolations = 20;

/** The field a violation names, as a path into the request: "events[3].payload", "messages[2].events[3].payload", or "events" for the request itself. */
export function violationPath(v: Violation): string {
  const path = v.index < 0 ? v.field : `events[${v.index}].${v.field}`;
  return v.message === undefined ? path : `messages[${v.message}].${path}`;
}

/** The request had invalid events: nothing of it was stored. */
export class ValidationError extends Error {
  constructor(readonly violations: Violation[]) {
    super(describeViolations(violations));
  }
}

function describeViolations(violations: Violation[]): string {
  const listed = violations.slice(0, maxListedViolations).map((v) => `${violationPath(v)}: ${v.description}`);
  const more = violations.length > maxListedViolations ? `; and ${violations.length - maxListedViolations} more` : "";
  const events = new Set(violations.map((v) => v.index)).size;
  return `invalid batch, none of its events stored (${events} invalid event${events === 1 ? "" : "s"}): ${listed.join("; ")}${more}`;
}
