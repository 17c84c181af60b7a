import type { DecodedBatch } from "../codec/decoded-batch.js";
import type { EventRecord } from "../store/types.js";
import type { BatchOutcome } from "./outcome.js";

/** Totals of a whole stream, answered once its last message has committed. */
export interface StreamTotals {
  received: bigint;
  accepted: bigint;
  duplicates: bigint;
  conflicts: bigint;
  batches: bigint;
}

/** The steps a message goes through; the pipeline provides them (pipeline.ts). */
export interface StreamSteps {
  /** Authorizes and validates message number `message`; throws to end the stream. */
  admit(batch: DecodedBatch, message: number): { records: EventRecord[]; bytes: number };
  /** Resolves once the records are queued, with the promise of their commit (wrapped, so awaiting the queueing does not await the commit). */
  enqueue(records: EventRecord[], bytes: number): Promise<{ committed: Promise<BatchOutcome> }>;
}

/**
 * One PublishStream as the pipeline sees it. Each message is admitted, then
 * queued as soon as there is room: while `feed` waits for room the front
 * door does not read the next message, so HTTP/2 flow control holds the
 * client back. Commits are awaited together at the end; messages queued
 * before a failure commit whatever happens to the stream, and the answer
 * waits for them.
 */
export class PublishStream {
  private readonly totals: StreamTotals = { received: 0n, accepted: 0n, duplicates: 0n, conflicts: 0n, batches: 0n };
  private readonly pending = new Set<Promise<unknown>>();
  private failure: { err: unknown } | undefined;

  constructor(private readonly steps: StreamSteps) {}

  /**
   * Takes the stream's next message; throws the first commit failure seen so
   * far, so the caller stops reading. `settled` runs once the message has
   * committed or failed (not when it is refused before queueing: the stream
   * ends then), for the caller to give back what the message held.
   */
  async feed(batch: DecodedBatch, settled: () => void = () => undefined): Promise<void> {
    // Once a message failed to commit the stream is over: nothing after it is queued.
    this.throwFailure();
    const message = Number(this.totals.batches++);
    const { records, bytes } = this.steps.admit(batch, message);
    const { committed } = await this.steps.enqueue(records, bytes);
    const tracked = committed.then(
      (outcome) => this.add(outcome),
      (err: unknown) => {
        this.failure ??= { err };
      },
    );
    void tracked.then(settled);
    this.pending.add(tracked);
    void tracked.then(() => this.pending.delete(tracked));
    this.throwFailure();
  }

  /** Waits until every queued message has committed or failed; call it however the stream ended. */
  async settle(): Promise<void> {
    await Promise.all(this.pending);
  }

  /** The totals once settled, or the first commit failure. */
  result(): StreamTotals {
    this.throwFailure();
    return this.totals;
  }

  private add(outcome: BatchOutcome): void {
    this.totals.received += BigInt(outcome.statuses.length);
    this.totals.accepted += BigInt(outcome.accepted);
    this.totals.duplicates += BigInt(outcome.duplicates);
    this.totals.conflicts += BigInt(outcome.conflicts);
  }

  private throwFailure(): void {
    if (this.failure !== undefined) throw this.failure.err;
  }
}
