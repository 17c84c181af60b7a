import { AppendStatus, type AppendResult, type EventRecord, type EventStore } from "../../src/store/types.js";

/** One append a ScriptedStore received, answered by hand. */
export interface PendingAppend {
  records: EventRecord[];
  /** Commits the batch with these statuses (and seqs, 1, 2, … by default). */
  answer(statuses: number[], seqs?: number[]): void;
  /** Commits the batch, every event ACCEPTED. */
  commit(): void;
  fail(err: Error): void;
}

/**
 * An EventStore for unit tests of what sits in front of a store (the queue,
 * the pipeline): its appends stay pending until the test answers them, and it
 * records every batch it gets. End-to-end tests use the real store.
 */
export class ScriptedStore implements Pick<EventStore, "append" | "close"> {
  readonly appends: PendingAppend[] = [];

  append(records: EventRecord[]): Promise<AppendResult> {
    return new Promise<AppendResult>((resolve, reject) => {
      const answer = (statuses: number[], seqs = statuses.map((_, i) => i + 1)) => resolve({ statuses: new Uint8Array(statuses), seqs: new Float64Array(seqs) });
      this.appends.push({ records, answer, commit: () => answer(records.map(() => AppendStatus.accepted)), fail: reject });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The append at position n, which the test expects to have arrived. */
  at(n: number): PendingAppend {
    const append = this.appends[n];
    if (append === undefined) throw new Error(`append ${n} has not reached the store (${this.appends.length} did)`);
    return append;
  }

  /** Commits every batch received so far, every event ACCEPTED. */
  acceptAll(): void {
    for (const a of this.appends) a.commit();
  }

  /** The event ids of each batch the store received, in order. */
  get batches(): string[][] {
    return this.appends.map((a) => a.records.map((r) => r.eventId));
  }
}
