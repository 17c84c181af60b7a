import type { Timestamp } from "@bufbuild/protobuf/wkt";
import type { CanonicalPayload } from "./canonical-json.js";
import type { Violation } from "./violations.js";

/**
 * The protocol-neutral shape every front door decodes a publish request (or
 * one PublishStream message) into, whatever its protocol and codec: the
 * events, with payloads already in canonical form, and the violations found
 * while decoding. The publish pipeline (ingest/pipeline.ts) takes it from
 * here, and never knows which front door it came through.
 */
export interface DecodedBatch {
  /** In request order; undefined where an event could not be decoded at all (its violation is in `violations`). */
  events: (DecodedEvent | undefined)[];
  violations: Violation[];
}

/** One event as decoded: fields not yet validated, payload canonical or refused. */
export interface DecodedEvent {
  topic: string;
  eventId: string;
  timestamp: Timestamp | undefined;
  source: string;
  /** undefined when the request had none. */
  payload: CanonicalPayload | RefusedPayload | undefined;
}

/**
 * A payload that broke a payload rule while it was decoded. The event stays
 * in the batch, so validation reports its other fields too, in the same
 * order whichever decoder found the problem.
 */
export class RefusedPayload {
  constructor(readonly description: string) {}
}
