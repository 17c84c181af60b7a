/**
 * Why a store failed, as the rest of the server needs to know it:
 * - `unusable`: the database cannot be opened or used at start (not a
 *   database, a newer schema, another application's tables, no access);
 *   main() exits with code 3 and this message.
 * - `unavailable`: a commit failed for a reason a retry may fix (busy, disk
 *   full, I/O error, the writer gone); nothing of the batch was stored and
 *   the client is told `unavailable`.
 * - `failed`: a commit failed otherwise; nothing of it was stored, and the
 *   client gets `internal` while the log gets the detail.
 * - `full`: a bounded table (consumers) holds all it may; the client gets
 *   `resource_exhausted` with this message.
 */
export type StoreErrorKind = "unusable" | "unavailable" | "failed" | "full";

/** The one error type a store throws; its message may be shown to clients for `unavailable`, never for `failed`. */
export class StoreError extends Error {
  constructor(
    readonly kind: StoreErrorKind,
    message: string,
  ) {
    super(message);
  }

  /** Whether the client may retry the same request: nothing of it was stored. */
  get retryable(): boolean {
    return this.kind === "unavailable";
  }
}
