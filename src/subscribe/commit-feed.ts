import { eventBytes, type EventStore, type StoredEventRow } from "../store/types.js";
import { matches, type SubscriptionFilter } from "./filter.js";

/**
 * Bounds of the recent commits kept in memory for subscribers near the head.
 * 8 MiB holds about a second of the fastest ingest measured (35,000 events/s
 * of ~200 bytes): a live subscriber that falls further behind reads from the
 * database instead, so the bound costs a slow reader a query, never an event.
 */
const maxRecentBytes = 8 * 1024 * 1024;
const maxRecentEvents = 50_000;

/** What a subscriber takes from memory: matching rows after its cursor, and the cursor after them. */
export interface RecentSlice {
  rows: StoredEventRow[];
  /** Every event up to this seq was examined. */
  cursor: number;
}

/**
 * The recent commits, in seq order, for subscribers to follow without a
 * query each: the writer tells it of every commit before any publisher is
 * answered. It covers every committed seq above `coveredAfter`; a cursor
 * below that reads from the database until it gets here.
 *
 * With no subscriber, commits are not kept at all (the store then does not
 * even build their rows): the feed only moves its head, and a subscriber
 * that arrives later reads from the database up to it, then from here.
 */
export class CommitFeed {
  /** Kept rows from `start` on; the slots before it were dropped (emptied) and are compacted away now and then. */
  private rows: (StoredEventRow | undefined)[] = [];
  private start = 0;
  private bytes = 0;
  private coveredAfter: number;
  private headSeq: number;
  private followers = 0;
  private readonly waiters = new Set<() => void>();

  private constructor(head: number) {
    this.coveredAfter = head;
    this.headSeq = head;
  }

  /** The feed of a store, from its newest committed seq on. */
  static async open(store: EventStore): Promise<CommitFeed> {
    const feed = new CommitFeed(await store.head());
    store.onCommit((head, rows) => feed.committed(head, rows));
    return feed;
  }

  /** The newest committed seq this process knows of. */
  get head(): number {
    return this.headSeq;
  }

  /** Counts a subscriber in until the returned function is called: commits are kept only while someone follows. */
  follow(): () => void {
    this.followers++;
    let counted = true;
    return () => {
      if (!counted) return;
      counted = false;
      if (--this.followers === 0) this.forget();
    };
  }

  /**
   * Matching rows after `cursor`, at most `maxRows` and `maxBytes` (the first
   * row is taken whatever its size), or undefined when memory no longer holds
   * what follows `cursor`: read the database from there.
   */
  after(cursor: number, filter: SubscriptionFilter, maxRows: number, maxBytes: number): RecentSlice | undefined {
    if (cursor < this.coveredAfter) return undefined;
    const rows: StoredEventRow[] = [];
    let bytes = 0;
    let examined = cursor;
    for (let i = this.firstAfter(cursor); i < this.rows.length; i++) {
      const row = this.rows[i]!;
      if (matches(filter, row)) {
        const size = eventBytes(row);
        if (rows.length === maxRows || (rows.length > 0 && bytes + size > maxBytes)) break;
        rows.push(row);
        bytes += size;
      }
      examined = row.seq;
    }
    return { rows, cursor: examined };
  }

  /** Resolves once something commits after `cursor`, after `ms`, or when `signal` aborts, whichever is first. */
  waitBeyond(cursor: number, ms: number, signal: AbortSignal): Promise<void> {
    if (this.headSeq > cursor || signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      this.waiters.add(done);
    });
  }

  private committed(head: number, rows: () => StoredEventRow[]): void {
    if (this.followers === 0) {
      this.coveredAfter = head;
    } else {
      for (const row of rows()) {
        this.rows.push(row);
        this.bytes += eventBytes(row);
      }
      this.trim();
    }
    this.headSeq = head;
    for (const wake of [...this.waiters]) wake();
  }

  /** Drops the oldest rows beyond the bounds; what they covered is read from the database from now on. */
  private trim(): void {
    while (this.rows.length - this.start > maxRecentEvents || (this.bytes > maxRecentBytes && this.start < this.rows.length - 1)) {
      const dropped = this.rows[this.start]!;
      this.rows[this.start] = undefined;
      this.start++;
      this.bytes -= eventBytes(dropped);
      this.coveredAfter = dropped.seq;
    }
    // Compact once the dropped part is as large as the kept part: amortized O(1) per row.
    if (this.start > 1024 && this.start * 2 > this.rows.length) {
      this.rows = this.rows.slice(this.start);
      this.start = 0;
    }
  }

  private forget(): void {
    this.rows = [];
    this.start = 0;
    this.bytes = 0;
    this.coveredAfter = this.headSeq;
  }

  /** Index of the first kept row with a seq above `cursor` (binary search: rows are in seq order). */
  private firstAfter(cursor: number): number {
    let lo = this.start;
    let hi = this.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.rows[mid]!.seq <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
