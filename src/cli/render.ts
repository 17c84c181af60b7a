import { toJson, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { TimestampSchema, type Timestamp } from "@bufbuild/protobuf/wkt";
import { StoredEventSchema, type StoredEvent } from "../../gen/aggregator/v1/aggregator_pb.js";

/**
 * One message as one line of proto JSON with snake_case names and zeros
 * written out: what the server answers curl, so `--json` output goes into
 * the same scripts, and `.conflicts` is 0 rather than missing.
 */
export function protoJsonLine<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): string {
  return JSON.stringify(toJson(schema, message, { useProtoFieldName: true, alwaysEmitImplicit: true }));
}

/** A stored event as an NDJSON line (tail --json, events --json). */
export function eventJsonLine(event: StoredEvent): string {
  return protoJsonLine(StoredEventSchema, event);
}

/**
 * A stored event as one readable line: seq, topic, event_id, source,
 * timestamp, compact payload. Identifiers may hold spaces, so one that does
 * is quoted, and the line still splits into the same six fields.
 */
export function eventLine(event: StoredEvent): string {
  return [
    event.seq.toString(),
    word(event.topic),
    word(event.eventId),
    word(event.source),
    timestampText(event.timestamp),
    JSON.stringify(event.payload ?? {}),
  ].join(" ");
}

/** RFC 3339 as the proto JSON mapping writes it (nanoseconds kept); "-" when unset. */
export function timestampText(ts: Timestamp | undefined): string {
  return ts === undefined ? "-" : (toJson(TimestampSchema, ts) as string);
}

/** An identifier as it is, or JSON-quoted when it is empty or holds a space or a quote, so it cannot run into its neighbours. */
export function word(text: string): string {
  return text === "" || /[\s"]/.test(text) ? JSON.stringify(text) : text;
}

/** "1 event", "2 events", "1 batch", "3 batches". */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? "" : noun.endsWith("ch") ? "es" : "s"}`;
}
