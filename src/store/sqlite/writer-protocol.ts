import type { Durability } from "../types.js";
import type { ConsumerChange, ConsumerOutcome } from "./consumer-writes.js";

/** Messages between the main thread and the writer worker. */

export interface WriterOptions {
  dbPath: string;
  durability: Durability;
}

export type ToWriter =
  /** The batches handed over in one event loop turn, in order; packed: see packed-batch.ts. */
  | { type: "append"; ids: number[]; packed: string[] }
  /** One change to the consumers table; the changes of one writer turn commit together. */
  | { type: "consumer"; id: number; change: ConsumerChange }
  /** Commit whatever is pending, close the database, then answer "closed". */
  | { type: "close" };

export type FromWriter =
  | { type: "ready" }
  | { type: "open-failed"; message: string }
  /** One group commit: the outcomes of the batches `ids`, end to end in batch order. */
  | { type: "appended"; ids: number[]; statuses: Uint8Array; seqs: Float64Array; receivedAt: string }
  /** The consumer changes `ids` committed, each with its outcome. */
  | { type: "consumers-changed"; ids: number[]; outcomes: ConsumerOutcome[] }
  /** The group transaction rolled back: none of these batches (or consumer changes) is stored. */
  | { type: "failed"; ids: number[]; retryable: boolean; message: string; detail: string }
  | { type: "closed" };
