import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "../../gen/google/rpc/error_details_pb.js";
import type { BatchPositions } from "./batch-positions.js";
import { describePosition } from "./event-input.js";
import { connectErrorText } from "./failure.js";

/** A stream event's path with the field after it (".topic", ".payload.n", '.payload["a b"]'), so the input's place goes after the whole path. */
const eventPath = /messages\[(\d+)\]\.events\[(\d+)\](?:\.[\p{L}\p{N}_$-]+|\[(?:\d+|"(?:[^"\\]|\\.)*")\])*/gu;

/**
 * A refused PublishStream in the input's terms. The server names events as
 * `messages[i].events[j]`, which means nothing to whoever wrote the file;
 * each is followed by the input line it came from, and each field
 * violation (google.rpc.BadRequest) gets a line of its own. Then what the
 * refusal means for what was sent, and what to do about it.
 */
export function explainRefusal(err: ConnectError, positions: BatchPositions): string[] {
  const where = (message: number, event: number) => {
    const position = positions.find(message, event);
    if (position !== undefined) return describePosition(position);
    const start = positions.startOf(message);
    return start === undefined ? undefined : `the batch from ${describePosition(start)}`;
  };
  const annotate = (text: string) =>
    text.replace(eventPath, (path, message: string, event: string) => {
      const at = where(Number(message), Number(event));
      return at === undefined ? path : `${path} (${at})`;
    });

  const violations = err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
  if (violations.length === 0) return [annotate(connectErrorText(err)), `  ${consequence(err)}`];
  // The message lists the violations too, by path only: its words before the list head the lines that place each one.
  const heading = connectErrorText(err).split(/: (?=(?:messages|events)\[)/)[0]!;
  const lines = [`${heading}:`];
  for (const v of violations) {
    const match = /^messages\[(\d+)\]\.events\[(\d+)\]\.(.+)$/.exec(v.field);
    const at = match === null ? undefined : where(Number(match[1]), Number(match[2]));
    lines.push(at === undefined ? `  ${v.field}: ${v.description}` : `  ${at}: ${match![3]}: ${v.description}`);
  }
  lines.push(`  ${consequence(err)}`);
  return lines;
}

function consequence(err: ConnectError): string {
  const safe = "re-sending the same input is safe: events already stored come back as duplicates";
  if (/at most \d+ allowed per request/.test(err.rawMessage)) return `lower --batch to the server's --max-batch; ${safe}`;
  if (err.code === Code.ResourceExhausted) return `lower --batch-bytes (or --batch) below the server's --max-message-bytes; ${safe}`;
  if (err.code === Code.InvalidArgument) return `the batches before the refused one are stored; fix the input and send it again (${safe})`;
  return `some batches may be stored; ${safe}`;
}
