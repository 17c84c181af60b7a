import { ValidationError, type Violation } from "../errors.js";
import { AppendStatus, type AppendResult } from "../store/types.js";
import { validateBatch, type IncomingEvent, type ValidationLimits } from "../validate.js";
import type { IngestQueue } from "./queue.js";

/** What one committed batch came to. */
export interface BatchOutcome extends AppendResult {
  accepted: number;
  duplicates: number;
  conflicts: number;
}

/**
 * The one publish path shared by the RPCs and the REST routes: validate the
 * whole batch, hand it to the queue, and count what came back.
 */
export class Publisher {
  /** Events refused as invalid since start, for Stats. */
  rejectedInvalid = 0;

  constructor(
    private readonly queue: IngestQueue,
    private readonly limits: ValidationLimits,
  ) {}

  /** Events allowed in one batch, for decoders that can refuse an oversized batch before decoding it. */
  get maxBatch(): number {
    return this.limits.maxBatch;
  }

  /**
   * Validates and commits one batch, refusing at once when the queue is full.
   * `known` carries violations the caller found while decoding (REST), for
   * events left undefined in `events`.
   */
  async publish(events: readonly (IncomingEvent | undefined)[], known: Violation[] = []): Promise<BatchOutcome> {
    const { records, bytes } = this.validate(events, known);
    return summarize(await this.queue.submit(records, bytes));
  }

  /**
   * Validates one stream message and waits for room in the queue; resolves
   * once the batch is queued, with a promise of its commit.
   */
  async publishWhenRoom(events: readonly (IncomingEvent | undefined)[], known: Violation[], signal: AbortSignal): Promise<{ committed: Promise<BatchOutcome> }> {
    const { records, bytes } = this.validate(events, known);
    const { committed } = await this.queue.submitWhenRoom(records, bytes, signal);
    return { committed: committed.then(summarize) };
  }

  private validate(events: readonly (IncomingEvent | undefined)[], known: Violation[]) {
    try {
      return validateBatch(events, this.limits, known);
    } catch (err) {
      if (err instanceof ValidationError) this.rejectedInvalid += Math.max(events.length, 1);
      throw err;
    }
  }
}

function summarize(result: AppendResult): BatchOutcome {
  let accepted = 0;
  let duplicates = 0;
  let conflicts = 0;
  for (const status of result.statuses) {
    if (status === AppendStatus.accepted) accepted++;
    else if (status === AppendStatus.duplicate) duplicates++;
    else conflicts++;
  }
  return { statuses: result.statuses, seqs: result.seqs, accepted, duplicates, conflicts };
}
